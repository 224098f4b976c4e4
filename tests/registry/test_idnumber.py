"""Personal identification numbers: structure per Decree 137/2015/NĐ-CP and Circular 07/2016/TT-BCA."""

from __future__ import annotations

from datetime import date

import pytest

from registry.citizen import Address, Sex
from registry.idnumber import OLD_PROVINCES, IdNumber, InvalidIdNumber, compose, mask, parse

TODAY = date(2026, 1, 1)


def test_old_provinces_are_the_63_codes() -> None:
    assert len(OLD_PROVINCES) == 63
    assert all(len(code) == 3 and code.isdigit() for code in OLD_PROVINCES)
    assert OLD_PROVINCES["001"] == "Hà Nội"
    assert OLD_PROVINCES["079"] == "Hồ Chí Minh"
    assert OLD_PROVINCES["096"] == "Cà Mau"
    assert "003" not in OLD_PROVINCES
    assert len(set(OLD_PROVINCES.values())) == 63


@pytest.mark.parametrize(
    ("value", "province", "sex", "year"),
    [
        ("001089012345", "001", Sex.MALE, 1989),
        ("079190000001", "079", Sex.FEMALE, 1990),
        ("036203999999", "036", Sex.MALE, 2003),
        ("096311000000", "096", Sex.FEMALE, 2011),
        ("048000123456", "048", Sex.MALE, 1900),
        ("002126654321", "002", Sex.FEMALE, 1926),
    ],
)
def test_parse_decodes_each_part(value: str, province: str, sex: Sex, year: int) -> None:
    parsed = parse(value, today=TODAY)
    assert parsed == IdNumber(value=value, province_code=province, sex=sex, birth_year=year)
    assert parsed.serial == int(value[6:])
    assert parsed.province_name == OLD_PROVINCES[province]
    assert str(parsed) == value


def test_parse_strips_surrounding_whitespace() -> None:
    assert parse("  001089012345\n", today=TODAY).value == "001089012345"


@pytest.mark.parametrize("code", sorted(OLD_PROVINCES))
def test_compose_parse_round_trip_for_every_province(code: str) -> None:
    for sex in Sex:
        for year in (1900, 1936, 1999, 2000, 2011, 2025):
            for serial in (0, 7, 123456, 999999):
                value = compose(code, sex, year, serial)
                assert len(value) == 12
                parsed = parse(value, today=TODAY)
                assert (parsed.province_code, parsed.sex, parsed.birth_year, parsed.serial) == (
                    code,
                    sex,
                    year,
                    serial,
                )


@pytest.mark.parametrize(
    ("sex", "year", "digit"),
    [
        (Sex.MALE, 1950, "0"),
        (Sex.FEMALE, 1950, "1"),
        (Sex.MALE, 2005, "2"),
        (Sex.FEMALE, 2005, "3"),
        (Sex.MALE, 2100, "4"),
        (Sex.FEMALE, 2199, "5"),
        (Sex.MALE, 2200, "6"),
        (Sex.FEMALE, 2250, "7"),
        (Sex.MALE, 2300, "8"),
        (Sex.FEMALE, 2399, "9"),
    ],
)
def test_compose_century_sex_digit(sex: Sex, year: int, digit: str) -> None:
    value = compose("001", sex, year, 42)
    assert value == f"001{digit}{year % 100:02d}000042"


def test_future_centuries_parse_once_they_arrive() -> None:
    value = compose("001", Sex.FEMALE, 2101, 5)
    with pytest.raises(InvalidIdNumber):
        parse(value, today=TODAY)
    assert parse(value, today=date(2101, 1, 1)).birth_year == 2101


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("003", Sex.MALE, 1990, 1), "province"),
        (("1", Sex.MALE, 1990, 1), "province"),
        (("001", "male", 1990, 1), "Sex"),
        (("001", Sex.MALE, 1899, 1), "birth year"),
        (("001", Sex.MALE, 2400, 1), "birth year"),
        (("001", Sex.MALE, 1990, -1), "serial"),
        (("001", Sex.MALE, 1990, 1_000_000), "serial"),
    ],
)
def test_compose_rejects_out_of_range_parts(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        compose(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("", "exactly 12 digits"),
        ("00108901234", "exactly 12 digits"),
        ("0010890123456", "exactly 12 digits"),
        ("001 089012345", "exactly 12 digits"),
        ("00108901234a", "only the digits"),
        ("00108901234.", "only the digits"),
        ("-01089012345", "only the digits"),
        ("00108901234５", "only the digits"),  # fullwidth digit: isdigit() but not ASCII
        ("00108901234٣", "only the digits"),  # Arabic-Indic digit
        ("003089012345", "unknown province code 003"),
        ("000089012345", "unknown province code 000"),
        ("097089012345", "unknown province code 097"),
        ("001227012345", "birth year 2027"),
        ("001399012345", "birth year 2099"),
        ("001400012345", "birth year 2100"),
        ("001500012345", "birth year 2100"),
        ("001600012345", "birth year 2200"),
        ("001700012345", "birth year 2200"),
        ("001800012345", "birth year 2300"),
        ("001999012345", "birth year 2399"),
    ],
)
def test_parse_rejections_explain_without_echoing_the_number(raw: str, match: str) -> None:
    with pytest.raises(InvalidIdNumber, match=match) as excinfo:
        parse(raw, today=TODAY)
    message = str(excinfo.value)
    if raw:
        assert raw not in message
        assert raw[3:] not in message


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(InvalidIdNumber, match="string"):
        parse(1089012345, today=TODAY)  # type: ignore[arg-type]


def test_invalid_id_number_is_a_value_error() -> None:
    assert issubclass(InvalidIdNumber, ValueError)


def test_birth_in_the_current_year_is_accepted() -> None:
    assert parse("001226000001", today=date(2026, 12, 31)).birth_year == 2026
    with pytest.raises(InvalidIdNumber, match="after 2025"):
        parse("001226000001", today=date(2025, 12, 31))


def test_parse_defaults_to_the_real_clock() -> None:
    assert parse("001089012345").birth_year == 1989
    with pytest.raises(InvalidIdNumber):
        parse("001999012345")


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("001089012345", "*********345"),
        ("  001089012345", "***********345"),
        ("abc", "abc"),
        ("ab", "ab"),
        ("", ""),
        ("0123", "*123"),
        ("Nguyễn Văn A 123", "*************123"),
    ],
)
def test_mask_keeps_only_the_last_three_characters(raw: str, masked: str) -> None:
    assert mask(raw) == masked
    assert len(mask(raw)) == len(raw)


def test_id_number_repr_is_masked() -> None:
    parsed = parse("001089012345", today=TODAY)
    assert "001089012345" not in repr(parsed)
    assert "*********345" in repr(parsed)


def test_address_formatted() -> None:
    address = Address("Số 12 đường Lê Lợi", "Phường Bến Thành", "Thành phố Hồ Chí Minh")
    assert address.formatted == "Số 12 đường Lê Lợi, Phường Bến Thành, Thành phố Hồ Chí Minh"
