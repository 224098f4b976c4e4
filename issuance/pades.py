"""PAdES signatures on issued PDFs (ETSI EN 319 142-1, baseline B-B; B-T when a time-stamping authority is given).

The issuing authority signs the rendered certificate (``issuance.pdf``) with an ECDSA P-256 document-signing key
through pyHanko: a CAdES-detached CMS signature (``/SubFilter /ETSI.CAdES.detached``, SHA-256, the signing
certificate bound by the ``signing-certificate-v2`` attribute, no CMS signing-time: the time is the signature
dictionary's ``/M``, as EN 319 142-1 §5.3 requires) in a *certification* signature with DocMDP permission 1 (ISO
32000-2 §12.8.2.2: no change allowed), so every PDF reader flags any later edit. The signature dictionary names
the signer (``/Name``) and the reason (``/Reason`` "Cấp phiếu lý lịch tư pháp"). With no time-stamping authority
reachable offline the level is B-B; passing a pyHanko ``TimeStamper`` (RFC 3161) adds the signature time-stamp of
B-T.

The signer's certificate (:func:`document_signing_certificate`, issued by the platform CA) has key usage
digitalSignature + nonRepudiation (contentCommitment), critical, and the extended key usage id-kp-documentSigning
(RFC 9336, 1.3.6.1.5.5.7.3.36) only: a TLS certificate of the same CA cannot sign a certificate, and validation
(:func:`validate`) requires both.

Validation checks, against the trust roots given (offline: nothing is fetched, revocation is not checked here —
the certificate's own status list says whether it was revoked): the signed bytes are intact, the CMS signature
verifies, the signer chains to a root and its key usages fit, and nothing but long-term-validation material
(DSS, document time-stamps) was appended after signing (pyHanko's difference analysis: ``ModificationLevel``
NONE or LTA_UPDATES). The result says valid or invalid, and why.

:func:`signed_pdf` / :func:`signed_certificate` return the signed bytes with their SHA-256, which the issuer's
vault signature binds (``vault.signatures``: ``content_sha256``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.general import SigningError
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import InvalidCertificateError
from pyhanko_certvalidator.registry import SimpleCertificateStore

from core.errors import InvalidArgument, Unavailable
from issuance.pdf import CertificateView, render_certificate
from vault.signatures import content_digest

REASON = "Cấp phiếu lý lịch tư pháp"
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning, RFC 9336
FIELD = "Signature1"
VALIDITY = dt.timedelta(days=825)
KEY_USAGE = KeyUsageConstraints(
    key_usage={"digital_signature", "non_repudiation"},
    match_all_key_usages=True,
    extd_key_usage={DOCUMENT_SIGNING.dotted_string},
    explicit_extd_key_usage_required=True,
)
UNCHANGED = (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES)
VALID = "the signature is valid and the document unchanged since signing"


@dataclass(frozen=True, slots=True)
class DocumentSigner:
    """The authority's document-signing key, its certificate and the chain to embed (CA certificates);
    ``name`` is what readers show as the signer (``/Name``)."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.key, ec.EllipticCurvePrivateKey) or not isinstance(self.certificate, x509.Certificate):
            raise InvalidArgument("a document signer is an ECDSA key and its certificate")
        if self.key.public_key() != self.certificate.public_key():
            raise InvalidArgument("the document-signing key does not match its certificate")
        if not isinstance(self.chain, tuple) or not all(isinstance(c, x509.Certificate) for c in self.chain):
            raise InvalidArgument("the chain is a tuple of certificates")
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidArgument("the document signer needs a name")

    @classmethod
    def from_pem(cls, key_pem: bytes, certificate_pem: bytes, chain_pem: bytes = b"", *, name: str) -> DocumentSigner:
        """Load a PKCS#8 (unencrypted) ECDSA key, its certificate and the PEM chain (CA certificates)."""
        try:
            key = serialization.load_pem_private_key(key_pem, None)
        except (ValueError, TypeError):
            raise InvalidArgument("the document-signing key is not a readable unencrypted PEM key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidArgument("the document-signing key must be an ECDSA key")
        try:
            certificate = x509.load_pem_x509_certificate(certificate_pem)
            chain = tuple(x509.load_pem_x509_certificates(chain_pem)) if chain_pem.strip() else ()
        except ValueError:
            raise InvalidArgument("the document-signing certificate or chain is not readable PEM") from None
        return cls(key=key, certificate=certificate, chain=chain, name=name)


@dataclass(frozen=True, slots=True)
class PdfValidation:
    """The verdict on a PDF's signature: ``valid`` and the ``reason`` (always set); when the signature could be
    read, the signer's certificate subject CN, the ``/Name``, the signing time (``/M``, or the time-stamp), the
    PAdES level found (B-B or B-T) and pyHanko's modification level."""

    valid: bool
    reason: str
    signer: str | None = None
    signer_name: str | None = None
    signed_at: dt.datetime | None = None
    level: str | None = None
    modification: str | None = None


@dataclass(frozen=True, slots=True)
class SignedPdf:
    """Signed PDF bytes and their SHA-256 (``digest``: base64url, as ``content_sha256`` of the vault)."""

    content: bytes
    sha256: bytes

    @property
    def digest(self) -> str:
        return content_digest(self.sha256)


def document_signing_certificate(
    issuer_certificate: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    public_key: ec.EllipticCurvePublicKey,
    *,
    organization: str = "Bộ Tư pháp",
    validity: dt.timedelta = VALIDITY,
) -> x509.Certificate:
    """A document-signing certificate for ``public_key`` (ECDSA P-256 or P-384), issued by the platform CA:
    KU digitalSignature + nonRepudiation (critical), EKU id-kp-documentSigning only, not a CA."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name not in ("secp256r1", "secp384r1"):
        raise InvalidArgument("the document-signing key must be ECDSA P-256 or P-384")
    if not common_name.strip():
        raise InvalidArgument("the document-signing certificate needs a name")
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + validity, issuer_certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def _pyhanko_signer(signer: DocumentSigner) -> signers.SimpleSigner:
    der = signer.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return signers.SimpleSigner(
        signing_cert=_asn1(signer.certificate),
        signing_key=asn1_keys.PrivateKeyInfo.load(der),
        cert_registry=SimpleCertificateStore.from_certs([_asn1(c) for c in signer.chain]),
    )


async def sign_async(
    pdf: bytes,
    signer: DocumentSigner,
    *,
    reason: str = REASON,
    location: str | None = None,
    timestamper: TimeStamper | None = None,
) -> bytes:
    """``pdf`` with a PAdES certification signature appended (an incremental update): B-B, or B-T with a
    ``timestamper``."""
    if not isinstance(pdf, bytes | bytearray) or not bytes(pdf).startswith(b"%PDF-"):
        raise InvalidArgument("only a PDF can be signed")
    if not isinstance(signer, DocumentSigner):
        raise InvalidArgument("a DocumentSigner is required")
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        location=location,
        name=signer.name,
        certify=True,
        docmdp_permissions=fields.MDPPerm.NO_CHANGES,
        use_pades_lta=False,
    )
    reserved = 4096 + 2048 * len(signer.chain) + (8192 if timestamper else 0)
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(bytes(pdf)), strict=False)
        out = await signers.async_sign_pdf(
            writer, meta, signer=_pyhanko_signer(signer), timestamper=timestamper, bytes_reserved=reserved
        )
    except TimestampRequestError:
        raise Unavailable("the time-stamping authority did not answer") from None
    except (PdfError, SigningError, ValueError) as error:
        raise InvalidArgument(f"the PDF cannot be signed ({type(error).__name__})") from None
    return bytes(out.getbuffer())


def sign(
    pdf: bytes,
    signer: DocumentSigner,
    *,
    reason: str = REASON,
    location: str | None = None,
    timestamper: TimeStamper | None = None,
) -> bytes:
    """:func:`sign_async` for code outside an event loop."""
    return asyncio.run(sign_async(pdf, signer, reason=reason, location=location, timestamper=timestamper))


def signed_pdf(pdf: bytes, signer: DocumentSigner, *, timestamper: TimeStamper | None = None) -> SignedPdf:
    """Sign ``pdf``; the signed bytes and their SHA-256 (outside an event loop)."""
    return asyncio.run(signed_pdf_async(pdf, signer, timestamper=timestamper))


async def signed_pdf_async(pdf: bytes, signer: DocumentSigner, *, timestamper: TimeStamper | None = None) -> SignedPdf:
    """Sign ``pdf``; the signed bytes and their SHA-256."""
    content = await sign_async(pdf, signer, timestamper=timestamper)
    return SignedPdf(content=content, sha256=hashlib.sha256(content).digest())


def signed_certificate(
    view: CertificateView, qr_png: bytes, signer: DocumentSigner, *, timestamper: TimeStamper | None = None
) -> SignedPdf:
    """Render the certificate (``issuance.pdf.render_certificate``) and sign it (outside an event loop)."""
    return asyncio.run(signed_certificate_async(view, qr_png, signer, timestamper=timestamper))


async def signed_certificate_async(
    view: CertificateView, qr_png: bytes, signer: DocumentSigner, *, timestamper: TimeStamper | None = None
) -> SignedPdf:
    """Render the certificate and sign it; the bytes and their SHA-256. CPU-bound (about 0.1 s): a service
    runs it in a worker thread or process."""
    return await signed_pdf_async(render_certificate(view, qr_png), signer, timestamper=timestamper)


def _roots(trust_roots: Sequence[x509.Certificate]) -> list[asn1_x509.Certificate]:
    if not trust_roots or not all(isinstance(root, x509.Certificate) for root in trust_roots):
        raise InvalidArgument("validation needs at least one trust root certificate")
    return [_asn1(root) for root in trust_roots]


def _common_name(certificate: asn1_x509.Certificate) -> str | None:
    value = certificate.subject.native.get("common_name")
    return value if isinstance(value, str) else None


async def validate_async(pdf: bytes, trust_roots: Sequence[x509.Certificate]) -> PdfValidation:
    """The verdict on the first signature of ``pdf`` against ``trust_roots`` (never raises on a bad PDF)."""
    roots = _roots(trust_roots)
    try:
        reader = PdfFileReader(io.BytesIO(bytes(pdf)), strict=False)
        signatures = reader.embedded_signatures
    except (PdfError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return PdfValidation(False, "not a readable PDF")
    if not signatures:
        return PdfValidation(False, "the PDF carries no signature")
    embedded = signatures[0]
    context = ValidationContext(trust_roots=roots, allow_fetching=False)
    try:
        status = await async_validate_pdf_signature(embedded, context, key_usage_settings=KEY_USAGE)
    except (PdfError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        return PdfValidation(False, f"the signature cannot be read ({type(error).__name__})")
    name = embedded.sig_object.get("/Name")
    timestamp = status.timestamp_validity
    found = PdfValidation(
        valid=False,
        reason="",
        signer=_common_name(status.signing_cert),
        signer_name=str(name) if name is not None else None,
        signed_at=timestamp.timestamp if timestamp is not None else embedded.self_reported_timestamp,
        level="B-T" if timestamp is not None else "B-B",
        modification=status.modification_level.name if status.modification_level is not None else None,
    )
    if not status.intact:
        reason = "the signed bytes were altered"
    elif not status.valid:
        reason = "the signature does not verify"
    elif not status.trusted:
        reason = "the signer's certificate does not chain to a trusted issuer"
        try:
            KEY_USAGE.validate(status.signing_cert)
        except InvalidCertificateError:
            reason = "the signer's certificate lacks the document-signing key usage (digitalSignature, "
            reason += "nonRepudiation, id-kp-documentSigning)"

    elif timestamp is not None and not (timestamp.intact and timestamp.valid and timestamp.trusted):
        reason = "the signature time-stamp is not valid"
    elif status.modification_level not in UNCHANGED or not status.docmdp_ok:
        level = status.modification_level.name if status.modification_level is not None else "unknown"
        reason = f"the document was changed after signing (modification level {level})"
    else:
        return PdfValidation(
            True, VALID, found.signer, found.signer_name, found.signed_at, found.level, found.modification
        )
    return PdfValidation(
        False, reason, found.signer, found.signer_name, found.signed_at, found.level, found.modification
    )


def validate(pdf: bytes, trust_roots: Sequence[x509.Certificate]) -> PdfValidation:
    """:func:`validate_async` for code outside an event loop (the CLI)."""
    return asyncio.run(validate_async(pdf, trust_roots))
