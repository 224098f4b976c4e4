"""Working days of Vietnam's state agencies: weekends, public holidays and their substitute days off.

What is encoded:

* **Weekly rest**: Saturday and Sunday (state agencies work a 40-hour, Monday-Friday week: Decision
  188/1999/QĐ-TTg; Labour Code 2019, Art. 111(1)).
* **Public holidays** (Labour Code 2019, No. 45/2019/QH14, Art. 112(1)): New Year 1/1; Tết (Lunar New Year)
  5 days; Hùng Kings 10/3 lunar; Victory Day 30/4; Labour Day 1/5; National Day 2/9 plus one adjacent day.
  The Prime Minister fixes the Tết days and the day adjacent to 2/9 each year (Art. 112(3)); where no decision
  is encoded, Tết is the last day of the lunar year and the first four of the new one, and the day adjacent to
  2/9 is the one that joins it to a weekend (1/9 when 2/9 falls on a Tuesday, Wednesday or Saturday, else 3/9).
  Decisions encoded: Tết 2025 is 27-31 January (28 Chạp to mùng 3); 2025 and 2026 swaps below.
* **Vietnam Culture Day** 24/11, a paid day off from 2026 (as the python-holidays reference calendar encodes
  it; the 2025 instrument creating it is not cited by number here because it could not be checked).
* **Substitute days off**: a holiday falling on a Saturday or Sunday gives a day off on the next working day
  that is not itself a holiday (Labour Code 2019, Art. 111(3); Decree 145/2020/NĐ-CP guides the Code).
* **Swapped days** decided by the Prime Minister (a working Saturday traded for a bridge day off): 2025, 2 May
  off for Saturday 26 April worked; 2026, 31 August off for Saturday 22 August worked.

The lunar dates (mùng 1 Tết and 10/3 lunar) come from :data:`LUNAR` for 2024-2035, computed on Vietnam's own
lunisolar calendar (UTC+7: Tết 2030 is 2 February in Vietnam, 3 February in China). A year outside the table
is refused (FAILED_PRECONDITION) rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from functools import cache
from types import MappingProxyType

from core.errors import FailedPrecondition, InvalidArgument

LUNAR: Mapping[int, tuple[date, date]] = MappingProxyType(
    {
        # year: (mùng 1 tháng Giêng, 10 tháng 3 âm lịch)
        2024: (date(2024, 2, 10), date(2024, 4, 18)),
        2025: (date(2025, 1, 29), date(2025, 4, 7)),
        2026: (date(2026, 2, 17), date(2026, 4, 26)),
        2027: (date(2027, 2, 6), date(2027, 4, 16)),
        2028: (date(2028, 1, 26), date(2028, 4, 4)),
        2029: (date(2029, 2, 13), date(2029, 4, 23)),
        2030: (date(2030, 2, 2), date(2030, 4, 12)),
        2031: (date(2031, 1, 23), date(2031, 4, 1)),
        2032: (date(2032, 2, 11), date(2032, 4, 19)),
        2033: (date(2033, 1, 31), date(2033, 4, 9)),
        2034: (date(2034, 2, 19), date(2034, 4, 28)),
        2035: (date(2035, 2, 8), date(2035, 4, 17)),
    }
)
"""Lunar New Year's Day and the Hùng Kings' day in the Gregorian calendar, by year."""

TET_DECIDED: Mapping[int, tuple[date, ...]] = MappingProxyType(
    {2025: tuple(date(2025, 1, day) for day in range(27, 32))}
)
"""Tết days fixed by the Prime Minister where they differ from the default (eve + mùng 1-4)."""

SWAPS: Mapping[int, tuple[tuple[date, date], ...]] = MappingProxyType(
    {
        2025: ((date(2025, 5, 2), date(2025, 4, 26)),),
        2026: ((date(2026, 8, 31), date(2026, 8, 22)),),
    }
)
"""(day off, Saturday worked instead) decided for a year."""

CULTURE_DAY_FROM = 2026
TET_DAYS = 5
WEEKEND = frozenset({5, 6})  # Saturday, Sunday


def _require_year(year: int) -> None:
    if year not in LUNAR:
        raise FailedPrecondition(f"no holiday calendar for {year}: the lunar table covers {min(LUNAR)}-{max(LUNAR)}")


@cache
def holidays(year: int) -> Mapping[date, str]:
    """Every weekday off in ``year`` (holidays, substitute days, swapped days) with its Vietnamese name."""
    _require_year(year)
    tet, hung_kings = LUNAR[year]
    named: dict[date, str] = {date(year, 1, 1): "Tết Dương lịch"}
    tet_days = TET_DECIDED.get(year) or tuple(tet + timedelta(days=offset) for offset in range(-1, TET_DAYS - 1))
    for day in tet_days:
        named[day] = "Tết Nguyên đán"
    named[hung_kings] = "Giỗ Tổ Hùng Vương"
    named[date(year, 4, 30)] = "Ngày Chiến thắng"
    named[date(year, 5, 1)] = "Ngày Quốc tế lao động"
    national = date(year, 9, 2)
    adjacent = national - timedelta(days=1) if national.weekday() in (1, 2, 5) else national + timedelta(days=1)
    named[national] = named[adjacent] = "Quốc khánh"
    if year >= CULTURE_DAY_FROM:
        named[date(year, 11, 24)] = "Ngày Văn hóa Việt Nam"
    off = {day: name for day, name in named.items() if day.weekday() not in WEEKEND}
    for day in sorted(named):
        if day.weekday() in WEEKEND:
            substitute = day + timedelta(days=1)
            while substitute.weekday() in WEEKEND or substitute in off:
                substitute += timedelta(days=1)
            off[substitute] = f"Nghỉ bù {named[day]}"
    for day_off, _worked in SWAPS.get(year, ()):
        off[day_off] = "Nghỉ hoán đổi"
    return MappingProxyType(dict(sorted(off.items())))


@cache
def _worked_saturdays(year: int) -> frozenset[date]:
    return frozenset(worked for _off, worked in SWAPS.get(year, ()))


def is_working_day(day: date) -> bool:
    """True when state agencies work on ``day``."""
    if day in _worked_saturdays(day.year):
        return True
    return day.weekday() not in WEEKEND and day not in holidays(day.year)


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself never counts, working day or not).

    A request received on day D has D+1 as its first counted day, as "kể từ ngày nhận được yêu cầu hợp lệ"
    (Law on Judicial Records 2009, Art. 48) is read by the national portal.
    """
    if days < 0:
        raise InvalidArgument(f"days must be >= 0, got {days}")
    day = start
    while days:
        day += timedelta(days=1)
        if is_working_day(day):
            days -= 1
    return day


def working_days_between(start: date, end: date) -> int:
    """How many working days lie in (start, end]: the inverse of :func:`add_working_days`."""
    if end < start:
        raise InvalidArgument("end must not be before start")
    return sum(1 for n in range(1, (end - start).days + 1) if is_working_day(start + timedelta(days=n)))
