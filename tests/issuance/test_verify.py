"""Offline verification of what a citizen shows (issuance/verify.py): a QR text, an SD-JWT VC, a presentation,
a signed PDF — valid, invalid, revoked or suspended, the status checked or said not to be."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from core.errors import InvalidArgument
from issuance.issuer_keys import SigningKey
from issuance.pades import sign
from issuance.pdf import render_certificate
from issuance.presentations import present
from issuance.qr import DOC_CRIMINAL_RECORD_1, QrFields, encode_qr, render_qr
from issuance.status_list import Status, StatusList, sign_status_list
from issuance.verify import KIND_CREDENTIAL, KIND_PDF, KIND_PRESENTATION, KIND_QR, Outcome, Verdict, verify_presented
from tests.issuance.forgery import FORGED_NAME, forged_credential, forged_qr
from tests.issuance.sd_jwt_helpers import AT, HOLDER_KEY, ISSUER, ISSUER_KEY, STATUS, issued
from tests.issuance.test_pades import make_ca, make_signer
from tests.issuance.test_pdf import view

JWKS = ISSUER_KEY.jwks()
AUDIENCE = "https://ngan-hang.example/tuyen-dung"
NONCE = "n-0S6_WzA2Mj"
FIELDS = QrFields(
    document_type=DOC_CRIMINAL_RECORD_1,
    holder_name="Nguyễn Thị Minh Khai",
    id_last_digits="2345",
    convictions=0,
    issued_on=date(2026, 12, 1),
    certificate_id="LLTP-2026-000042",
    status_index=STATUS.idx,
    status_uri=STATUS.uri,
)


def qr_text(fields: QrFields = FIELDS, key: SigningKey = ISSUER_KEY) -> str:
    return encode_qr(key, fields, issuer=ISSUER, issued_at=AT, expires_at=AT + timedelta(days=180))


def status_token(value: Status = Status.VALID, uri: str = STATUS.uri) -> str:
    status_list = StatusList.new(1024, 2)
    status_list.set(STATUS.idx, value)
    return sign_status_list(ISSUER_KEY, status_list, uri=uri, at=AT, lifetime=timedelta(days=1))


def verify(item: bytes | str, **extra: object) -> Verdict:
    arguments: dict[str, object] = {"issuer_jwks": JWKS, "at": AT}
    arguments.update(extra)
    return verify_presented(item, **arguments)  # type: ignore[arg-type]


def tampered_char(text: str, at: int) -> str:
    replacement = "A" if text[at] != "A" else "B"
    return text[:at] + replacement + text[at + 1 :]


# --- the QR ---


def test_a_valid_qr_without_a_status_list_is_valid_with_the_status_not_checked() -> None:
    verdict = verify(qr_text())
    assert (verdict.kind, verdict.outcome, verdict.status_checked) == (KIND_QR, Outcome.VALID, False)
    assert "status not checked" in verdict.reason
    assert verdict.issuer == ISSUER
    assert verdict.issued_at == AT
    assert verdict.fields["holder_name"] == "Nguyễn Thị Minh Khai"
    assert verdict.fields["convictions"] == "Không có án tích"
    assert verdict.fields["certificate_id"] == "LLTP-2026-000042"
    assert verdict.fields["issued_on"] == "2026-12-01"


def test_a_valid_qr_with_its_status_list_is_valid_and_checked() -> None:
    verdict = verify(qr_text(), status_lists=[status_token()])
    assert (verdict.outcome, verdict.status_checked) == (Outcome.VALID, True)
    assert verdict.valid
    assert "status not checked" not in verdict.reason


def test_a_qr_with_one_character_changed_is_invalid() -> None:
    text = qr_text()
    for position in (len(text) // 2, len(text) - 3):
        verdict = verify(tampered_char(text, position))
        assert (verdict.kind, verdict.outcome, verdict.status_checked) == (KIND_QR, Outcome.INVALID, False)
        assert verdict.fields == {}
        assert not verdict.valid


def test_a_qr_with_a_signed_field_changed_and_re_encoded_is_invalid_by_its_signature() -> None:
    """Valid Base45, zlib and COSE_Sign1 around a changed name (or a revoked QR pointed at a valid status entry):
    only the signature can refuse it (a flipped character above is refused earlier, by zlib)."""
    renamed = verify(forged_qr(qr_text()), status_lists=[status_token()])
    assert (renamed.kind, renamed.outcome, renamed.status_checked) == (KIND_QR, Outcome.INVALID, False)
    assert "signature does not verify" in renamed.reason
    assert renamed.fields == {}
    assert FORGED_NAME not in renamed.reason
    status_list = StatusList.new(1024, 2)
    status_list.set(STATUS.idx, Status.INVALID)  # the QR's own entry revoked, another one valid
    token = sign_status_list(ISSUER_KEY, status_list, uri=STATUS.uri, at=AT, lifetime=timedelta(days=1))
    assert verify(qr_text(), status_lists=[token]).outcome is Outcome.REVOKED
    repointed = verify(forged_qr(qr_text(), {7: STATUS.idx + 1}), status_lists=[token])
    assert (repointed.outcome, repointed.status_checked) == (Outcome.INVALID, False)
    assert "signature does not verify" in repointed.reason


def test_a_qr_signed_by_a_key_the_issuer_does_not_publish_is_invalid() -> None:
    verdict = verify(qr_text(key=SigningKey.from_seed(b"\x77" * 32)))
    assert verdict.outcome is Outcome.INVALID
    assert "unknown kid" in verdict.reason


def test_a_revoked_qr_reports_revoked_and_a_suspended_one_suspended() -> None:
    revoked = verify(qr_text(), status_lists=[status_token(Status.INVALID)])
    assert (revoked.outcome, revoked.status_checked) == (Outcome.REVOKED, True)
    assert revoked.fields["holder_name"] == "Nguyễn Thị Minh Khai"  # what was revoked is still shown
    suspended = verify(qr_text(), status_lists=[status_token(Status.SUSPENDED)])
    assert (suspended.outcome, suspended.status_checked) == (Outcome.SUSPENDED, True)
    assert "suspended" in suspended.reason


def test_a_status_list_for_another_uri_leaves_the_status_unchecked() -> None:
    verdict = verify(qr_text(), status_lists=[status_token(Status.INVALID, uri="https://dinhdanh.example/sl/9")])
    assert (verdict.outcome, verdict.status_checked) == (Outcome.VALID, False)
    assert "status not checked" in verdict.reason


def test_a_status_list_that_does_not_verify_is_unusable_input() -> None:
    forged = StatusList.new(1024, 2)
    token = sign_status_list(SigningKey.from_seed(b"\x78" * 32), forged, uri=STATUS.uri, at=AT)
    with pytest.raises(InvalidArgument, match="status list"):
        verify(qr_text(), status_lists=[token])
    with pytest.raises(InvalidArgument, match="status list"):
        verify(qr_text(), status_lists=["not a token"])


def test_a_qr_naming_no_status_list_says_so() -> None:
    fields = QrFields(**{**{s: getattr(FIELDS, s) for s in QrFields.__slots__}, "status_uri": None})  # type: ignore[arg-type]
    verdict = verify(qr_text(fields), status_lists=[status_token(Status.INVALID)])
    assert (verdict.outcome, verdict.status_checked) == (Outcome.VALID, False)
    assert "names no status list" in verdict.reason


def test_a_qr_text_with_surrounding_whitespace_or_as_file_bytes_is_recognised() -> None:
    assert verify(f"  {qr_text()}\n").outcome is Outcome.VALID
    assert verify((qr_text() + "\n").encode()).kind == KIND_QR


# --- the SD-JWT VC and the presentation ---


def test_a_valid_credential_shows_its_claims() -> None:
    verdict = verify(issued(), status_lists=[status_token()])
    assert (verdict.kind, verdict.outcome, verdict.status_checked) == (KIND_CREDENTIAL, Outcome.VALID, True)
    assert verdict.fields["full_name"] == "Nguyễn Thị Minh Khai"
    assert verdict.fields["criminal_record"] == "Không có án tích"
    assert verdict.issuer == ISSUER
    assert verdict.issued_at == AT


def test_a_tampered_credential_is_invalid() -> None:
    credential = issued()
    jwt, rest = credential.split("~", 1)
    header, payload, signature = jwt.split(".")
    forged = f"{header}.{tampered_char(payload, 10)}.{signature}~{rest}"
    verdict = verify(forged)
    assert (verdict.kind, verdict.outcome) == (KIND_CREDENTIAL, Outcome.INVALID)
    dropped_disclosure = credential.split("~")
    verdict = verify(
        "~".join([dropped_disclosure[0], tampered_char(dropped_disclosure[1], 5), *dropped_disclosure[2:]])
    )
    assert verdict.outcome is Outcome.INVALID


def test_a_credential_with_a_claim_re_encoded_under_the_old_signature_is_invalid() -> None:
    """Valid base64url JSON, every Disclosure referenced: a changed name (its Disclosure and digest replaced),
    a longer ``exp`` or another status entry in the issuer-signed JWT — only the signature can refuse them."""
    credential = issued()
    for forged in (
        forged_credential(credential),
        forged_credential(credential, exp=int((AT + timedelta(days=3650)).timestamp())),
        forged_credential(credential, status={"status_list": {"idx": STATUS.idx + 1, "uri": STATUS.uri}}),
    ):
        verdict = verify(forged, status_lists=[status_token()])
        assert (verdict.kind, verdict.outcome, verdict.status_checked) == (KIND_CREDENTIAL, Outcome.INVALID, False)
        assert "issuer signature does not verify" in verdict.reason
        assert verdict.fields == {}


def test_a_revoked_credential_reports_revoked() -> None:
    verdict = verify(issued(), status_lists=[status_token(Status.INVALID)])
    assert (verdict.outcome, verdict.status_checked) == (Outcome.REVOKED, True)


def test_a_presentation_with_valid_key_binding_shows_only_what_was_disclosed() -> None:
    shown = present(issued(), HOLDER_KEY, disclose=["full_name", "criminal_record"], audience=AUDIENCE,
                    nonce=NONCE, at=AT)  # fmt: skip
    verdict = verify(shown, audience=AUDIENCE, nonce=NONCE, status_lists=[status_token(Status.SUSPENDED)])
    assert (verdict.kind, verdict.outcome, verdict.status_checked) == (KIND_PRESENTATION, Outcome.SUSPENDED, True)
    assert verdict.fields == {"full_name": "Nguyễn Thị Minh Khai", "criminal_record": "Không có án tích"}
    valid = verify(shown, audience=AUDIENCE, nonce=NONCE)
    assert (valid.outcome, valid.status_checked) == (Outcome.VALID, False)


def test_a_presentation_without_valid_key_binding_is_invalid() -> None:
    other_holder = SigningKey.from_seed(b"\x79" * 32)
    credential = issued()
    shown = present(credential, HOLDER_KEY, disclose=["full_name"], audience=AUDIENCE, nonce=NONCE, at=AT)
    sd_jwt = shown[: shown.rfind("~") + 1]
    from issuance.presentations import key_binding_jwt

    wrong_key = sd_jwt + key_binding_jwt(other_holder, sd_jwt, audience=AUDIENCE, nonce=NONCE, at=AT)
    verdict = verify(wrong_key, audience=AUDIENCE, nonce=NONCE)
    assert (verdict.kind, verdict.outcome) == (KIND_PRESENTATION, Outcome.INVALID)
    assert "holder key" in verdict.reason
    assert verify(shown, audience=AUDIENCE, nonce="another").outcome is Outcome.INVALID
    assert verify(shown, audience="https://other.example", nonce=NONCE).outcome is Outcome.INVALID


def test_a_presentation_needs_the_audience_and_nonce_the_verifier_expects() -> None:
    shown = present(issued(), HOLDER_KEY, disclose=["full_name"], audience=AUDIENCE, nonce=NONCE, at=AT)
    with pytest.raises(InvalidArgument, match="audience and nonce"):
        verify(shown)


# --- the signed PDF ---


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    return make_ca()


def with_qr_in_subject(pdf: bytes, text: str) -> bytes:
    """The PDF with the QR text in its document information /Subject (where the verifier looks for it)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    writer.document_meta.subject = text
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def signed_pdf(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> bytes:
    text = qr_text()
    return sign(with_qr_in_subject(render_certificate(view(), render_qr(text)), text), make_signer(ca))


@pytest.fixture(scope="module")
def signed_pdf_without_qr_text(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> bytes:
    return sign(render_certificate(view(), render_qr(qr_text())), make_signer(ca))


def test_a_signed_pdf_carrying_its_qr_text_is_valid(
    signed_pdf: bytes, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    verdict = verify(signed_pdf, trust_roots=[ca[0]], status_lists=[status_token()])
    assert (verdict.kind, verdict.outcome, verdict.status_checked) == (KIND_PDF, Outcome.VALID, True)
    assert verdict.pdf is not None
    assert verdict.pdf.valid
    assert verdict.fields["holder_name"] == "Nguyễn Thị Minh Khai"
    assert verdict.fields["signer"] == "Trung tâm Lý lịch tư pháp quốc gia"
    assert verdict.issuer == ISSUER
    revoked = verify(signed_pdf, trust_roots=[ca[0]], status_lists=[status_token(Status.INVALID)])
    assert revoked.outcome is Outcome.REVOKED


def test_a_tampered_pdf_is_invalid(signed_pdf: bytes, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> None:
    start = signed_pdf.index(b"stream", signed_pdf.index(b"/FlateDecode")) + 20
    tampered = bytearray(signed_pdf)
    tampered[start] ^= 0x01
    verdict = verify(bytes(tampered), trust_roots=[ca[0]], status_lists=[status_token()])
    assert (verdict.kind, verdict.outcome, verdict.status_checked) == (KIND_PDF, Outcome.INVALID, False)
    assert "altered" in verdict.reason


def test_a_pdf_signed_under_another_root_is_invalid(signed_pdf: bytes) -> None:
    verdict = verify(signed_pdf, trust_roots=[make_ca()[0]])
    assert verdict.outcome is Outcome.INVALID
    assert "trusted" in verdict.reason


def test_a_pdf_without_its_qr_text_is_valid_with_the_status_not_checked_or_takes_the_qr_alongside(
    signed_pdf_without_qr_text: bytes, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    verdict = verify(signed_pdf_without_qr_text, trust_roots=[ca[0]])
    assert (verdict.outcome, verdict.status_checked) == (Outcome.VALID, False)
    assert "carries no QR text" in verdict.reason
    alongside = verify(signed_pdf_without_qr_text, trust_roots=[ca[0]], qr=qr_text(),
                       status_lists=[status_token(Status.SUSPENDED)])  # fmt: skip
    assert (alongside.outcome, alongside.status_checked) == (Outcome.SUSPENDED, True)
    assert alongside.fields["certificate_id"] == "LLTP-2026-000042"
    bad_qr = verify(signed_pdf_without_qr_text, trust_roots=[ca[0]], qr=tampered_char(qr_text(), 30))
    assert bad_qr.outcome is Outcome.INVALID


def test_a_pdf_needs_a_trust_root(signed_pdf: bytes) -> None:
    with pytest.raises(InvalidArgument, match="trust root"):
        verify(signed_pdf)


# --- what is not usable at all ---


@pytest.mark.parametrize("item", ["", "hello", b"\xff\xfe\x00", "QR:ABC", b"GIF89a"])
def test_what_is_neither_a_qr_an_sd_jwt_nor_a_pdf_is_unusable(item: bytes | str) -> None:
    with pytest.raises(InvalidArgument):
        verify(item)


def test_a_qr_alongside_goes_with_a_pdf_only() -> None:
    with pytest.raises(InvalidArgument, match="PDF only"):
        verify(issued(), qr=qr_text())


def test_an_unreadable_pdf_is_invalid(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> None:
    verdict = verify(b"%PDF-1.7 not really", trust_roots=[ca[0]])
    assert (verdict.kind, verdict.outcome) == (KIND_PDF, Outcome.INVALID)


def test_the_issuer_keys_must_be_a_jwk_set() -> None:
    with pytest.raises(InvalidArgument, match="JWK Set"):
        verify(qr_text(), issuer_jwks={"keys": "no"})


def test_the_verdict_as_json_says_everything() -> None:
    data = verify(qr_text(), status_lists=[status_token(Status.SUSPENDED)]).to_json()
    assert data["outcome"] == "suspended"
    assert data["kind"] == "qr"
    assert data["status_checked"] is True
    assert data["issued_at"] == AT.isoformat()
    assert data["fields"]["holder_name"] == "Nguyễn Thị Minh Khai"
    assert data["labels"]["holder_name"] == "Họ và tên"


# --- what issuance.certificates issues, end to end ---


def test_an_issued_certificate_verifies_in_all_three_forms_and_they_agree() -> None:
    from tests.issuance import test_certificates as issuing

    ca = make_ca()
    certificate = issuing.issue(make_signer(ca))
    status_list = StatusList.new(8192, 2)
    status_list.set(4711, Status.SUSPENDED)
    token = sign_status_list(issuing.ISSUER_KEY, status_list, uri=issuing.STATUS_URI, at=issuing.AT)
    common = {"issuer_jwks": issuing.ISSUER_KEY.jwks(), "at": issuing.AT, "status_lists": [token]}
    credential = verify_presented(certificate.credential, **common)  # type: ignore[arg-type]
    qr = verify_presented(certificate.qr_text, **common)  # type: ignore[arg-type]
    pdf = verify_presented(certificate.pdf, trust_roots=[ca[0]], qr=certificate.qr_text, **common)  # type: ignore[arg-type]
    assert [v.outcome for v in (credential, qr, pdf)] == [Outcome.SUSPENDED] * 3
    assert all(v.status_checked for v in (credential, qr, pdf))
    assert credential.fields["certificate_number"] == qr.fields["certificate_id"] == pdf.fields["certificate_id"]
    assert credential.fields["full_name"] == qr.fields["holder_name"]
    assert credential.labels()["issuing_authority"] == "Cơ quan cấp"


def test_the_async_entry_verifies_a_pdf_inside_an_event_loop(
    signed_pdf: bytes, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> None:
    import asyncio

    from issuance.verify import verify_presented_async

    async def inside() -> Verdict:
        return await verify_presented_async(signed_pdf, issuer_jwks=JWKS, trust_roots=[ca[0]], at=AT)

    verdict = asyncio.run(inside())
    assert (verdict.kind, verdict.outcome, verdict.status_checked) == (KIND_PDF, Outcome.VALID, False)
