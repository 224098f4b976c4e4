"""PAdES signatures on issued PDFs (issuance/pades.py): signed, validated against a trust root, tampering found."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from core.errors import InvalidArgument, Unavailable
from issuance.pades import (
    DOCUMENT_SIGNING,
    REASON,
    DocumentSigner,
    PdfValidation,
    SignedPdf,
    document_signing_certificate,
    sign,
    sign_async,
    signed_certificate,
    signed_certificate_async,
    signed_pdf,
    validate,
    validate_async,
)
from issuance.pdf import render_certificate
from tests.issuance.test_pdf import qr_png, text_of, view
from vault.signatures import content_digest

SIGNER_NAME = "Trung tâm Lý lịch tư pháp quốc gia"


def make_ca(name: str = "Dinhdanh Platform CA") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_signer(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> DocumentSigner:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = document_signing_certificate(ca[0], ca[1], "Trung tâm Lý lịch tư pháp quốc gia", key.public_key())
    return DocumentSigner(key=key, certificate=cert, chain=(ca[0],), name=SIGNER_NAME)


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    return make_ca()


@pytest.fixture(scope="module")
def signer(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> DocumentSigner:
    return make_signer(ca)


@pytest.fixture(scope="module")
def unsigned() -> bytes:
    return render_certificate(view(), qr_png())


@pytest.fixture(scope="module")
def signed(unsigned: bytes, signer: DocumentSigner) -> bytes:
    return sign(unsigned, signer)


def test_the_document_signing_certificate_is_made_for_signing_documents(signer: DocumentSigner) -> None:
    cert = signer.certificate
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert usage.value.content_commitment
    assert not usage.value.key_cert_sign
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [DOCUMENT_SIGNING]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def test_a_signed_certificate_validates(signed: bytes, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> None:
    result = validate(signed, [ca[0]])
    assert result == PdfValidation(
        valid=True,
        reason="the signature is valid and the document unchanged since signing",
        signer="Trung tâm Lý lịch tư pháp quốc gia",
        signer_name=SIGNER_NAME,
        signed_at=result.signed_at,
        level="B-B",
        modification="NONE",
    )
    assert result.signed_at is not None
    assert abs(result.signed_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


def test_the_signature_names_the_signer_and_the_reason_and_certifies(signed: bytes) -> None:
    reader = PdfFileReader(io.BytesIO(signed))
    (embedded,) = reader.embedded_signatures
    assert embedded.sig_object["/Reason"] == REASON == "Cấp phiếu lý lịch tư pháp"
    assert embedded.sig_object["/Name"] == SIGNER_NAME
    assert embedded.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert embedded.docmdp_level is not None
    assert embedded.docmdp_level.value == 1  # certified: no changes allowed


def test_the_signed_pdf_still_reads_in_vietnamese(signed: bytes) -> None:
    assert "Không có án tích" in text_of(signed)
    assert "Nguyễn Thị Ánh" in text_of(signed)


def test_a_byte_changed_in_the_signed_range_is_invalid(
    signed: bytes, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    start = signed.index(b"stream", signed.index(b"/FlateDecode")) + 20  # inside the first compressed stream
    tampered = bytearray(signed)
    tampered[start] ^= 0x01
    result = validate(bytes(tampered), [ca[0]])
    assert not result.valid
    assert "altered" in result.reason


def test_an_incremental_update_after_signing_is_detected(
    signed: bytes, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    overlay = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 12 Tf 50 50 Td (Co an tich) Tj ET"))
    writer.add_stream_to_page(0, overlay)
    out = io.BytesIO()
    writer.write(out)
    result = validate(out.getvalue(), [ca[0]])
    assert not result.valid
    assert result.modification == "OTHER"
    assert "changed after signing" in result.reason


def test_an_untrusted_signer_is_invalid(
    unsigned: bytes, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    forged = sign(unsigned, make_signer(make_ca("Dinhdanh Platform CA")))  # same name, another key
    result = validate(forged, [ca[0]])
    assert not result.valid
    assert "trusted" in result.reason


def test_a_certificate_not_for_document_signing_is_invalid(
    unsigned: bytes, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    tls = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vault")]))
        .issuer_name(ca[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca[1], hashes.SHA256())
    )
    result = validate(sign(unsigned, DocumentSigner(key=key, certificate=tls, chain=(ca[0],), name="vault")), [ca[0]])
    assert not result.valid
    assert "key usage" in result.reason


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "not a readable PDF"), (b"%PDF-1.7\n garbage", "not a readable PDF"), (None, "no signature")],
    ids=["empty", "garbage", "unsigned"],
)
def test_unreadable_or_unsigned_pdfs_are_invalid(
    content: bytes | None, reason: str, unsigned: bytes, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    result = validate(unsigned if content is None else content, [ca[0]])
    assert not result.valid
    assert reason in result.reason


def test_validation_needs_a_trust_root(signed: bytes) -> None:
    with pytest.raises(InvalidArgument, match="trust root"):
        validate(signed, [])


def test_signing_refuses_what_is_not_a_pdf(signer: DocumentSigner) -> None:
    with pytest.raises(InvalidArgument, match="PDF"):
        sign(b"<?xml version='1.0'?><a/>", signer)


def test_the_signer_loads_from_pem(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], unsigned: bytes) -> None:
    from cryptography.hazmat.primitives import serialization

    key = ec.generate_private_key(ec.SECP256R1())
    cert = document_signing_certificate(ca[0], ca[1], "Sở Tư pháp thành phố Hà Nội", key.public_key())
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    chain = ca[0].public_bytes(serialization.Encoding.PEM)
    loaded = DocumentSigner.from_pem(pem_key, cert.public_bytes(serialization.Encoding.PEM), chain, name="Sở Tư pháp")
    result = validate(sign(unsigned, loaded), [ca[0]])
    assert result.valid
    assert result.signer == "Sở Tư pháp thành phố Hà Nội"
    with pytest.raises(InvalidArgument, match="key"):
        DocumentSigner.from_pem(b"not a key", cert.public_bytes(serialization.Encoding.PEM), name="x")


def test_the_signed_pdf_and_its_sha256_for_the_vault(signer: DocumentSigner, unsigned: bytes) -> None:
    result = signed_pdf(unsigned, signer)
    assert isinstance(result, SignedPdf)
    assert result.sha256 == hashlib.sha256(result.content).digest()
    assert result.digest == content_digest(result.sha256)
    certificate = signed_certificate(view(), qr_png(), signer)
    assert certificate.sha256 == hashlib.sha256(certificate.content).digest()
    assert "Nguyễn Thị Ánh" in text_of(certificate.content)


def test_validation_runs_inside_an_event_loop(
    signed: bytes, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    async def main() -> PdfValidation:
        return await validate_async(signed, [ca[0]])

    assert asyncio.run(main()).valid


def test_a_time_stamped_signature_is_b_t(
    unsigned: bytes, signer: DocumentSigner, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # pyHanko's test TSA signs with RSA only
    now = dt.datetime.now(dt.UTC)
    tsa = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Dinhdanh TSA")]))
        .issuer_name(ca[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(ca[1], hashes.SHA256())
    )
    timestamper = DummyTimeStamper(
        tsa_cert=asn1_x509.Certificate.load(tsa.public_bytes(serialization.Encoding.DER)),
        tsa_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        ),
    )
    result = validate(sign(unsigned, signer, timestamper=timestamper), [ca[0]])
    assert result.valid, result.reason
    assert result.level == "B-T"


def test_signing_runs_inside_an_event_loop(
    unsigned: bytes, signer: DocumentSigner, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    async def main() -> bytes:
        return await sign_async(unsigned, signer)

    assert validate(asyncio.run(main()), [ca[0]]).valid


def test_a_signer_whose_key_does_not_match_its_certificate_is_refused(signer: DocumentSigner) -> None:
    with pytest.raises(InvalidArgument, match="does not match"):
        DocumentSigner(key=ec.generate_private_key(ec.SECP256R1()), certificate=signer.certificate, chain=(), name="x")
    with pytest.raises(InvalidArgument, match="DocumentSigner"):
        sign(b"%PDF-1.7\n", "not a signer")  # type: ignore[arg-type]


def test_a_time_stamping_authority_that_does_not_answer_is_unavailable(unsigned: bytes, signer: DocumentSigner) -> None:
    from pyhanko.sign.timestamps import HTTPTimeStamper

    with pytest.raises(Unavailable, match="time-stamping"):
        sign(unsigned, signer, timestamper=HTTPTimeStamper("http://127.0.0.1:9/tsa", timeout=2))


def test_the_signed_certificate_inside_an_event_loop(
    signer: DocumentSigner, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    async def main() -> SignedPdf:
        return await signed_certificate_async(view(), qr_png(), signer)

    result = asyncio.run(main())
    assert result.sha256 == hashlib.sha256(result.content).digest()
    assert validate(result.content, [ca[0]]).valid
