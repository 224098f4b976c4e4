"""Offline verification of what a citizen shows: a QR text, an SD-JWT VC, an SD-JWT presentation or a signed PDF.

One entry, :func:`verify_presented` (and :func:`verify_presented_async` for an event loop: the edge's page),
recognises the item and returns a :class:`Verdict` — ``valid``, ``invalid``, ``revoked`` or ``suspended`` — with
the reason, the disclosed fields, the issuer and the issue time:

- a QR text (``VN1:`` prefix): ``issuance.qr`` (CWT in COSE_Sign1, after the EU DCC's HCERT spec v1.0.5);
- an SD-JWT VC (issued form, ending in ``~``): ``issuance.credentials`` (RFC 9901 §7.1, SD-JWT VC §3);
- an SD-JWT presentation (``~`` then a KB-JWT): ``issuance.presentations`` (RFC 9901 §7.3); the verifier's
  ``audience`` and ``nonce`` are then required — key binding without them proves nothing; ``max_age`` is how
  old its KB-JWT may be (5 minutes by default, for a nonce the verifier has just sent; a presentation the
  citizen stored for a consent, whose nonce is the consent id, is as fresh as the consent: its validity);
- a PDF (bytes starting ``%PDF``): its PAdES signature against ``trust_roots`` (``issuance.pades``, ETSI EN 319
  142-1), then the QR text it carries. The QR image itself is not decoded (no image decoding offline here):
  the verifier reads the QR text from the PDF's document information ``/Subject`` (or ``/Keywords`` when its
  whole value is the ``VN1:`` text), which the PAdES signature covers, or takes it alongside (``qr=``,
  ``--qr``; the verdict then says that the QR and the PDF were checked separately, as nothing but the printed
  number ties them).

Revocation and suspension (draft-ietf-oauth-status-list §8.3): when the item names a status list entry
(the credential's ``status.status_list``, the QR's status URI and index) and one of ``status_lists`` (Status List
Tokens, ``statuslist+jwt``) has that URI as its ``sub``, the token is verified with the issuer's keys and the
entry read: INVALID reports ``revoked``, SUSPENDED ``suspended``. Otherwise the verdict's ``status_checked`` is
false and its reason says "status not checked" — a verdict is never valid silently. A supplied status list that
does not verify (another key, expired) is unusable input, not a verdict on the item.

Errors: unusable input (not one of the four kinds, a malformed JWK Set, a PDF without trust roots, a
presentation without audience/nonce, a bad status list) raises ``InvalidArgument``; anything that fails to
verify once recognised is a verdict ``invalid`` with the reason (never a claim value in it).
"""

from __future__ import annotations

import enum
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from core.errors import InvalidArgument
from issuance import pades
from issuance.application import FIELDS as REQUEST_LABELS
from issuance.credentials import VerificationFailed, VerifiedCredential, split_key_binding, verify_credential
from issuance.issuer_keys import b64url_decode, jwks_keys
from issuance.presentations import MAX_AGE, verify_presentation
from issuance.qr import PREFIX, QrVerifier, VerifiedQr
from issuance.status_list import Status, StatusReference, credential_status, verify_status_list

KIND_QR = "qr"
KIND_CREDENTIAL = "sd-jwt-vc"
KIND_PRESENTATION = "sd-jwt-presentation"
KIND_PDF = "pdf"
MAX_ITEM = 16 * 1024 * 1024  # a PDF certificate is some 100 KB
NOT_CHECKED = "status not checked"


class Outcome(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    REVOKED = "revoked"
    SUSPENDED = "suspended"


LABELS: Mapping[str, str] = {
    **REQUEST_LABELS,
    # the QR's fields (issuance.qr.QrFields)
    "document_type": "Loại giấy tờ",
    "holder_name": "Họ và tên",
    "id_last_digits": "4 số cuối số định danh cá nhân",
    "convictions": "Tình trạng án tích",
    "issued_on": "Ngày cấp",
    "certificate_id": "Số phiếu",
    "status_index": "Vị trí trong danh sách trạng thái",
    "status_uri": "Danh sách trạng thái",
    # the credential's claims
    "birthdate": "Ngày, tháng, năm sinh",
    "criminal_record": "Tình trạng án tích",
    "certificate_number": "Số phiếu",
    "form": "Phiếu lý lịch tư pháp số",
    "ban": "Cấm đảm nhiệm chức vụ, thành lập, quản lý doanh nghiệp, hợp tác xã",
    "authority": "Cơ quan cấp",
    "issuing_authority": "Cơ quan cấp",
    "residence": "Nơi cư trú",
    "sex": "Giới tính",
    # the PDF's signature
    "signer": "Người ký (chứng thư số)",
    "signer_name": "Tên người ký",
    "signed_at": "Thời điểm ký",
    "signature_level": "Mức chữ ký PAdES",
}
"""Vietnamese labels of the fields a verdict shows (the request form's labels first); others show their name."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The verdict on a presented item. ``fields`` are the disclosed claims (the QR's fields, the credential's
    disclosed claims, the PDF signer's), empty when nothing verified; ``status_checked`` says whether a status
    list was read; ``pdf`` is the signature validation of a PDF."""

    kind: str
    outcome: Outcome
    reason: str
    fields: dict[str, Any] = field(default_factory=dict)
    issuer: str | None = None
    issued_at: datetime | None = None
    status_checked: bool = False
    status: StatusReference | None = None
    pdf: pades.PdfValidation | None = None

    @property
    def valid(self) -> bool:
        return self.outcome is Outcome.VALID

    def labels(self) -> dict[str, str]:
        """The Vietnamese label of each field (its name where none is known)."""
        return {name: LABELS.get(name, name) for name in self.fields}

    def to_json(self) -> dict[str, Any]:
        """The verdict as a JSON object (the CLI's ``--json``, the edge's page)."""
        return {
            "kind": self.kind,
            "outcome": str(self.outcome),
            "reason": self.reason,
            "status_checked": self.status_checked,
            "status": None if self.status is None else {"idx": self.status.idx, "uri": self.status.uri},
            "issuer": self.issuer,
            "issued_at": self.issued_at.isoformat() if self.issued_at else None,
            "fields": self.fields,
            "labels": self.labels(),
            "pdf": None
            if self.pdf is None
            else {
                "valid": self.pdf.valid,
                "reason": self.pdf.reason,
                "signer": self.pdf.signer,
                "signer_name": self.pdf.signer_name,
                "signed_at": self.pdf.signed_at.isoformat() if self.pdf.signed_at else None,
                "level": self.pdf.level,
                "modification": self.pdf.modification,
            },
        }


def verify_presented(
    item: bytes | str,
    *,
    issuer_jwks: dict[str, Any],
    trust_roots: Sequence[x509.Certificate] = (),
    status_lists: Iterable[str] | None = None,
    at: datetime,
    audience: str | None = None,
    nonce: str | None = None,
    qr: str | None = None,
    max_age: timedelta = MAX_AGE,
) -> Verdict:
    """The verdict on ``item`` (see the module docstring); outside an event loop."""
    checker = _Checker(issuer_jwks, status_lists, at)
    kind, value = _recognise(item)
    if kind != KIND_PDF:
        _no_qr_alongside(qr)
        return checker.text(kind, value, audience, nonce, max_age)  # type: ignore[arg-type]
    roots = _trust_roots(trust_roots)
    return checker.pdf(value, pades.validate(value, roots), qr)  # type: ignore[arg-type]


async def verify_presented_async(
    item: bytes | str,
    *,
    issuer_jwks: dict[str, Any],
    trust_roots: Sequence[x509.Certificate] = (),
    status_lists: Iterable[str] | None = None,
    at: datetime,
    audience: str | None = None,
    nonce: str | None = None,
    qr: str | None = None,
    max_age: timedelta = MAX_AGE,
) -> Verdict:
    """:func:`verify_presented` inside an event loop (the PDF validation is pyHanko's async one)."""
    checker = _Checker(issuer_jwks, status_lists, at)
    kind, value = _recognise(item)
    if kind != KIND_PDF:
        _no_qr_alongside(qr)
        return checker.text(kind, value, audience, nonce, max_age)  # type: ignore[arg-type]
    roots = _trust_roots(trust_roots)
    return checker.pdf(value, await pades.validate_async(value, roots), qr)  # type: ignore[arg-type]


def _recognise(item: Any) -> tuple[str, bytes | str]:
    """The kind of ``item`` and the value to verify (text stripped, or the PDF bytes)."""
    if isinstance(item, bytes | bytearray):
        data = bytes(item)
        if len(data) > MAX_ITEM:
            raise InvalidArgument(f"the item is larger than {MAX_ITEM // (1024 * 1024)} MiB")
        if data.startswith(b"%PDF"):
            return KIND_PDF, data
        try:
            item = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidArgument("not a QR text, an SD-JWT or a PDF (binary that is not a PDF)") from None
    if not isinstance(item, str):
        raise InvalidArgument("the item is text (a QR text, an SD-JWT) or the bytes of a PDF")
    text = item.strip()
    if len(text) > MAX_ITEM:
        raise InvalidArgument("the item is too large")
    if text.startswith(PREFIX):
        return KIND_QR, text
    if "~" in text and text.isascii() and not any(char.isspace() for char in text):
        try:
            _, key_binding = split_key_binding(text)
        except VerificationFailed as error:
            raise InvalidArgument(error.message) from None
        return (KIND_PRESENTATION if key_binding else KIND_CREDENTIAL), text
    raise InvalidArgument(f"not a QR text ({PREFIX}…), an SD-JWT (<JWT>~…~) or a PDF")


def _no_qr_alongside(qr: str | None) -> None:
    if qr is not None:
        raise InvalidArgument("a QR text alongside goes with a PDF only (verify a QR text as the item itself)")


def _trust_roots(trust_roots: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    roots = list(trust_roots)
    if not roots or not all(isinstance(root, x509.Certificate) for root in roots):
        raise InvalidArgument("a PDF is verified against at least one trust root certificate (the issuer's CA)")
    return roots


class _Checker:
    def __init__(self, jwks: Any, status_lists: Iterable[str] | None, at: datetime) -> None:
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise InvalidArgument("the verification instant must be a timezone-aware datetime")
        if not jwks_keys(jwks):
            raise InvalidArgument("the issuer keys (a JWK Set) hold no P-256 signing key")
        self.jwks: dict[str, Any] = jwks
        self.at = at
        self.lists: dict[str, str] = {}
        for token in status_lists or ():
            self.lists.setdefault(_subject(token), token)

    def text(
        self, kind: str, text: str, audience: str | None, nonce: str | None, max_age: timedelta = MAX_AGE
    ) -> Verdict:
        if kind == KIND_QR:
            return self.qr(text)
        if kind == KIND_PRESENTATION:
            if not audience or not nonce:
                raise InvalidArgument("a presentation is verified with the audience and nonce the verifier expects")
            try:
                presented = verify_presentation(
                    text, self.jwks, audience=audience, nonce=nonce, at=self.at, max_age=max_age
                )
            except InvalidArgument as error:
                return Verdict(kind, Outcome.INVALID, error.message)
            return self.credential(
                kind, presented.credential, "the issuer signature and the holder's key binding verify"
            )
        try:
            credential = verify_credential(text, self.jwks, at=self.at)
        except InvalidArgument as error:
            return Verdict(kind, Outcome.INVALID, error.message)
        return self.credential(kind, credential, "the issuer signature verifies")

    def qr(self, text: str) -> Verdict:
        try:
            verified = QrVerifier(self.jwks).verify(text, at=self.at)
        except InvalidArgument as error:
            return Verdict(KIND_QR, Outcome.INVALID, error.message)
        return self.qr_verdict(verified)

    def qr_verdict(self, verified: VerifiedQr, kind: str = KIND_QR, prefix: str = "") -> Verdict:
        qr = verified.fields
        fields: dict[str, Any] = {
            "document_type": qr.document_type,
            "holder_name": qr.holder_name,
            "id_last_digits": qr.id_last_digits,
        }
        if qr.result_text is not None:
            fields["convictions"] = qr.result_text
        fields.update(issued_on=qr.issued_on.isoformat(), certificate_id=qr.certificate_id)
        reference = StatusReference(qr.status_index, qr.status_uri) if qr.status_uri else None
        outcome, status_note, checked = self.status(reference)
        if reference is None:
            status_note = f"{NOT_CHECKED}: the QR names no status list"
        reason = f"{prefix or 'the QR: '}the issuer signature verifies; {status_note}"
        return Verdict(kind, outcome, reason, fields, verified.issuer, verified.issued_at, checked, reference)

    def credential(self, kind: str, credential: VerifiedCredential, what: str) -> Verdict:
        outcome, status_note, checked = self.status(credential.status)
        if credential.status is None:
            status_note = f"{NOT_CHECKED}: the credential names no status list"
        reason = f"{what}; {status_note}"
        return Verdict(
            kind, outcome, reason, dict(credential.claims), credential.issuer, credential.issued_at, checked,
            credential.status,
        )  # fmt: skip

    def pdf(self, data: bytes, validation: pades.PdfValidation, qr: str | None) -> Verdict:
        if not validation.valid:
            return Verdict(KIND_PDF, Outcome.INVALID, f"the PDF signature: {validation.reason}", pdf=validation)
        signature = {
            "signer": validation.signer,
            "signer_name": validation.signer_name,
            "signed_at": validation.signed_at.isoformat() if validation.signed_at else None,
            "signature_level": validation.level,
        }
        signature = {name: value for name, value in signature.items() if value is not None}
        alongside = qr is not None
        text = qr.strip() if isinstance(qr, str) else _qr_in_pdf(data)
        if text is None:
            reason = f"the PDF signature is valid; {NOT_CHECKED}: the PDF carries no QR text (give it alongside)"
            return Verdict(KIND_PDF, Outcome.VALID, reason, signature, pdf=validation)
        where = "the QR given alongside" if alongside else "the QR it carries"
        try:
            verified = QrVerifier(self.jwks).verify(text, at=self.at)
        except InvalidArgument as error:
            reason = f"the PDF signature is valid, but {where} does not verify: {error.message}"
            return Verdict(KIND_PDF, Outcome.INVALID, reason, signature, pdf=validation)
        if alongside:
            where += " (checked apart from the PDF: compare its number with the printed one)"
        verdict = self.qr_verdict(verified, KIND_PDF, f"the PDF signature is valid; {where}: ")
        return Verdict(
            KIND_PDF, verdict.outcome, verdict.reason, {**verdict.fields, **signature}, verdict.issuer,
            verdict.issued_at, verdict.status_checked, verdict.status, validation,
        )  # fmt: skip

    def status(self, reference: StatusReference | None) -> tuple[Outcome, str, bool]:
        """The outcome the status list gives, the words for it, and whether a list was read."""
        if reference is None:
            return Outcome.VALID, NOT_CHECKED, False
        token = self.lists.get(reference.uri)
        if token is None:
            return Outcome.VALID, f"{NOT_CHECKED}: no status list supplied for {reference.uri}", False
        try:
            verified = verify_status_list(token, self.jwks, uri=reference.uri, at=self.at)
        except InvalidArgument as error:
            raise InvalidArgument(f"the status list for {reference.uri} does not verify: {error.message}") from None
        try:
            status = credential_status(reference, verified)
        except InvalidArgument as error:
            return (
                Outcome.INVALID,
                f"the status list says nothing usable of entry {reference.idx}: {error.message}",
                True,
            )
        when = verified.issued_at.isoformat()
        if status is Status.INVALID:
            return Outcome.REVOKED, f"revoked (status list of {when})", True
        if status is Status.SUSPENDED:
            return Outcome.SUSPENDED, f"suspended (status list of {when})", True
        return Outcome.VALID, f"not revoked nor suspended (status list of {when})", True


def _subject(token: Any) -> str:
    """The ``sub`` (the list's URI) of a Status List Token, unverified: only to pick the list to verify."""
    if not isinstance(token, str) or token.strip().count(".") != 2:
        raise InvalidArgument("a status list is a Status List Token (a compact JWS, statuslist+jwt)")
    try:
        claims = json.loads(b64url_decode(token.strip().split(".")[1]))
    except (InvalidArgument, ValueError, UnicodeDecodeError):
        raise InvalidArgument("the status list token's payload is not base64url JSON") from None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    if not isinstance(subject, str) or not subject:
        raise InvalidArgument("the status list token names no list URI (sub)")
    return subject


def _qr_in_pdf(data: bytes) -> str | None:
    """The QR text in the PDF's document information (``/Subject``, or ``/Keywords``)."""
    from pyhanko.pdf_utils.generic import IndirectObject
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = reader.embedded_signatures
        # the document information as signed: an update appended later may change /Info and still pass pyHanko's
        # difference analysis (it counts as metadata), so a QR text from there would not be the signed one
        if not signatures:
            return None
        signed = reader.get_historical_resolver(signatures[0].signed_revision)
        trailer = signed.trailer_view
        raw = trailer.raw_get("/Info") if "/Info" in trailer else {}
        info = signed(raw) if isinstance(raw, IndirectObject) else raw
        subject, keywords = info.get("/Subject"), info.get("/Keywords")
    except (PdfError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    for value in (subject, keywords):  # Base45 has a space: the whole value is the QR text, never a word of it
        if isinstance(value, str) and value.strip().startswith(PREFIX):
            return value.strip()
    return None
