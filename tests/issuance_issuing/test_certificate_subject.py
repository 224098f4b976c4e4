"""An issued PDF carries its QR text in the signed document information (/Subject), so a signed PDF alone verifies
(`dinhdanh verify FILE.pdf`, no --qr), and a changed /Subject breaks the signature."""

from __future__ import annotations

import io

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.pdf_utils.generic import NameObject, TextStringObject
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from issuance.pades import DocumentSigner, validate
from issuance.verify import verify_presented
from tests.issuance.test_certificates import AT, ISSUER_KEY, issue
from tests.issuance.test_pades import make_ca, make_signer

Ca = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


@pytest.fixture(scope="module")
def ca() -> Ca:
    return make_ca()


@pytest.fixture(scope="module")
def signer(ca: Ca) -> DocumentSigner:
    return make_signer(ca)


def subject_of(pdf: bytes) -> str:
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    return str(reader.trailer["/Info"].get_object()["/Subject"])


def test_the_signed_pdf_carries_its_qr_text(signer: DocumentSigner, ca: Ca) -> None:
    issued = issue(signer)
    assert subject_of(issued.pdf) == issued.qr_text
    assert validate(issued.pdf, [ca[0]]).valid
    verdict = verify_presented(issued.pdf, issuer_jwks=ISSUER_KEY.jwks(), trust_roots=[ca[0]], at=AT)
    assert verdict.valid, verdict.reason
    assert "--qr" not in verdict.reason


def test_a_pdf_whose_subject_was_changed_after_signing_fails(signer: DocumentSigner, ca: Ca) -> None:
    issued = issue(signer)
    other = issue(signer, certificate_id="LLTP-2026-000999")
    writer = IncrementalPdfFileWriter(io.BytesIO(issued.pdf), strict=False)
    info = writer.trailer["/Info"].get_object()
    info[NameObject("/Subject")] = TextStringObject(other.qr_text)  # another valid certificate's QR
    writer.update_container(info)
    out = io.BytesIO()
    writer.write(out)
    assert subject_of(out.getvalue()) == other.qr_text
    # pyHanko counts an /Info change as metadata (the signature stays valid); the verifier reads the signed one
    verdict = verify_presented(out.getvalue(), issuer_jwks=ISSUER_KEY.jwks(), trust_roots=[ca[0]], at=AT)
    assert verdict.valid, verdict.reason
    assert verdict.fields.get("certificate_id", issued.certificate_id) == issued.certificate_id
    assert other.certificate_id not in str(verdict.to_json())
