"""issuance.application: 6 answers asked, 17 fields filled from the registry with their source, clear errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from core.errors import InvalidArgument
from issuance.application import (
    ASKED,
    CITIZEN,
    FIELDS,
    PURPOSES,
    REGISTRY,
    Answers,
    Delivery,
    Family,
    fill_application,
)
from issuance.forms import FormNo
from registry.citizen import Address, Citizen, Sex

PERSON = Citizen(
    "001099012345",
    "Nguyễn Văn An",
    date(1999, 5, 4),
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
GOOD = Answers(
    form=1, purpose="EMPLOYMENT", copies=2, delivery="ELECTRONIC", email="an@example.vn", ban_certification=False
)


def test_23_fields_6_asked_17_from_the_registry() -> None:
    assert len(FIELDS) == 23
    assert len(ASKED) == 6
    assert set(ASKED) <= set(FIELDS)
    app = fill_application(PERSON, GOOD)
    assert [f.name for f in app.fields] == list(FIELDS)
    asked = [f for f in app.fields if f.source == CITIZEN]
    assert [f.name for f in asked] == [n for n in FIELDS if n in ASKED]
    filled = app.filled_from_registry
    assert len(filled) == 17
    assert all(f.source.startswith(REGISTRY) for f in filled)
    assert app.value("full_name") == "Nguyễn Văn An"
    assert app.value("sex") == "Nam"
    assert app.value("date_of_birth") == "04/05/1999"
    assert app.value("place_of_birth") == "Hà Nội"  # province code 001 of the ID number
    assert app.value("permanent_residence") == "Số 12 phố Huế, Phường Hai Bà Trưng, Thành phố Hà Nội"
    assert app.value("id_issue_date") == "02/03/2021"
    assert app.value("form") == "Phiếu lý lịch tư pháp số 1"
    assert app.form is FormNo.ONE
    assert app.delivery is Delivery.ELECTRONIC
    assert app.ban_certification is False


def test_what_the_registry_does_not_hold_is_blank_and_marked_never_invented() -> None:
    app = fill_application(PERSON, GOOD)
    missing = {f.name for f in app.filled_from_registry if not f.recorded}
    assert missing == {"other_names", "father_name", "mother_name", "spouse_name"}
    assert all(app.value(n) == "" for n in missing)
    full = fill_application(PERSON, GOOD, Family(father_name="Nguyễn Văn Bình", mother_name="Trần Thị Cúc"))
    assert full.value("father_name") == "Nguyễn Văn Bình"
    assert {f.name for f in full.filled_from_registry if not f.recorded} == {"other_names", "spouse_name"}


def test_post_delivery_and_form_2() -> None:
    app = fill_application(
        PERSON,
        Answers(
            form=2,
            purpose="PERSONAL",
            copies=3,
            delivery="POST",
            email="an@example.vn",
            postal_address="  Số 3   đường Láng, Hà Nội ",
        ),
    )
    assert app.delivery is Delivery.POST
    assert app.postal_address == "Số 3 đường Láng, Hà Nội"
    assert app.value("delivery") == "Gửi qua bưu chính: Số 3 đường Láng, Hà Nội"
    assert app.ban_certification is True  # Form No. 2 always shows the ban (Art. 43(3))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"form": 3}, "form must be 1"),
        ({"purpose": "FUN"}, "purpose must be one of"),
        ({"purpose": "PERSONAL"}, "not one for Form No. 1"),
        ({"copies": 0}, "copies must be"),
        ({"copies": 11}, "copies must be"),
        ({"copies": True}, "copies must be"),
        ({"delivery": "PIGEON"}, "ELECTRONIC or POST"),
        ({"delivery": "POST"}, "postal address"),
        ({"postal_address": "Số 3 đường Láng, Hà Nội"}, "only for delivery by post"),
        ({"ban_certification": None}, "Art. 42"),
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"form": 2, "purpose": "PERSONAL", "ban_certification": False}, "Art. 43"),
    ],
)
def test_bad_answers_get_clear_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        fill_application(PERSON, replace(GOOD, **changes))  # type: ignore[arg-type]


def test_every_purpose_names_a_form() -> None:
    assert all(p.forms and p.text_vi for p in PURPOSES.values())
    assert any(FormNo.TWO in p.forms for p in PURPOSES.values())
