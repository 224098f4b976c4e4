"""Issuing a criminal-record certificate: one decided dossier → everything the citizen receives.

Once a dossier is approved, :func:`issue_criminal_record_certificate` (or its ``_async`` twin, for a service's
event loop) makes, in one call and with no I/O:

* the **SD-JWT VC** (``issuance.credentials``: ``typ`` ``dc+sd-jwt``, ``vct``
  ``urn:dinhdanh:vct:criminal-record-certificate:1``, ``cnf.jwk`` the holder's key, ``status`` the Token Status
  List entry), each claim selectively disclosable;
* the **offline QR** (``issuance.qr``: CWT in COSE_Sign1, zlib, Base45, ``VN1:``) and its PNG;
* the **PDF** laid out like the official form (``issuance.pdf``) with the QR, **PAdES-signed**
  (``issuance.pades``), and its SHA-256;
* what the **vault delivery** needs (:class:`VaultDelivery`: document type ``CRIMINAL_RECORD_CERTIFICATE``, title,
  filename, issuer document id, issue date, no expiry, and the issuer signature ``vault.signatures`` verifies).

What the certificate says comes from ``issuance.forms.certificate_content`` for the application's form on the
issue date (Law on Judicial Records 2009 as amended by Law 107/2025/QH15: Art. 42 for Form No. 1 — only the
convictions not yet expunged, "Không có án tích" when none, the ban on holding office only when asked for;
Art. 43 for Form No. 2 — every conviction, expunged ones marked with their expungement date, the parents' and
spouse's names, the ban always). The holder's identity comes from the filled application (its values are the
registry's, ``issuance.application``) and the registry record. One mapping (:func:`_facts`) turns these into the
printed texts once; the credential's claims, the PDF's view and the QR's fields are each read from it, so the three
cannot disagree.

Choices made here:

* The issue date is the date in Hà Nội (UTC+7) at the instant of issue.
* The PDF's document information ``/Subject`` is the QR text (signed with the rest), so a PDF alone verifies
  offline (``issuance.verify``) without its QR image being decoded.
* The law sets no validity period, so nothing expires (``exp`` absent in the credential and the QR, no
  ``expires_on`` in the vault): revocation and suspension go through the status list.
* The QR's conviction count is the number of convictions **on record** (not expunged) the form shows: on Form
  No. 1 every one it lists; on Form No. 2 the listed ones minus the expunged ones, since an expunged conviction is
  as if never convicted (Penal Code 2015 Art. 69) — so the QR's "Có n án tích" / "Không có án tích" reads as the
  certificate's status line, on both forms.
* The form and the ban choice are the application's (``Application.form``, ``Application.ban_certification``),
  not separate arguments, so a certificate cannot answer a request other than the one filed.
* Parents' and spouse's names are claims (and printed) on Form No. 2 only, as the official forms do; a name the
  registry does not hold is left out of the credential and printed "—".
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

from joserfc.errors import JoseError
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError

from core.errors import InvalidArgument
from issuance import pdf, qr
from issuance.application import Application
from issuance.credentials import VCT_CRIMINAL_RECORD, issue_credential
from issuance.forms import HAS_RECORD, CertificateContent, ConvictionEntry, FormNo, certificate_content
from issuance.issuer_keys import ALGORITHM, SigningKey, public_key
from issuance.judicial import Conviction, JudicialRecord
from issuance.pades import DocumentSigner, signed_pdf_async
from issuance.status_list import StatusReference
from registry.citizen import Citizen
from vault import signatures
from vault.documents import DocumentType, Issued

VIETNAM = timezone(timedelta(hours=7), "ICT")
TITLES: Mapping[int, str] = MappingProxyType({1: "Phiếu lý lịch tư pháp số 1", 2: "Phiếu lý lịch tư pháp số 2"})
DOCUMENT_TYPES: Mapping[int, str] = MappingProxyType({1: qr.DOC_CRIMINAL_RECORD_1, 2: qr.DOC_CRIMINAL_RECORD_2})
CERTIFICATE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A certificate id: ASCII letters, digits, '.', '_' and '-' (it is the QR's id, the PDF's number and the
filename's tail)."""


@dataclass(frozen=True, slots=True)
class IssuingAuthority:
    """Who issues and signs, as printed: the authority (top left), the place and the signer's title and name."""

    name: str = "TRUNG TÂM LÝ LỊCH TƯ PHÁP QUỐC GIA"
    place: str = "Hà Nội"
    signer_title: str = "GIÁM ĐỐC"
    signer_name: str = "Nguyễn Văn Hùng"


NATIONAL_CENTRE = IssuingAuthority()
"""The National Judicial Records Centre (Trung tâm Lý lịch tư pháp quốc gia, Ministry of Justice), the default."""


@dataclass(frozen=True, slots=True)
class VaultDelivery:
    """The metadata of ``DeliverIssuedDocument`` for the signed PDF (``vault.documents``)."""

    document_type: DocumentType
    title: str
    filename: str
    issuer_document_id: str
    issued_on: date
    expires_on: date | None
    sha256: bytes

    def issuer_signature(self, key: SigningKey, client_id: str) -> bytes:
        """The ``issuer_signature`` (``vault.signatures``: ``issued-document+jwt``, ES256) binding these bytes;
        ``client_id`` is the issuing service's registered agency client, ``key`` a key of its registered JWKS."""
        issued = Issued(client_id, self.issuer_document_id, b"")
        return signatures.sign(
            key.private, ALGORITHM, issued, self.document_type, self.sha256, (self.issued_on, self.expires_on)
        )


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """Everything the citizen receives for one certificate."""

    certificate_id: str
    form: FormNo
    content: CertificateContent
    credential: str  # the SD-JWT VC, issued form (ending in '~')
    qr_fields: qr.QrFields
    qr_text: str  # 'VN1:' + Base45
    qr_png: bytes
    pdf: bytes  # rendered and PAdES-signed
    sha256: bytes  # of ``pdf``
    delivery: VaultDelivery


@dataclass(frozen=True, slots=True)
class _Facts:
    """The certificate's statements, each as printed: the one source the credential, PDF and QR read."""

    form: FormNo
    certificate_id: str
    issued_on: date
    authority: IssuingAuthority
    holder: pdf.Holder
    status: str  # "Không có án tích" / "Có án tích"
    convictions: tuple[tuple[pdf.Conviction, date | None], ...]  # with the expungement date on No. 2
    ban: str | None

    @property
    def on_record(self) -> int:
        return sum(1 for _, expunged_on in self.convictions if expunged_on is None)


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _dmy(day: date) -> str:
    return f"{day:%d/%m/%Y}"


def _conviction_of(entry: ConvictionEntry, record: JudicialRecord) -> Conviction:
    for conviction in record.convictions:
        if (conviction.judgment_number, conviction.judgment_date, conviction.court) == (
            entry.judgment_number,
            entry.judgment_date,
            entry.court,
        ):
            return conviction
    raise InvalidArgument("a certificate entry matches no conviction of the record")  # pragma: no cover


def _line(entry: ConvictionEntry, conviction: Conviction, on: date) -> pdf.Conviction:
    sentence = entry.main_penalty_vi + (
        f"; hình phạt bổ sung: {entry.additional_penalty_vi}" if entry.additional_penalty_vi else ""
    )
    done = conviction.completion_date
    completion = (
        f"Đã chấp hành xong hình phạt chính ngày {_dmy(done)}"
        if done <= on
        else f"Đang chấp hành hình phạt chính (đến ngày {_dmy(done)})"
    )
    if entry.expunged_on is not None:
        completion += f"; được xóa án tích ngày {_dmy(entry.expunged_on)}"
    return pdf.Conviction(
        judgment=f"Bản án số {entry.judgment_number} ngày {_dmy(entry.judgment_date)}",
        court=entry.court,
        offence=f"{entry.offence_vi} ({entry.article})",
        sentence=sentence,
        completion=completion,
        expunged=entry.expunged_on is not None,
    )


def _facts(
    citizen: Citizen,
    record: JudicialRecord,
    application: Application,
    certificate_id: str,
    issued_on: date,
    authority: IssuingAuthority,
) -> tuple[_Facts, CertificateContent]:
    form = application.form
    content = certificate_content(form, record, issued_on, application.ban_certification)
    value = application.value
    holder = pdf.Holder(
        full_name=value("full_name"),
        sex=value("sex"),
        date_of_birth=citizen.date_of_birth,
        place_of_birth=value("place_of_birth"),
        nationality=value("nationality"),
        ethnicity=value("ethnicity"),
        residence=value("permanent_residence"),
        id_number=value("id_number"),
        father=value("father_name") if form is FormNo.TWO else "",
        mother=value("mother_name") if form is FormNo.TWO else "",
        spouse=value("spouse_name") if form is FormNo.TWO else "",
    )
    convictions = tuple(
        (_line(entry, _conviction_of(entry, record), issued_on), entry.expunged_on) for entry in content.entries
    )
    status = pdf.HAS_CONVICTION if content.status_vi == HAS_RECORD else pdf.NO_CONVICTION
    ban = _capitalised(content.ban_vi) if content.ban_vi is not None else None
    return _Facts(form, certificate_id, issued_on, authority, holder, status, convictions, ban), content


def _claims(facts: _Facts) -> dict[str, Any]:
    holder = facts.holder
    claims: dict[str, Any] = {
        "form": int(facts.form),
        "certificate_number": facts.certificate_id,
        "issuing_authority": facts.authority.name,
        "issued_on": facts.issued_on.isoformat(),
        "full_name": holder.full_name,
        "sex": holder.sex,
        "birthdate": holder.date_of_birth.isoformat(),
        "place_of_birth": holder.place_of_birth,
        "nationality": holder.nationality,
        "ethnicity": holder.ethnicity,
        "residence": holder.residence,
        "id_number": holder.id_number,
    }
    for name, text in (("father_name", holder.father), ("mother_name", holder.mother), ("spouse_name", holder.spouse)):
        if text:
            claims[name] = text
    claims["criminal_record"] = facts.status
    lines = []
    for line, expunged_on in facts.convictions:
        item = {
            "judgment": line.judgment,
            "court": line.court,
            "offence": line.offence,
            "sentence": line.sentence,
            "completion": line.completion,
        }
        if expunged_on is not None:
            item["expunged_on"] = expunged_on.isoformat()
        lines.append(item)
    claims["convictions"] = lines
    if facts.ban is not None:
        claims["ban"] = facts.ban
    return claims


def _view(facts: _Facts, verify_url: str) -> pdf.CertificateView:
    authority = facts.authority
    return pdf.CertificateView(
        form=int(facts.form),
        number=facts.certificate_id,
        authority=authority.name,
        holder=facts.holder,
        convictions=tuple(line for line, _ in facts.convictions),
        ban=facts.ban,
        place=authority.place,
        issued_on=facts.issued_on,
        signer_title=authority.signer_title,
        signer_name=authority.signer_name,
        verify_url=verify_url,
    )


def _qr_fields(facts: _Facts, status: StatusReference) -> qr.QrFields:
    return qr.QrFields(
        document_type=DOCUMENT_TYPES[int(facts.form)],
        holder_name=facts.holder.full_name,
        id_last_digits=qr.id_last_digits(facts.holder.id_number),
        convictions=facts.on_record,
        issued_on=facts.issued_on,
        certificate_id=facts.certificate_id,
        status_index=status.idx,
        status_uri=status.uri,
    )


@dataclass(frozen=True, slots=True)
class _Prepared:
    facts: _Facts
    content: CertificateContent
    credential: str
    qr_fields: qr.QrFields
    qr_text: str
    qr_png: bytes
    view: pdf.CertificateView


def _prepare(
    *,
    citizen: Citizen,
    record: JudicialRecord,
    application: Application,
    certificate_id: str,
    status_index: int,
    status_uri: str,
    issuer: str,
    issuer_key: SigningKey,
    document_signer: DocumentSigner,
    holder_jwk: Mapping[str, Any],
    at: datetime,
    verify_url: str,
    authority: IssuingAuthority,
) -> _Prepared:
    if not isinstance(citizen, Citizen):
        raise InvalidArgument("citizen must be the registry's Citizen")
    if not isinstance(record, JudicialRecord):
        raise InvalidArgument("record must be a JudicialRecord")
    if not isinstance(application, Application):
        raise InvalidArgument("application must be a filled Application (issuance.application.fill_application)")
    if not isinstance(issuer_key, SigningKey):
        raise InvalidArgument("issuer_key must be a SigningKey")
    if not isinstance(document_signer, DocumentSigner):
        raise InvalidArgument("document_signer must be a DocumentSigner")
    if not isinstance(authority, IssuingAuthority):
        raise InvalidArgument("authority must be an IssuingAuthority")
    if record.id_number != citizen.id_number:
        raise InvalidArgument("the judicial record is not this citizen's record")
    if application.value("id_number") != citizen.id_number:
        raise InvalidArgument("the application is not this citizen's application")
    if not isinstance(certificate_id, str) or not CERTIFICATE_ID.fullmatch(certificate_id):
        raise InvalidArgument("certificate_id is 1-64 ASCII letters, digits, '.', '_' or '-'")
    if not isinstance(verify_url, str) or not verify_url.startswith(("https://", "http://")):
        raise InvalidArgument("verify_url must be an http(s) URL")
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidArgument("at must be a timezone-aware datetime")
    _check_holder_jwk(holder_jwk)
    status = StatusReference(idx=status_index, uri=status_uri)
    issued_on = at.astimezone(VIETNAM).date()
    facts, content = _facts(citizen, record, application, certificate_id, issued_on, authority)
    credential = issue_credential(
        issuer_key,
        issuer=issuer,
        vct=VCT_CRIMINAL_RECORD,
        claims=_claims(facts),
        holder_jwk=holder_jwk,
        status=status,
        issued_at=at,
    )
    fields = _qr_fields(facts, status)
    qr_text = qr.encode_qr(issuer_key, fields, issuer=issuer, issued_at=at)
    qr_png = qr.render_qr(qr_text)
    return _Prepared(facts, content, credential, fields, qr_text, qr_png, _view(facts, verify_url))


def with_subject(document: bytes, qr_text: str) -> bytes:
    """``document`` with ``qr_text`` as its document information ``/Subject`` (ISO 32000-2 §14.3.3), written as an
    incremental update before signing, so the PAdES signature covers it and ``issuance.verify`` reads the QR from
    a signed PDF alone (`dinhdanh verify FILE.pdf`, no ``--qr``)."""
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(document), strict=False)
        writer.document_meta.subject = qr_text
        out = io.BytesIO()
        writer.write(out)
    except (PdfError, ValueError) as error:
        raise InvalidArgument(f"the rendered PDF cannot carry its QR text ({type(error).__name__})") from None
    return out.getvalue()


def _check_holder_jwk(jwk: Any) -> None:
    if not isinstance(jwk, Mapping):
        raise InvalidArgument("holder_jwk is the holder's public JWK")
    if "d" in jwk:
        raise InvalidArgument("holder_jwk must be a public JWK (no private member d)")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or not all(isinstance(jwk.get(m), str) for m in "xy"):
        raise InvalidArgument("holder_jwk must be an EC P-256 JWK with x and y")
    try:
        public_key(dict(jwk))
    except JoseError:
        raise InvalidArgument("holder_jwk is not a valid P-256 public key") from None


def _issued(prepared: _Prepared, signed: bytes, sha256: bytes) -> IssuedCertificate:
    facts = prepared.facts
    form = int(facts.form)
    delivery = VaultDelivery(
        document_type=DocumentType.CRIMINAL_RECORD_CERTIFICATE,
        title=TITLES[form],
        filename=f"phieu-ly-lich-tu-phap-so-{form}-{facts.certificate_id}.pdf",
        issuer_document_id=facts.certificate_id,
        issued_on=facts.issued_on,
        expires_on=None,
        sha256=sha256,
    )
    return IssuedCertificate(
        certificate_id=facts.certificate_id,
        form=facts.form,
        content=prepared.content,
        credential=prepared.credential,
        qr_fields=prepared.qr_fields,
        qr_text=prepared.qr_text,
        qr_png=prepared.qr_png,
        pdf=signed,
        sha256=sha256,
        delivery=delivery,
    )


async def issue_criminal_record_certificate_async(
    *,
    citizen: Citizen,
    record: JudicialRecord,
    application: Application,
    certificate_id: str,
    status_index: int,
    status_uri: str,
    issuer: str,
    issuer_key: SigningKey,
    document_signer: DocumentSigner,
    holder_jwk: Mapping[str, Any],
    at: datetime,
    verify_url: str,
    authority: IssuingAuthority = NATIONAL_CENTRE,
) -> IssuedCertificate:
    """The certificate the approved ``application`` asks for (see the module docstring). CPU-bound (some
    0.1 s, mostly the PDF and its signature): a service runs it in a worker thread or process."""
    prepared = _prepare(
        citizen=citizen,
        record=record,
        application=application,
        certificate_id=certificate_id,
        status_index=status_index,
        status_uri=status_uri,
        issuer=issuer,
        issuer_key=issuer_key,
        document_signer=document_signer,
        holder_jwk=holder_jwk,
        at=at,
        verify_url=verify_url,
        authority=authority,
    )
    rendered = with_subject(pdf.render_certificate(prepared.view, prepared.qr_png), prepared.qr_text)
    signed = await signed_pdf_async(rendered, document_signer)
    return _issued(prepared, signed.content, signed.sha256)


def issue_criminal_record_certificate(
    *,
    citizen: Citizen,
    record: JudicialRecord,
    application: Application,
    certificate_id: str,
    status_index: int,
    status_uri: str,
    issuer: str,
    issuer_key: SigningKey,
    document_signer: DocumentSigner,
    holder_jwk: Mapping[str, Any],
    at: datetime,
    verify_url: str,
    authority: IssuingAuthority = NATIONAL_CENTRE,
) -> IssuedCertificate:
    """:func:`issue_criminal_record_certificate_async` for code outside an event loop (a worker thread, the CLI)."""
    return asyncio.run(
        issue_criminal_record_certificate_async(
            citizen=citizen,
            record=record,
            application=application,
            certificate_id=certificate_id,
            status_index=status_index,
            status_uri=status_uri,
            issuer=issuer,
            issuer_key=issuer_key,
            document_signer=document_signer,
            holder_jwk=holder_jwk,
            at=at,
            verify_url=verify_url,
            authority=authority,
        )
    )


__all__ = [
    "DOCUMENT_TYPES",
    "NATIONAL_CENTRE",
    "TITLES",
    "IssuedCertificate",
    "IssuingAuthority",
    "VaultDelivery",
    "issue_criminal_record_certificate",
    "issue_criminal_record_certificate_async",
]
