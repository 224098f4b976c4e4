"""issuance.calendar: holidays, substitute days and working-day deadlines (Labour Code 2019 Art. 111-112)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from core.errors import FailedPrecondition, InvalidArgument
from issuance.calendar import LUNAR, add_working_days, holidays, is_working_day, working_days_between


def _naive_add(start: date, days: int, off: set[date], worked: set[date]) -> date:
    day, left = start, days
    while left:
        day += timedelta(days=1)
        if day in worked or (day.weekday() < 5 and day not in off):
            left -= 1
    return day


def test_fixed_holidays_of_2026() -> None:
    off = holidays(2026)
    for day in (date(2026, 1, 1), date(2026, 4, 30), date(2026, 5, 1), date(2026, 9, 1), date(2026, 9, 2)):
        assert day in off
    assert [d for d, name in off.items() if name == "Tết Nguyên đán"] == [date(2026, 2, d) for d in range(16, 21)]
    # Hùng Kings 2026 is a Sunday (26 April): Monday 27 April is the substitute day off.
    assert date(2026, 4, 26) not in off
    assert off[date(2026, 4, 27)].startswith("Nghỉ bù")


def test_tet_2025_follows_the_prime_ministers_decision() -> None:
    tet = [d for d, name in holidays(2025).items() if name == "Tết Nguyên đán"]
    assert tet == [date(2025, 1, d) for d in range(27, 32)]


def test_weekend_holidays_get_the_next_free_weekday() -> None:
    off = holidays(2028)
    assert date(2028, 1, 3) in off  # New Year on a Saturday
    assert date(2028, 5, 2) in off  # 30/4 on a Sunday, 1/5 already off on Monday
    assert date(2028, 9, 4) in off  # 2/9 on a Saturday (1/9 Friday is the adjacent day)


def test_a_swapped_saturday_is_a_working_day() -> None:
    assert is_working_day(date(2025, 4, 26))
    assert not is_working_day(date(2025, 5, 2))


def test_matches_the_python_holidays_reference_where_the_rules_agree() -> None:
    reference = pytest.importorskip("holidays")
    for year in (2025, 2026, 2029):
        theirs = {d for d in reference.Vietnam(years=year) if d.weekday() < 5}
        assert set(holidays(year)) == theirs, year


def test_lunar_table_matches_the_reference() -> None:
    reference = pytest.importorskip("holidays")
    for year, (tet, hung) in LUNAR.items():
        names = {name: d for d, name in reference.Vietnam(years=year).items()}
        assert names["Lunar New Year"] == tet
        assert names["Hung Kings' Commemoration Day"] == hung


def test_deadline_across_tet_2026() -> None:
    # Received Friday 13 February 2026: 16-20 Feb are Tết, the weekend around it too.
    assert add_working_days(date(2026, 2, 13), 10) == date(2026, 3, 6)
    assert add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 23)


def test_deadline_across_30_april_and_1_may_2026() -> None:
    # Received Friday 24 April 2026: 27/4 (Hùng Kings substitute), 30/4 and 1/5 are off.
    assert add_working_days(date(2026, 4, 24), 10) == date(2026, 5, 13)


def test_deadline_across_a_weekend_only() -> None:
    assert add_working_days(date(2026, 3, 6), 10) == date(2026, 3, 20)  # Friday to Friday, two weekends
    assert add_working_days(date(2026, 3, 7), 1) == date(2026, 3, 9)  # received on a Saturday


def test_add_working_days_agrees_with_a_naive_count_over_a_year() -> None:
    off = set(holidays(2026)) | set(holidays(2027))
    worked = {date(2026, 8, 22)}
    for n in range(0, 365, 3):
        start = date(2026, 1, 1) + timedelta(days=n)
        for days in (10, 15):
            got = add_working_days(start, days)
            assert got == _naive_add(start, days, off, worked)
            assert working_days_between(start, got) == days


def test_outside_the_table_and_bad_input_are_refused() -> None:
    with pytest.raises(FailedPrecondition):
        holidays(2040)
    with pytest.raises(FailedPrecondition):
        add_working_days(date(2035, 12, 20), 15)
    with pytest.raises(InvalidArgument):
        add_working_days(date(2026, 1, 5), -1)
