"""Pure parts of the health service: the proto record ⇄ the domain's visit, refusals named by the proto's fields,
the visit PDF and its signed QR token."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json

import pytest
from joserfc import jws
from joserfc.jwk import KeySet
from pypdf import PdfReader

from core.errors import InvalidArgument
from issuance.health import visit_pdf
from issuance.health.book import assemble
from issuance.health.visits import content_hash, parse_visit
from issuance.issuer_keys import SigningKey
from registry.generator import generate
from services.health_server import proto_field, record_of, record_pb

CITIZEN = next(generate(1))
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
KEY = SigningKey.from_seed(bytes(range(32)))


def visit_of(**changes: object):  # type: ignore[no-untyped-def]
    from tests.health_service.conftest import record

    members = record_of(record(CITIZEN, "KCB-T-1", **changes))
    members["facility"]["name"] = "Bệnh viện Chợ Rẫy"
    return parse_visit(members, client_id="agency-test", now=NOW)


def test_the_proto_record_round_trips() -> None:
    visit = visit_of()
    again = record_pb(visit)
    from tests.health_service.conftest import record

    assert [d.title for d in again.diagnoses] == [
        "Nhiễm trùng đường hô hấp trên cấp, không đặc hiệu",
        "Tăng huyết áp vô căn (nguyên phát)",
    ]  # filled by the service
    for diagnosis in again.diagnoses:
        diagnosis.ClearField("title")
    assert again == record(CITIZEN, "KCB-T-1")
    assert visit.admitted_at.astimezone(dt.timezone(dt.timedelta(hours=7))).hour == 0
    assert visit.prescriptions[0].frequency == "3 lần/ngày"
    assert visit.doctor == "BS. Nguyễn Văn An"


@pytest.mark.parametrize(
    ("domain", "proto"),
    [
        ("admitted_at: the time is in the future", "visit.admitted_on: the time is in the future"),
        ("diagnoses[1].code: X99.9 is not a code", "visit.diagnoses[1].icd10: X99.9 is not a code"),
        ("vaccinations[0].dose_number: must be 1..20", "visit.vaccinations[0].dose: must be 1..20"),
        ("facility.code: is 5 digits", "visit.ministry_code: is 5 digits"),
        ("referral.to_facility: x", "visit.referral.facility_code: x"),
        ("record_id must be 1..100", "record_id must be 1..100"),
        ("the health book has no visit", "the health book has no visit"),
    ],
)  # fmt: skip
def test_refusals_name_the_proto_field(domain: str, proto: str) -> None:
    assert proto_field(domain) == proto


def test_a_day_that_is_not_one_is_refused() -> None:
    from tests.health_service.conftest import record

    with pytest.raises(InvalidArgument, match=r"^visit\.admitted_on: is not a real date"):
        record_of(record(CITIZEN, "KCB-T-2", admitted_on="2026-02-30"))
    with pytest.raises(InvalidArgument, match=r"^visit\.discharged_on: must be a date as YYYY-MM-DD"):
        record_of(record(CITIZEN, "KCB-T-2", discharged_on="30/11/2026"))


def test_the_visit_pdf_and_its_signed_qr_token() -> None:
    visit = visit_of()
    book = assemble(CITIZEN, [visit])
    rendered = visit_pdf.render(book.administrative, "0b7c6f0e-1111-4222-8333-444455556666", visit, KEY,
                                "http://localhost:8080/verify")  # fmt: skip
    assert rendered.filename.startswith("kham-benh-")
    assert rendered.filename.endswith("-79014-KCB-T-1.pdf")
    text = " ".join(" ".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(rendered.content)).pages).split())
    for expected in ("TÓM TẮT HỒ SƠ KHÁM BỆNH", "J06.9", "Nhiễm trùng đường hô hấp trên cấp", "CRP", "VX123",
                     CITIZEN.full_name, "Hẹn tái khám"):  # fmt: skip
        assert expected in text, expected
    token = visit_pdf.qr_token(KEY, "0b7c6f0e-1111-4222-8333-444455556666", visit)
    verified = jws.deserialize_compact(token, KeySet.import_key_set(KEY.jwks()), algorithms=["ES256"])
    assert verified.protected["typ"] == "health-visit+jwt"
    claims = json.loads(verified.payload)
    assert claims["record_id"] == "KCB-T-1"
    assert claims["facility"] == "79014"
    assert claims["content_sha256"] == base64.urlsafe_b64encode(content_hash(visit)).decode().rstrip("=")


def test_a_text_the_pdf_cannot_print_is_refused_and_line_breaks_are_printed_as_spaces() -> None:
    with pytest.raises(InvalidArgument, match=r"^reason: character U\+4E2D cannot be rendered"):
        visit_pdf.check_printable(visit_of(reason="Sốt 中"))
    broken = visit_of(reason="Sốt cao\nho khan")
    visit_pdf.check_printable(broken)
    book = assemble(CITIZEN, [broken])
    rendered = visit_pdf.render(book.administrative, "0b7c6f0e-1111-4222-8333-444455556666", broken, KEY,
                                "http://localhost:8080/verify")  # fmt: skip
    text = " ".join(" ".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(rendered.content)).pages).split())
    assert "Sốt cao ho khan" in text
