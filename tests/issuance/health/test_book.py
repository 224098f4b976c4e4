"""The citizen's health book: assembled from the registry and visits, ordered, guarded, extracted."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from consent.artefact import canonical_json
from core.errors import InvalidArgument, PermissionDenied
from issuance.health import book, icd10
from issuance.health.visits import Facility, Visit, parse_visit
from registry.citizen import Address, Citizen, Sex

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
ID_NUMBER = "079203012345"
CHO_RAY = Facility(client_id="bv-cho-ray", code="79014", name="Bệnh viện Chợ Rẫy")
TRAM = Facility(client_id="tyt-ben-nghe", code="79765", name="Trạm y tế phường Bến Nghé")
CITIZEN = Citizen(
    id_number=ID_NUMBER,
    full_name="Nguyễn Văn An",
    date_of_birth=date(2003, 5, 17),
    sex=Sex.MALE,
    nationality="Việt Nam",
    ethnicity="Kinh",
    religion="Không",
    hometown="Bến Tre",
    permanent_address=Address(street="12 Lê Lợi", commune="Phường Sài Gòn", province="Thành phố Hồ Chí Minh"),
    current_address=Address(street="12 Lê Lợi", commune="Phường Sài Gòn", province="Thành phố Hồ Chí Minh"),
    id_card_issue_date=date(2021, 6, 1),
    id_card_issue_place="Cục Cảnh sát QLHC về TTXH",
    phone="0912345678",
)


def visit(facility: Facility, record_id: str, day: str, diagnoses: list[str], **extra: Any) -> Visit:
    data: dict[str, Any] = {
        "facility": {"code": facility.code, "name": facility.name},
        "record_id": record_id,
        "citizen_id_number": ID_NUMBER,
        "admitted_at": f"{day}T08:00:00+07:00",
        "discharged_at": f"{day}T09:00:00+07:00",
        "reason": "Khám bệnh",
        "diagnoses": diagnoses,
        **extra,
    }
    return parse_visit(data, client_id=facility.client_id, now=NOW, birth_date=CITIZEN.date_of_birth)


def dose(vaccine: str, number: int, day: str) -> dict[str, Any]:
    return {"vaccine": vaccine, "dose_number": number, "lot": "LOT1", "date": day}


FLU = visit(CHO_RAY, "KCB-1", "2026-03-02", ["J10.1", "R50.9"], vaccinations=[dose("Vaxigrip Tetra", 1, "2026-03-02")])
CHECKUP = visit(
    TRAM, "TYT-9", "2026-10-20", ["Z00.0"], vaccinations=[dose("Td", 2, "2026-10-20"), dose("Td", 1, "2025-10-01")]
)
HYPERTENSION = visit(CHO_RAY, "KCB-7", "2025-07-15", ["I10", "E11.9"])


def the_book() -> book.HealthBook:
    return book.assemble(CITIZEN, [FLU, HYPERTENSION, CHECKUP])


def test_the_administrative_part_comes_from_the_registry() -> None:
    admin = the_book().administrative
    assert admin.full_name == "Nguyễn Văn An"
    assert admin.date_of_birth == date(2003, 5, 17)
    assert admin.sex is Sex.MALE
    assert admin.current_address.formatted == "12 Lê Lợi, Phường Sài Gòn, Thành phố Hồ Chí Minh"
    assert admin.id_number == ID_NUMBER
    assert ID_NUMBER not in repr(admin)


def test_visits_are_newest_first() -> None:
    assert [v.record_id for v in the_book().visits] == ["TYT-9", "KCB-1", "KCB-7"]


def test_the_order_does_not_depend_on_the_input_order() -> None:
    assert book.assemble(CITIZEN, [CHECKUP, HYPERTENSION, FLU]) == the_book()
    assert book.assemble(CITIZEN, []).visits == ()


def test_medical_history_is_newest_first_with_the_main_diagnosis_first() -> None:
    history = the_book().medical_history
    assert [(h.day, h.code, h.main) for h in history] == [
        (date(2026, 10, 20), "Z00.0", True),
        (date(2026, 3, 2), "J10.1", True),
        (date(2026, 3, 2), "R50.9", False),
        (date(2025, 7, 15), "I10", True),
        (date(2025, 7, 15), "E11.9", False),
    ]
    assert history[3].title == "Tăng huyết áp vô căn (nguyên phát)"
    assert history[3].facility_code == "79014"
    assert history[3].facility_name == "Bệnh viện Chợ Rẫy"
    assert history[3].visit_ref == "79014/KCB-7"


def test_vaccination_history_is_newest_first() -> None:
    vaccinations = the_book().vaccinations
    assert [(v.date, v.vaccine, v.dose_number) for v in vaccinations] == [
        (date(2026, 10, 20), "Td", 2),
        (date(2026, 3, 2), "Vaxigrip Tetra", 1),
        (date(2025, 10, 1), "Td", 1),
    ]
    assert vaccinations[0].ref == "79765/TYT-9#0"
    assert vaccinations[2].ref == "79765/TYT-9#1"
    assert vaccinations[1].facility_code == "79014"


def test_a_visit_of_another_citizen_is_refused() -> None:
    other = parse_visit(
        {
            "facility": {"code": "79014"},
            "record_id": "KCB-X",
            "citizen_id_number": "001088000123",
            "admitted_at": "2026-01-01T08:00:00+07:00",
            "discharged_at": "2026-01-01T09:00:00+07:00",
            "reason": "Khám",
            "diagnoses": ["J00"],
        },
        client_id="bv-cho-ray",
        now=NOW,
    )
    with pytest.raises(InvalidArgument, match="another citizen") as caught:
        book.assemble(CITIZEN, [FLU, other])
    assert "001088000123" not in caught.value.message


def test_a_visit_twice_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="twice"):
        book.assemble(CITIZEN, [FLU, FLU])


def test_a_facility_reads_the_visits_it_wrote() -> None:
    book.authorize_facility_read(CHO_RAY, FLU)
    book.authorize_facility_read(TRAM, CHECKUP)
    assert book.readable_visits(CHO_RAY, [FLU, CHECKUP, HYPERTENSION]) == (FLU, HYPERTENSION)


def test_a_facility_never_reads_another_facilitys_visit() -> None:
    with pytest.raises(PermissionDenied):
        book.authorize_facility_read(TRAM, FLU)
    # Another client registered under the same Ministry code did not write it either.
    with pytest.raises(PermissionDenied):
        book.authorize_facility_read(Facility(client_id="bv-cho-ray-2", code="79014"), FLU)


def test_a_facility_never_reads_the_book() -> None:
    for facility in (CHO_RAY, TRAM):
        with pytest.raises(PermissionDenied, match="health book"):
            book.authorize_facility_read(facility, the_book())


def test_only_facilities_are_checked() -> None:
    with pytest.raises(PermissionDenied):
        book.authorize_facility_read("bv-cho-ray", FLU)  # type: ignore[arg-type]


def test_the_extract_carries_only_what_the_citizen_chose() -> None:
    claims = book.extract_claims(the_book(), visits=["79014/KCB-1"], vaccinations=["79765/TYT-9#1"])
    assert claims["subject"] == {
        "id_number": ID_NUMBER,
        "full_name": "Nguyễn Văn An",
        "birth_date": "2003-05-17",
        "sex": "male",
    }
    assert [v["ref"] for v in claims["visits"]] == ["79014/KCB-1"]
    chosen = claims["visits"][0]
    assert chosen["facility"] == {"code": "79014", "name": "Bệnh viện Chợ Rẫy"}
    assert chosen["main_diagnosis"]["code"] == "J10.1"
    assert chosen["main_diagnosis"]["title"] == icd10.diagnosis("J10.1").title
    assert [d["code"] for d in chosen["secondary_diagnoses"]] == ["R50.9"]
    assert "citizen_id_number" not in chosen
    assert "client_id" not in chosen["facility"]
    assert claims["vaccinations"] == [
        {
            "ref": "79765/TYT-9#1",
            "vaccine": "Td",
            "dose_number": 1,
            "lot": "LOT1",
            "date": "2025-10-01",
            "facility": {"code": "79765", "name": "Trạm y tế phường Bến Nghé"},
        }
    ]
    text = str(claims)
    assert "KCB-7" not in text
    assert "TYT-9#0" not in text
    assert canonical_json(claims)  # within the canonical value space, ready to sign


def test_the_extract_follows_the_book_order() -> None:
    claims = book.extract_claims(the_book(), visits=["79014/KCB-7", "79765/TYT-9", "79014/KCB-1"])
    assert [v["ref"] for v in claims["visits"]] == ["79765/TYT-9", "79014/KCB-1", "79014/KCB-7"]
    assert "vaccinations" not in claims


@pytest.mark.parametrize(
    ("chosen", "pattern"),
    [
        ({}, r"at least one"),
        ({"visits": ["79014/KCB-404"]}, r"no visit"),
        ({"vaccinations": ["79765/TYT-9#7"]}, r"no vaccination"),
        ({"visits": ["79014/KCB-1", "79014/KCB-1"]}, r"twice"),
        ({"visits": "79014/KCB-1"}, r"list"),
    ],
)
def test_a_bad_choice_is_refused(chosen: dict[str, Any], pattern: str) -> None:
    with pytest.raises(InvalidArgument, match=pattern):
        book.extract_claims(the_book(), **chosen)


def test_same_day_doses_follow_the_newer_visit_then_the_written_order() -> None:
    morning = visit(TRAM, "TYT-A", "2026-11-02", ["Z27.1"], vaccinations=[dose("DPT", 1, "2026-11-02")])
    later = parse_visit(
        {
            "facility": {"code": CHO_RAY.code},
            "record_id": "KCB-B",
            "citizen_id_number": ID_NUMBER,
            "admitted_at": "2026-11-02T15:00:00+07:00",
            "discharged_at": "2026-11-02T16:00:00+07:00",
            "reason": "Tiêm chủng",
            "diagnoses": ["Z24.0"],
            "vaccinations": [dose("OPV", 1, "2026-11-02"), dose("BCG", 1, "2026-11-02")],
        },
        client_id=CHO_RAY.client_id,
        now=NOW,
    )
    doses = book.assemble(CITIZEN, [morning, later]).vaccinations
    assert [d.ref for d in doses] == ["79014/KCB-B#0", "79014/KCB-B#1", "79765/TYT-A#0"]
