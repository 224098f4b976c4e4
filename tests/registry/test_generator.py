"""The population generator, names and today's geography (Resolution 202/2025/QH15)."""

from __future__ import annotations

import gc
import hashlib
import os
import re
import subprocess
import sys
import unicodedata
from collections import Counter
from dataclasses import fields
from datetime import date
from itertools import islice
from pathlib import Path

import pytest

from registry import geography, names
from registry.citizen import Address, Citizen, Sex
from registry.generator import (
    CITIZEN_COLUMNS,
    DEFAULT_TODAY,
    ISSUE_PLACE,
    _UniqueSerials,
    citizen_row,
    generate,
)
from registry.idnumber import OLD_PROVINCES, parse

LARGE = 200_000
PHONE = re.compile(r"0(3[2-9]|5[2-9]|7[06-9]|8[1-9]|9[0-9])\d{7}")


@pytest.fixture(scope="module")
def population() -> list[Citizen]:
    # Collection is paused while the list grows: with 200,000 live records the cyclic collector's passes
    # would otherwise dominate the run time of this fixture (there are no cycles to collect).
    gc.disable()
    try:
        return list(generate(LARGE))
    finally:
        gc.enable()


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


# --- geography ----------------------------------------------------------------------------------


def test_there_are_34_units_6_of_them_cities() -> None:
    assert len(geography.CENTRAL_CITIES) == 6
    assert len(geography.PROVINCES) == 28
    assert len(set(geography.NEW_UNITS)) == 34
    assert all(u.startswith("Thành phố ") for u in geography.CENTRAL_CITIES)
    assert all(u.startswith("Tỉnh ") for u in geography.PROVINCES)


def test_every_old_code_maps_into_the_34_units_and_every_unit_is_reached() -> None:
    assert set(geography.OLD_TO_NEW) == set(OLD_PROVINCES)
    assert set(geography.OLD_TO_NEW.values()) == set(geography.NEW_UNITS)
    assert set(geography.OLD_POPULATION) == set(OLD_PROVINCES)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("002", "Tỉnh Tuyên Quang"),
        ("015", "Tỉnh Lào Cai"),
        ("026", "Tỉnh Phú Thọ"),
        ("017", "Tỉnh Phú Thọ"),
        ("030", "Thành phố Hải Phòng"),
        ("036", "Tỉnh Ninh Bình"),
        ("046", "Thành phố Huế"),
        ("049", "Thành phố Đà Nẵng"),
        ("062", "Tỉnh Quảng Ngãi"),
        ("052", "Tỉnh Gia Lai"),
        ("060", "Tỉnh Lâm Đồng"),
        ("074", "Thành phố Hồ Chí Minh"),
        ("077", "Thành phố Hồ Chí Minh"),
        ("080", "Tỉnh Tây Ninh"),
        ("083", "Tỉnh Vĩnh Long"),
        ("091", "Tỉnh An Giang"),
        ("094", "Thành phố Cần Thơ"),
        ("095", "Tỉnh Cà Mau"),
        ("001", "Thành phố Hà Nội"),
        ("038", "Tỉnh Thanh Hóa"),
    ],
)
def test_merger_examples(old: str, new: str) -> None:
    assert geography.OLD_TO_NEW[old] == new


def test_unchanged_units_map_to_themselves() -> None:
    merged_away = Counter(geography.OLD_TO_NEW.values())
    unchanged = [unit for unit, n in merged_away.items() if n == 1]
    assert len(unchanged) == 11
    for unit in unchanged:
        (code,) = [c for c, u in geography.OLD_TO_NEW.items() if u == unit]
        assert unit.endswith(OLD_PROVINCES[code].removeprefix("Thừa Thiên "))


def test_place_name_pools() -> None:
    assert len(set(geography.COMMUNE_STEMS)) == len(geography.COMMUNE_STEMS) >= 60
    assert {"An Phú", "Tân Thành", "Hòa Bình", "Long Biên"} <= set(geography.COMMUNE_STEMS)
    assert geography.commune_name("An Phú", urban=True) == "Phường An Phú"
    assert geography.commune_name("An Phú", urban=False) == "Xã An Phú"
    assert geography.hamlet_word("Tỉnh An Giang") == "Ấp"
    assert geography.hamlet_word("Tỉnh Sơn La") == "Bản"
    assert geography.hamlet_word("Tỉnh Nghệ An") == "Thôn"


# --- names ------------------------------------------------------------------------------------------


def _all_name_strings() -> list[str]:
    weighted = [*names.SURNAMES, *names.MALE_MIDDLE, *names.FEMALE_MIDDLE]
    weighted += [*names.ETHNICITIES, *names.RELIGIONS]
    plain = [*names.MALE_GIVEN, *names.FEMALE_GIVEN, *geography.COMMUNE_STEMS, *geography.STREET_NAMES]
    plain += [s for pool in names.ETHNIC_SURNAMES.values() for s in pool]
    return [s for s, _ in weighted] + plain + list(geography.NEW_UNITS) + list(OLD_PROVINCES.values())


def test_all_strings_are_nfc() -> None:
    for text in _all_name_strings():
        assert unicodedata.normalize("NFC", text) == text, text


def test_name_pools() -> None:
    assert len(set(names.MALE_GIVEN)) == len(names.MALE_GIVEN) >= 40
    assert len(set(names.FEMALE_GIVEN)) == len(names.FEMALE_GIVEN) >= 40
    surnames = dict(names.SURNAMES)
    assert max(surnames, key=surnames.__getitem__) == "Nguyễn"
    assert 35 <= surnames["Nguyễn"] / sum(surnames.values()) * 100 <= 41
    ethnicities = dict(names.ETHNICITIES)
    assert 80 <= ethnicities["Kinh"] / sum(ethnicities.values()) * 100 <= 90
    religions = dict(names.RELIGIONS)
    assert max(religions, key=religions.__getitem__) == "Không"
    for mix, region in names.ETHNIC_MIX.values():
        assert 0 < mix < 1
        assert region in names.ETHNIC_POOLS
    assert set(names.ETHNIC_MIX) <= set(OLD_PROVINCES)
    pooled = {e for pool in names.ETHNIC_POOLS.values() for e, _ in pool}
    assert pooled <= set(ethnicities) - {"Kinh"}


# --- generator ----------------------------------------------------------------------------------------


def test_unique_serials_is_a_permutation_and_then_runs_out() -> None:
    serials = _UniqueSerials(seed=7, salt=1, a=10, b=23)
    drawn = [serials.next(5) for _ in range(230)]
    assert sorted(drawn) == list(range(230))  # type: ignore[type-var]
    assert drawn != sorted(drawn)
    assert serials.next(5) is None
    assert serials.next(6) is not None


def test_deterministic_and_prefix_stable() -> None:
    first = list(generate(500, seed=42))
    assert first == list(generate(500, seed=42))
    assert first[:100] == list(generate(100, seed=42))
    assert first != list(generate(500, seed=43))
    assert list(generate(50)) == list(generate(50, seed=2025, today=DEFAULT_TODAY))
    assert list(generate(0)) == []


def test_invalid_arguments_are_rejected_eagerly() -> None:
    with pytest.raises(ValueError, match="count"):
        generate(-1)
    with pytest.raises(ValueError, match="2016"):
        generate(1, today=date(2015, 12, 31))


def test_output_does_not_depend_on_hash_randomisation() -> None:
    script = (
        "import hashlib\n"
        "from registry.generator import citizen_row, generate\n"
        "rows = repr([citizen_row(c) for c in generate(2000, seed=9)]).encode()\n"
        "print(hashlib.sha256(rows).hexdigest())\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    digests = set()
    for hash_seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": root}
        result = subprocess.run(
            [sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True, check=True
        )
        digests.add(result.stdout.strip())
    expected = hashlib.sha256(repr([citizen_row(c) for c in generate(2000, seed=9)]).encode()).hexdigest()
    assert digests == {expected}


def test_ids_and_phones_are_unique(population: list[Citizen]) -> None:
    assert len({c.id_number for c in population}) == LARGE
    assert len({c.phone for c in population}) == LARGE


def test_every_id_parses_and_agrees_with_the_citizen(population: list[Citizen]) -> None:
    old_to_new = geography.OLD_TO_NEW
    for c in population:
        parsed = parse(c.id_number, today=DEFAULT_TODAY)
        assert parsed.sex is c.sex
        assert parsed.birth_year == c.date_of_birth.year
        assert c.hometown.endswith(old_to_new[parsed.province_code])


def test_ages_are_14_to_90(population: list[Citizen]) -> None:
    births = [c.date_of_birth for c in population]
    assert _age(max(births), DEFAULT_TODAY) == 14
    assert _age(min(births), DEFAULT_TODAY) == 90


def test_citizens_are_well_formed(population: list[Citizen]) -> None:
    units = set(geography.NEW_UNITS)
    law = date(2016, 1, 1)
    for c in islice(population, 50_000):
        assert c.nationality == "Việt Nam"
        assert c.id_card_issue_place == ISSUE_PLACE
        assert law <= c.id_card_issue_date <= DEFAULT_TODAY
        assert _age(c.date_of_birth, c.id_card_issue_date) >= 14
        assert PHONE.fullmatch(c.phone), c.phone
        assert len(c.full_name.split()) >= 3
        for address in (c.permanent_address, c.current_address):
            assert address.province in units
            assert address.commune.startswith(("Phường ", "Xã "))
            assert address.street
        commune, unit = c.hometown.split(", ")
        assert commune.startswith(("Xã ", "Phường "))
        assert unit in units


def test_cards_are_still_valid(population: list[Citizen]) -> None:
    """A card must be renewed at 25, 40 and 60 unless issued within two years before (Article 21)."""
    for c in islice(population, 20_000):
        age = _age(c.date_of_birth, DEFAULT_TODAY)
        age_at_issue = _age(c.date_of_birth, c.id_card_issue_date)
        for renewal in (25, 40, 60):
            if age >= renewal:
                assert age_at_issue >= renewal - 2


def test_distributions_are_realistic(population: list[Citizen]) -> None:
    n = len(population)
    surnames = Counter(c.full_name.split()[0] for c in population)
    assert 0.30 < surnames["Nguyễn"] / n < 0.42
    ethnicity = Counter(c.ethnicity for c in population)
    assert 0.80 < ethnicity["Kinh"] / n < 0.90
    assert len(ethnicity) >= 15
    religion = Counter(c.religion for c in population)
    assert religion.most_common(1)[0][0] == "Không"
    sexes = Counter(c.sex for c in population)
    assert 0.45 < sexes[Sex.MALE] / n < 0.52
    ages = Counter(_age(c.date_of_birth, DEFAULT_TODAY) for c in islice(population, 50_000))
    assert ages[35] > ages[75] > ages[90]
    same = sum(c.current_address is c.permanent_address for c in population)
    assert 0.77 < same / n < 0.83
    assert {c.permanent_address.province for c in population} == set(geography.NEW_UNITS)
    assert {c.id_number[:3] for c in population} == set(OLD_PROVINCES)


def test_names_have_diacritics(population: list[Citizen]) -> None:
    with_diacritics = sum(not c.full_name.isascii() for c in islice(population, 10_000))
    assert with_diacritics > 9_000
    for c in islice(population, 1_000):
        assert unicodedata.normalize("NFC", c.full_name) == c.full_name


def test_names_follow_sex(population: list[Citizen]) -> None:
    for c in islice(population, 10_000):
        middle = c.full_name.split()[1]
        if middle == "Thị":
            assert c.sex is Sex.FEMALE
        if middle == "Văn":
            assert c.sex is Sex.MALE


def test_citizen_row_matches_columns() -> None:
    citizen = next(generate(1))
    row = citizen_row(citizen)
    assert len(row) == len(CITIZEN_COLUMNS) == 17
    by_column = dict(zip(CITIZEN_COLUMNS, row, strict=True))
    assert by_column["sex"] == citizen.sex.value
    assert isinstance(by_column["sex"], str)
    assert by_column["permanent_commune"] == citizen.permanent_address.commune
    assert by_column["current_province"] == citizen.current_address.province
    assert by_column["id_card_issue_date"] == citizen.id_card_issue_date
    flat = {f.name for f in fields(Citizen)} - {"permanent_address", "current_address"}
    flat |= {f"{kind}_{f.name}" for kind in ("permanent", "current") for f in fields(Address)}
    assert set(CITIZEN_COLUMNS) == flat
