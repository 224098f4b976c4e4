"""issuance.certificates: one decided dossier → the SD-JWT VC, the signed QR, the PAdES-signed PDF, the vault delivery,
all saying the same thing (Form No. 1 without expunged convictions, No. 2 with all of them)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from core.errors import InvalidArgument
from issuance.application import Answers, Application, Family, fill_application
from issuance.certificates import (
    TITLES,
    IssuedCertificate,
    IssuingAuthority,
    issue_criminal_record_certificate,
    issue_criminal_record_certificate_async,
)
from issuance.credentials import VCT_CRIMINAL_RECORD, verify_credential
from issuance.issuer_keys import SigningKey
from issuance.judicial import Conviction, JudicialRecord, OfficeBan, Sentence, SentenceKind, offence
from issuance.pades import DocumentSigner, validate
from issuance.presentations import present, verify_presentation
from issuance.qr import DOC_CRIMINAL_RECORD_1, DOC_CRIMINAL_RECORD_2, QrVerifier
from issuance.status_list import StatusReference
from registry.citizen import Address, Citizen, Sex
from tests.issuance.sd_jwt_helpers import decoded_text
from tests.issuance.test_pades import make_ca, make_signer
from tests.issuance.test_pdf import text_of
from vault.documents import DocumentType, Issued
from vault.signatures import check, content_digest, public_key_set

AT = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội
TODAY = date(2026, 12, 1)
ISSUER = "https://dinhdanh.example/issuers/lltp"
STATUS_URI = "https://dinhdanh.example/statuslists/lltp/1"
VERIFY_URL = "https://dinhdanh.example/verify"
ISSUER_KEY = SigningKey.generate()
HOLDER_KEY = SigningKey.generate()

PERSON = Citizen(
    "001099012345",
    "Nguyễn Văn An",
    date(1990, 5, 4),
    Sex.MALE,
    "Việt Nam",
    "Kinh",
    "Không",
    "Xã Đông Anh, Thành phố Hà Nội",
    Address("Số 12 phố Huế", "Phường Hai Bà Trưng", "Thành phố Hà Nội"),
    Address("Số 3 đường Láng", "Phường Láng", "Thành phố Hà Nội"),
    date(2021, 3, 2),
    "Cục Cảnh sát quản lý hành chính về trật tự xã hội",
    "0912345678",
)
FAMILY = Family(father_name="Nguyễn Văn Phúc", mother_name="Trần Thị Lụa")


def _conviction(
    article: int, number: str, judged: date, completion: date, sentence: Sentence, **kw: object
) -> Conviction:
    return Conviction(
        offence(article),
        judged - timedelta(days=120),
        "Tòa án nhân dân quận Đống Đa, Thành phố Hà Nội",
        number,
        judged,
        sentence,
        completion,
        **kw,  # type: ignore[arg-type]
    )


# fine paid 2019-03-16: expunged a year later (Penal Code Art. 70(2)(a))
GAMBLING = _conviction(
    321, "45/2019/HS-ST", date(2019, 1, 15), date(2019, 3, 16), Sentence(SentenceKind.FINE, fine_vnd=20_000_000)
)
# 12 months' prison served 2025-06-10: on record until 2027-06-10 (Art. 70(2)(b))
THEFT = _conviction(173, "112/2024/HS-ST", date(2024, 6, 10), date(2025, 6, 10), Sentence(SentenceKind.PRISON, 12))
# suspended, with a 3-year ban on holding office from the judgment (in force until 2027-02-01)
EMBEZZLEMENT = _conviction(
    353,
    "7/2024/HS-ST",
    date(2024, 2, 1),
    date(2026, 2, 1),
    Sentence(SentenceKind.SUSPENDED, 24, 24),
    ban=OfficeBan("Đảm nhiệm chức vụ lãnh đạo, quản lý", 3),
)
RECORD = JudicialRecord(PERSON.id_number, (GAMBLING, THEFT))
CLEAN = JudicialRecord(PERSON.id_number)


def application(form: int = 1, ban: bool | None = False, family: Family | None = FAMILY) -> Application:
    purpose = "EMPLOYMENT" if form == 1 else "PERSONAL"
    answers = Answers(form, purpose, 1, "ELECTRONIC", "an@example.vn", ban_certification=ban if form == 1 else None)
    return fill_application(PERSON, answers, family)


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    return make_ca()


@pytest.fixture(scope="module")
def signer(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> DocumentSigner:
    return make_signer(ca)


def issue(
    signer: DocumentSigner,
    record: JudicialRecord = RECORD,
    app: Application | None = None,
    certificate_id: str = "LLTP-2026-000123",
    **changes: object,
) -> IssuedCertificate:
    arguments: dict[str, object] = {
        "citizen": PERSON,
        "record": record,
        "application": app or application(),
        "certificate_id": certificate_id,
        "status_index": 4711,
        "status_uri": STATUS_URI,
        "issuer": ISSUER,
        "issuer_key": ISSUER_KEY,
        "document_signer": signer,
        "holder_jwk": HOLDER_KEY.public_jwk,
        "at": AT,
        "verify_url": VERIFY_URL,
    }
    arguments.update(changes)
    return issue_criminal_record_certificate(**arguments)  # type: ignore[arg-type]


def claims_of(issued: IssuedCertificate) -> dict[str, object]:
    verified = verify_credential(issued.credential, ISSUER_KEY.jwks(), at=AT, issuer=ISSUER)
    assert verified.vct == VCT_CRIMINAL_RECORD
    assert verified.holder_jwk == {k: HOLDER_KEY.public_jwk[k] for k in ("kty", "crv", "x", "y")}
    assert verified.status == StatusReference(4711, STATUS_URI)
    return verified.claims


def qr_of(issued: IssuedCertificate):  # type: ignore[no-untyped-def]
    verified = QrVerifier(ISSUER_KEY.jwks()).verify(issued.qr_text, at=AT)
    assert verified.issuer == ISSUER
    return verified.fields


def pdf_text(issued: IssuedCertificate, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> str:
    verdict = validate(issued.pdf, [ca[0]])
    assert verdict.valid, verdict.reason
    return text_of(issued.pdf)


def test_form_1_shows_only_the_unexpunged_conviction_in_all_three(signer: DocumentSigner, ca) -> None:  # type: ignore[no-untyped-def]
    issued = issue(signer)
    claims = claims_of(issued)
    assert claims["form"] == 1
    assert claims["criminal_record"] == "Có án tích"
    convictions = claims["convictions"]
    assert isinstance(convictions, list)
    assert len(convictions) == 1
    assert "112/2024/HS-ST" in convictions[0]["judgment"]
    assert "Tội trộm cắp tài sản" in convictions[0]["offence"]
    assert "45/2019" not in str(claims)
    assert "ban" not in claims  # not asked for

    fields = qr_of(issued)
    assert fields.document_type == DOC_CRIMINAL_RECORD_1
    assert fields.convictions == 1
    assert fields.result_text == "Có 1 án tích"
    assert fields.certificate_id == "LLTP-2026-000123" == claims["certificate_number"]
    assert fields.status_index == 4711
    assert fields.status_uri == STATUS_URI
    assert fields.holder_name == "Nguyễn Văn An" == claims["full_name"]
    assert fields.id_last_digits == "2345"
    assert fields.issued_on == TODAY

    text = pdf_text(issued, ca)
    assert "PHIẾU LÝ LỊCH TƯ PHÁP SỐ 1" in text
    assert "Có án tích" in text
    assert "112/2024/HS-ST" in text
    assert "45/2019/HS-ST" not in text
    assert "đánh bạc" not in text
    assert convictions[0]["sentence"] in text
    assert convictions[0]["court"] in text
    assert "Họ và tên cha" not in text
    assert "Nguyễn Văn Phúc" not in text
    assert "father_name" not in claims
    assert "THÔNG TIN VỀ VIỆC CẤM" not in text


def test_form_2_shows_both_the_expunged_one_marked(signer: DocumentSigner, ca) -> None:  # type: ignore[no-untyped-def]
    issued = issue(signer, app=application(2))
    claims = claims_of(issued)
    assert claims["form"] == 2
    convictions = claims["convictions"]
    assert isinstance(convictions, list)
    assert [c["judgment"].split()[3] for c in convictions] == [
        "45/2019/HS-ST",
        "112/2024/HS-ST",
    ]
    assert convictions[0]["expunged_on"] == "2020-03-16"
    assert "expunged_on" not in convictions[1]
    assert claims["criminal_record"] == "Có án tích"  # the theft is still on record
    assert claims["father_name"] == "Nguyễn Văn Phúc"
    assert claims["mother_name"] == "Trần Thị Lụa"
    assert "ban" in claims  # No. 2 always certifies the ban (Art. 43)

    fields = qr_of(issued)
    assert fields.document_type == DOC_CRIMINAL_RECORD_2
    assert fields.convictions == 1  # on record: the expunged one is as if never convicted (Art. 69)

    text = pdf_text(issued, ca)
    assert "PHIẾU LÝ LỊCH TƯ PHÁP SỐ 2" in text
    assert "45/2019/HS-ST" in text
    assert "112/2024/HS-ST" in text
    assert "Đã được xóa án tích" in text
    assert "16/03/2020" in text
    assert "Nguyễn Văn Phúc" in text
    assert "Trần Thị Lụa" in text
    assert claims["ban"] in text


@pytest.mark.parametrize("form", [1, 2])
def test_a_clean_citizen_reads_khong_co_an_tich_everywhere(signer: DocumentSigner, ca, form: int) -> None:  # type: ignore[no-untyped-def]
    issued = issue(signer, record=CLEAN, app=application(form))
    claims = claims_of(issued)
    assert claims["criminal_record"] == "Không có án tích"
    assert claims["convictions"] == []
    fields = qr_of(issued)
    assert fields.convictions == 0
    assert fields.result_text == "Không có án tích"
    text = pdf_text(issued, ca)
    assert "Không có án tích" in text
    assert "Có án tích" not in text


def test_an_all_expunged_record_reads_khong_co_an_tich_on_form_1(signer: DocumentSigner, ca) -> None:  # type: ignore[no-untyped-def]
    issued = issue(signer, record=JudicialRecord(PERSON.id_number, (GAMBLING,)))
    assert claims_of(issued)["criminal_record"] == "Không có án tích"
    assert qr_of(issued).convictions == 0
    assert "45/2019" not in pdf_text(issued, ca)


def test_the_ban_line_only_when_requested(signer: DocumentSigner, ca) -> None:  # type: ignore[no-untyped-def]
    record = JudicialRecord(PERSON.id_number, (EMBEZZLEMENT,))
    without = issue(signer, record=record, app=application(1, ban=False))
    assert "ban" not in claims_of(without)
    assert "THÔNG TIN VỀ VIỆC CẤM" not in pdf_text(without, ca)

    asked = issue(signer, record=record, app=application(1, ban=True))
    claims = claims_of(asked)
    assert str(claims["ban"]).startswith("Bị cấm đảm nhiệm chức vụ")
    assert "01/02/2027" in str(claims["ban"])
    text = pdf_text(asked, ca)
    assert "THÔNG TIN VỀ VIỆC CẤM" in text
    assert "01/02/2027" in text

    clean = issue(signer, record=CLEAN, app=application(1, ban=True))
    assert str(claims_of(clean)["ban"]).startswith("Không bị cấm")
    assert "Không bị cấm đảm nhiệm chức vụ" in pdf_text(clean, ca)


def test_the_sha256_is_of_the_pdf_bytes_and_the_vault_delivery_is_complete(signer: DocumentSigner) -> None:
    issued = issue(signer)
    assert issued.pdf.startswith(b"%PDF-")
    assert issued.sha256 == hashlib.sha256(issued.pdf).digest()
    assert issued.qr_png.startswith(b"\x89PNG")
    delivery = issued.delivery
    assert delivery.document_type is DocumentType.CRIMINAL_RECORD_CERTIFICATE
    assert delivery.title == TITLES[1] == "Phiếu lý lịch tư pháp số 1"
    assert delivery.filename == "phieu-ly-lich-tu-phap-so-1-LLTP-2026-000123.pdf"
    assert delivery.issuer_document_id == "LLTP-2026-000123"
    assert delivery.issued_on == TODAY
    assert delivery.expires_on is None
    assert delivery.sha256 == issued.sha256
    # the issuer signature the vault verifies
    signature = delivery.issuer_signature(ISSUER_KEY, "lltp-issuer")
    keys = public_key_set(ISSUER_KEY.jwks())
    claims = check(
        keys,
        Issued("lltp-issuer", "LLTP-2026-000123", signature),
        delivery.document_type,
        (delivery.issued_on, delivery.expires_on),
    )
    assert claims["content_sha256"] == content_digest(issued.sha256)


def test_a_presentation_of_the_result_and_the_name_hides_birthplace_and_parents(signer: DocumentSigner) -> None:
    issued = issue(signer, record=CLEAN, app=application(2))
    full = claims_of(issued)
    assert full["place_of_birth"] == "Hà Nội"
    assert full["father_name"] == "Nguyễn Văn Phúc"
    presentation = present(
        issued.credential,
        HOLDER_KEY,
        disclose=["criminal_record", "full_name"],
        audience="https://employer.example",
        nonce="n-0S6_WzA2Mj",
        at=AT,
    )
    verified = verify_presentation(
        presentation, ISSUER_KEY.jwks(), audience="https://employer.example", nonce="n-0S6_WzA2Mj", at=AT
    )
    assert verified.credential.claims == {"criminal_record": "Không có án tích", "full_name": "Nguyễn Văn An"}
    seen = decoded_text(presentation)
    for hidden in ("Hà Nội", "Nguyễn Văn Phúc", "Trần Thị Lụa", "001099012345", "1990-05-04"):
        assert hidden not in seen


def test_the_holder_fields_come_from_the_application_and_registry(signer: DocumentSigner) -> None:
    claims = claims_of(issue(signer))
    assert claims["birthdate"] == "1990-05-04"
    assert claims["sex"] == "Nam"
    assert claims["id_number"] == "001099012345"
    assert claims["nationality"] == "Việt Nam"
    assert claims["ethnicity"] == "Kinh"
    assert claims["residence"] == "Số 12 phố Huế, Phường Hai Bà Trưng, Thành phố Hà Nội"
    assert claims["issued_on"] == "2026-12-01"


def test_the_issue_date_is_hanoi_s(signer: DocumentSigner) -> None:
    late = datetime(2026, 11, 30, 18, 30, tzinfo=UTC)  # 01:30 on 1 December in Hà Nội
    issued = issue(signer, at=late)
    assert issued.delivery.issued_on == TODAY
    assert QrVerifier(ISSUER_KEY.jwks()).verify(issued.qr_text, at=late).fields.issued_on == TODAY


def test_async_gives_the_same_content(signer: DocumentSigner) -> None:
    import asyncio

    arguments = {
        "citizen": PERSON,
        "record": RECORD,
        "application": application(),
        "certificate_id": "LLTP-2026-000124",
        "status_index": 4711,
        "status_uri": STATUS_URI,
        "issuer": ISSUER,
        "issuer_key": ISSUER_KEY,
        "document_signer": signer,
        "holder_jwk": HOLDER_KEY.public_jwk,
        "at": AT,
        "verify_url": VERIFY_URL,
    }
    issued = asyncio.run(issue_criminal_record_certificate_async(**arguments))  # type: ignore[arg-type]
    assert claims_of(replace(issued))["certificate_number"] == "LLTP-2026-000124"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"record": JudicialRecord("079099000001")}, "record is not this citizen's"),
        ({"certificate_id": "LLTP/2026 1"}, "certificate_id"),
        ({"certificate_id": ""}, "certificate_id"),
        ({"holder_jwk": {"kty": "EC", "crv": "P-256"}}, "P-256"),
        ({"holder_jwk": HOLDER_KEY.private.as_dict(private=True)}, "no private member"),
        ({"status_index": -1}, "status"),
        ({"at": datetime(2026, 12, 1, 10, 0)}, "timezone-aware"),
        ({"verify_url": "ftp://x"}, "verify_url"),
        ({"application": "form 1"}, "application"),
    ],
)
def test_bad_input_is_a_clear_domain_error(signer: DocumentSigner, changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        issue(signer, **changes)  # type: ignore[arg-type]


def test_an_application_of_someone_else_is_refused(signer: DocumentSigner) -> None:
    other = replace(PERSON, id_number="079099000001", full_name="Lê Thị Bình")
    app = fill_application(other, Answers(1, "EMPLOYMENT", 1, "ELECTRONIC", "b@example.vn", ban_certification=False))
    with pytest.raises(InvalidArgument, match="application is not this citizen's"):
        issue(signer, app=app)


def test_a_custom_authority_is_printed(signer: DocumentSigner, ca) -> None:  # type: ignore[no-untyped-def]
    authority = IssuingAuthority("SỞ TƯ PHÁP THÀNH PHỐ HÀ NỘI", "Hà Nội", "GIÁM ĐỐC", "Phạm Minh Tuấn")
    issued = issue(signer, authority=authority)
    text = pdf_text(issued, ca)
    assert "SỞ TƯ PHÁP THÀNH PHỐ HÀ NỘI" in text
    assert "Phạm Minh Tuấn" in text
    assert claims_of(issued)["issuing_authority"] == "SỞ TƯ PHÁP THÀNH PHỐ HÀ NỘI"


def test_timing_of_one_issuance_is_printed_not_asserted(signer: DocumentSigner, capsys) -> None:  # type: ignore[no-untyped-def]
    issue(signer)  # warm
    start = time.perf_counter()
    for _ in range(5):
        issue(signer)
    elapsed = (time.perf_counter() - start) / 5
    with capsys.disabled():
        print(f"\none issuance (SD-JWT + QR + PDF + PAdES): {elapsed * 1000:.0f} ms")
