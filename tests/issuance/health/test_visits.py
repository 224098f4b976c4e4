"""Visit records a facility pushes: parsing with per-field errors, dates, canonical JSON and idempotency."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from core.errors import AlreadyExists, InvalidArgument, PermissionDenied
from issuance.health import visits
from issuance.health.visits import Facility, Visit, parse_visit

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
CLIENT = "bv-cho-ray"
ID_NUMBER = "079203012345"  # Hồ Chí Minh, born 2003, male
BIRTH = date(2003, 5, 17)


def record(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "facility": {"code": "79014", "name": "Bệnh viện Chợ Rẫy"},
        "record_id": "KCB-2026-000123",
        "citizen_id_number": ID_NUMBER,
        "admitted_at": "2026-11-30T08:15:00+07:00",
        "discharged_at": "2026-11-30T09:40:00+07:00",
        "reason": "Sốt, ho, đau họng 3 ngày",
        "diagnoses": [{"code": "J069", "text": "Viêm đường hô hấp trên cấp"}, "R50.9"],
        "procedures": [{"code": "02.1896", "name": "Khám Nội"}],
        "prescriptions": [
            {
                "drug": "Paracetamol 500 mg",
                "dose": "1 viên x 3 lần/ngày khi sốt",
                "quantity": 9,
                "unit": "viên",
                "days": 3,
            }
        ],
        "lab_results": [
            {"test": "Bạch cầu (WBC)", "value": "11.2", "unit": "G/L", "reference_range": "4.0-10.0"},
            {"test": "Test nhanh cúm A/B", "value": "Âm tính"},
        ],
        "vaccinations": [{"vaccine": "Vaxigrip Tetra", "dose_number": 1, "lot": "W3K051M", "date": "2026-11-30"}],
        "follow_up": "2026-12-07",
        "referral": {"to_facility": "79001", "reason": "Chuyển khám chuyên khoa Tai Mũi Họng"},
    }
    value.update(changes)
    return value


def parse(data: dict[str, Any], *, birth_date: date | None = BIRTH, now: datetime = NOW) -> Visit:
    return parse_visit(data, client_id=CLIENT, now=now, birth_date=birth_date)


def refused(data: dict[str, Any], pattern: str, **kwargs: Any) -> None:
    with pytest.raises(InvalidArgument, match=pattern):
        parse(data, **kwargs)


def test_a_full_record_parses() -> None:
    visit = parse(record())
    assert visit.facility == Facility(client_id=CLIENT, code="79014", name="Bệnh viện Chợ Rẫy")
    assert visit.key == ("79014", "KCB-2026-000123")
    assert visit.admitted_at == datetime(2026, 11, 30, 1, 15, tzinfo=UTC)
    assert [d.code for d in visit.diagnoses] == ["J06.9", "R50.9"]
    assert visit.main_diagnosis.code == "J06.9"
    assert [d.code for d in visit.secondary_diagnoses] == ["R50.9"]
    assert visit.main_diagnosis.title == "Nhiễm trùng đường hô hấp trên cấp, không đặc hiệu"
    assert visit.prescriptions[0].quantity == Decimal(9)
    assert visit.lab_results[1].unit == ""
    assert visit.vaccinations[0].date == date(2026, 11, 30)
    assert visit.follow_up == date(2026, 12, 7)
    assert visit.referral is not None
    assert visit.referral.to_facility == "79001"


def test_a_minimal_record_parses() -> None:
    data = record()
    for name in ("procedures", "prescriptions", "lab_results", "vaccinations", "follow_up", "referral"):
        del data[name]
    visit = parse(data, birth_date=None)
    assert visit.procedures == visit.prescriptions == visit.lab_results == visit.vaccinations == ()
    assert visit.follow_up is None
    assert visit.referral is None


def test_the_id_number_stays_out_of_the_repr() -> None:
    assert ID_NUMBER not in repr(parse(record()))


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"diagnoses": []}, r"diagnoses: at least the main diagnosis"),
        ({"diagnoses": ["J06.7"]}, r"diagnoses\[0\].code: 'J06.7' is not a code of WHO ICD-10 2019"),
        ({"diagnoses": ["J06.9", "XXI"]}, r"diagnoses\[1\].code: 'XXI' is an ICD-10 chapter"),
        ({"diagnoses": ["J06.9", "J00-J06"]}, r"diagnoses\[1\].code: .* block"),
        ({"diagnoses": ["J06.9", "J6"]}, r"diagnoses\[1\].code: 'J6' is not an ICD-10 code"),
        ({"diagnoses": ["A91"]}, r"A97"),
        ({"diagnoses": ["J06.9", "J069"]}, r"diagnoses\[1\]: J06.9 is listed twice"),
        ({"diagnoses": ["J06.9"] + [f"R{n}" for n in (50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62)]}, r"12"),
        ({"diagnoses": [{"code": "J06.9", "severity": "mild"}]}, r"diagnoses\[0\]: unknown member 'severity'"),
        ({"citizen_id_number": "07920301234"}, r"citizen_id_number: .*12 digits"),
        ({"citizen_id_number": "999203012345"}, r"citizen_id_number: .*province"),
        ({"citizen_id_number": 79203012345}, r"citizen_id_number: .*string"),
        ({"record_id": ""}, r"record_id"),
        ({"record_id": "has space"}, r"record_id"),
        ({"facility": {"code": "7901"}}, r"facility.code: .*5 digits"),
        ({"reason": "  "}, r"reason: .*empty"),
        ({"reason": "a\x00b"}, r"reason: .*control"),
        ({"admitted_at": "2026-11-30 08:15"}, r"admitted_at: .*RFC 3339"),
        ({"admitted_at": "2026-11-30T08:15:00"}, r"admitted_at: .*offset"),
        ({"admitted_at": "2026-11-30T08:15:00.5+07:00"}, r"admitted_at: .*whole seconds"),
        ({"admitted_at": "2026-02-30T08:15:00+07:00"}, r"admitted_at"),
        ({"prescriptions": [{"drug": "X", "dose": "1", "quantity": 0, "days": 3}]}, r"prescriptions\[0\].quantity"),
        ({"prescriptions": [{"drug": "X", "dose": "1", "quantity": "1.2345", "days": 3}]}, r"quantity"),
        ({"prescriptions": [{"drug": "X", "dose": "1", "quantity": 1.5, "days": 3}]}, r"quantity: .*string"),
        ({"prescriptions": [{"drug": "X", "dose": "1", "quantity": 1, "days": 0}]}, r"prescriptions\[0\].days"),
        ({"prescriptions": [{"drug": "X", "dose": "1", "quantity": 1, "days": True}]}, r"days: .*integer"),
        ({"prescriptions": [{"dose": "1", "quantity": 1, "days": 1}]}, r"prescriptions\[0\].drug: missing"),
        ({"lab_results": [{"test": "Glucose"}]}, r"lab_results\[0\].value: missing"),
        ({"vaccinations": [{"vaccine": "BCG", "dose_number": 0, "lot": "A", "date": "2026-11-30"}]}, r"dose_number"),
        ({"vaccinations": [{"vaccine": "BCG", "dose_number": 1, "lot": "A", "date": "30/11/2026"}]}, r"YYYY-MM-DD"),
        ({"referral": {"to_facility": "ABCDE", "reason": "x"}}, r"referral.to_facility"),
        ({"referral": {"to_facility": "79014", "reason": "x"}}, r"referral.to_facility: .*itself"),
        ({"procedures": [{"code": "02.1896"}]}, r"procedures\[0\].name: missing"),
        ({"procedures": "Khám Nội"}, r"procedures: .*list"),
        ({"colour": "blue"}, r"unknown member 'colour'"),
    ],
)
def test_malformed_fields_are_refused_by_name(changes: dict[str, Any], pattern: str) -> None:
    refused(record(**changes), pattern)


def test_a_missing_field_is_named() -> None:
    data = record()
    del data["discharged_at"]
    refused(data, r"discharged_at: missing")


def test_not_a_mapping_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="object"):
        parse_visit(["x"], client_id=CLIENT, now=NOW)  # type: ignore[arg-type]


def test_a_facility_pushes_only_as_itself() -> None:
    with pytest.raises(PermissionDenied):
        parse_visit(record(facility={"code": "79014", "client_id": "bv-khac"}), client_id=CLIENT, now=NOW)
    assert parse(record(facility={"code": "79014", "client_id": CLIENT})).facility.client_id == CLIENT


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"discharged_at": "2026-11-30T08:14:59+07:00"}, r"discharged_at: .*before admission"),
        ({"admitted_at": "2026-12-02T08:00:00+07:00", "discharged_at": "2026-12-02T09:00:00+07:00"}, r"future"),
        ({"discharged_at": "2026-12-01T17:30:00+07:00"}, r"discharged_at: .*future"),
        ({"admitted_at": "2003-05-16T23:00:00+07:00"}, r"admitted_at: .*before the citizen's birth"),
        ({"admitted_at": "1899-12-31T23:00:00+07:00"}, r"admitted_at"),
        ({"follow_up": "2026-11-29"}, r"follow_up: .*before discharge"),
        ({"follow_up": "2036-11-29"}, r"follow_up"),
        (
            {"vaccinations": [{"vaccine": "BCG", "dose_number": 1, "lot": "A", "date": "2026-12-02"}]},
            r"after discharge",
        ),
        ({"vaccinations": [{"vaccine": "BCG", "dose_number": 1, "lot": "A", "date": "2003-05-16"}]}, r"birth"),
    ],
)
def test_impossible_dates_are_refused(changes: dict[str, Any], pattern: str) -> None:
    refused(record(**changes), pattern)


def test_dates_use_vietnam_time() -> None:
    # Born 17 May 2003; admitted 00:30 on that day in Vietnam (16 May, 17:30 UTC): possible.
    visit = parse(
        record(
            admitted_at="2003-05-17T00:30:00+07:00",
            discharged_at="2003-05-17T01:00:00+07:00",
            follow_up="2003-05-17",
            vaccinations=[],
        )
    )
    assert visit.admitted_at.date() == date(2003, 5, 16)
    # Discharged 23:30 Vietnam time on 30 Nov; a follow-up on 30 Nov is the same day, allowed.
    assert parse(record(discharged_at="2026-11-30T23:30:00+07:00", follow_up="2026-11-30")).follow_up


def test_a_small_clock_skew_is_tolerated() -> None:
    ahead = (NOW + timedelta(minutes=2)).isoformat()
    assert parse(record(discharged_at=ahead)).discharged_at == NOW + timedelta(minutes=2)


def test_text_is_nfc_normalised_and_stripped() -> None:
    decomposed = "Sốt cao".replace("ố", "o\u0302\u0301")
    assert decomposed != "Sốt cao"
    assert parse(record(reason=f"  {decomposed} ")).reason == "Sốt cao"


def test_canonical_json_round_trips() -> None:
    visit = parse(record())
    value = visits.to_json_value(visit)
    assert value["facility"] == {"client_id": CLIENT, "code": "79014", "name": "Bệnh viện Chợ Rẫy"}
    assert value["admitted_at"] == "2026-11-30T01:15:00Z"
    assert value["diagnoses"] == [{"code": "J06.9", "text": "Viêm đường hô hấp trên cấp"}, {"code": "R50.9"}]
    assert value["prescriptions"][0]["quantity"] == "9"
    assert "unit" not in value["lab_results"][1]
    text = visits.canonical(visit)
    assert text == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert parse(json.loads(text)) == visit
    assert visits.canonical(parse(json.loads(text))) == text


def test_a_minimal_record_has_no_empty_members() -> None:
    data = record(diagnoses=["I10"])
    for name in ("procedures", "prescriptions", "lab_results", "vaccinations", "follow_up", "referral"):
        del data[name]
    value = visits.to_json_value(parse(data))
    assert set(value) == {
        "v",
        "facility",
        "record_id",
        "citizen_id_number",
        "admitted_at",
        "discharged_at",
        "reason",
        "diagnoses",
    }


def test_the_same_content_has_the_same_hash_however_it_was_written() -> None:
    first = parse(record())
    again = record(
        admitted_at="2026-11-30T01:15:00Z",
        diagnoses=[{"code": "j06.9", "text": "Viêm đường hô hấp trên cấp"}, {"code": "R509"}],
    )
    again["prescriptions"][0]["quantity"] = "9.000"
    second = parse(again)
    assert visits.content_hash(first) == visits.content_hash(second)
    assert len(visits.content_hash(first)) == 32
    assert visits.is_replay(first, second)


def test_a_first_push_is_not_a_replay() -> None:
    assert not visits.is_replay(None, parse(record()))


@pytest.mark.parametrize(
    "changes",
    [
        {"reason": "Sốt cao"},
        {"diagnoses": ["R50.9", "J06.9"]},  # the main diagnosis changed
        {"follow_up": "2026-12-08"},
        {"facility": {"code": "79014", "name": "BV Chợ Rẫy"}},
    ],
)
def test_different_content_under_the_same_key_is_a_conflict(changes: dict[str, Any]) -> None:
    first, second = parse(record()), parse(record(**changes))
    assert visits.content_hash(first) != visits.content_hash(second)
    with pytest.raises(visits.VisitConflict, match="KCB-2026-000123") as caught:
        visits.is_replay(first, second)
    assert isinstance(caught.value, AlreadyExists)


def test_another_client_of_the_same_facility_code_conflicts() -> None:
    first = parse(record())
    second = parse_visit(record(), client_id="bv-cho-ray-2", now=NOW)
    assert first.key == second.key
    with pytest.raises(visits.VisitConflict):
        visits.is_replay(first, second)


def test_different_keys_are_not_compared() -> None:
    with pytest.raises(InvalidArgument):
        visits.is_replay(parse(record()), parse(record(record_id="KCB-2026-000124")))


def test_parsing_does_not_change_its_input() -> None:
    data = record()
    kept = copy.deepcopy(data)
    parse(data)
    assert data == kept


JUNK: list[Any] = [None, True, 1.5, -1, 2**70, "", "x" * 3000, [], {}, ["x"], [{}], {"x": 1}, [None], "\ud800"]


@pytest.mark.parametrize("name", visits.MEMBERS[1:])
@pytest.mark.parametrize("junk", JUNK, ids=range(len(JUNK)))
def test_junk_in_any_member_is_a_domain_error_never_a_crash(name: str, junk: Any) -> None:
    if junk == [] and name in ("procedures", "prescriptions", "lab_results", "vaccinations"):
        return  # an empty optional list is simply none
    with pytest.raises((InvalidArgument, PermissionDenied)):
        parse(record(**{name: junk}))


@pytest.mark.parametrize(
    ("name", "inner"),
    [
        ("diagnoses", "code"),
        ("procedures", "name"),
        ("prescriptions", "quantity"),
        ("prescriptions", "days"),
        ("lab_results", "value"),
        ("vaccinations", "date"),
        ("vaccinations", "dose_number"),
    ],
)
@pytest.mark.parametrize("junk", JUNK, ids=range(len(JUNK)))
def test_junk_inside_an_item_is_a_domain_error(name: str, inner: str, junk: Any) -> None:
    data = record()
    item = data[name][0]
    data[name][0] = ({"code": item} if isinstance(item, str) else dict(item)) | {inner: junk}
    with pytest.raises(InvalidArgument):
        parse(data)
