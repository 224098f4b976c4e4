"""The fee for a criminal-record certificate (phí cung cấp thông tin lý lịch tư pháp): recorded, never charged here.

Circular 244/2016/TT-BTC of the Ministry of Finance (fee for providing judicial-record information), as
encoded (later amending circulars could not be checked here; the amounts are those of the 2016 text):

* 200,000 VND per request, Form No. 1 or No. 2 alike;
* 100,000 VND (a 50 % reduction) for students, people with meritorious services to the revolution and
  relatives of fallen soldiers (thân nhân liệt sĩ: spouse, parents, children, the person who raised them);
* waived for children (under 16, Law on Children 2016, Art. 1), the elderly (60 and over, Law on the Elderly
  2009, Art. 2), people with disabilities, members of poor households, and residents of extremely
  disadvantaged communes and ethnic minorities living in communes in extremely difficult socio-economic
  conditions;
* from the third copy of one request, 5,000 VND per extra copy (charged on top, reduced or not);
* requests by procedural authorities and other agencies (Law on Judicial Records, Art. 7(2)-(3)) carry no fee
  (the Circular charges people who ask for their own record).

Age groups are derived from the registry's date of birth (:func:`groups_from_registry`); the other groups need
proof the applicant declares and an officer checks, so the caller passes them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

BASIS = "Thông tư 244/2016/TT-BTC"
BASE_VND = 200_000
EXTRA_COPY_VND = 5_000
FREE_COPIES = 2
CHILD_UNDER = 16
ELDERLY_FROM = 60


class FeeGroup(enum.Enum):
    STUDENT = "STUDENT"
    REVOLUTIONARY_CONTRIBUTOR = "REVOLUTIONARY_CONTRIBUTOR"
    MARTYR_RELATIVE = "MARTYR_RELATIVE"
    CHILD = "CHILD"
    ELDERLY = "ELDERLY"
    DISABLED = "DISABLED"
    POOR_HOUSEHOLD = "POOR_HOUSEHOLD"
    DISADVANTAGED_COMMUNE = "DISADVANTAGED_COMMUNE"
    ETHNIC_MINORITY_DIFFICULT_AREA = "ETHNIC_MINORITY_DIFFICULT_AREA"


HALF = frozenset({FeeGroup.STUDENT, FeeGroup.REVOLUTIONARY_CONTRIBUTOR, FeeGroup.MARTYR_RELATIVE})
WAIVED = frozenset(FeeGroup) - HALF


@dataclass(frozen=True, slots=True)
class Fee:
    """The fee of one request, in VND, with why."""

    base_vnd: int
    reduction_vnd: int
    extra_copies_vnd: int
    total_vnd: int
    reason: str
    basis: str = BASIS


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def groups_from_registry(date_of_birth: date, on: date) -> frozenset[FeeGroup]:
    """The groups the registry proves by itself: children and the elderly."""
    age = age_on(date_of_birth, on)
    if age < CHILD_UNDER:
        return frozenset({FeeGroup.CHILD})
    if age >= ELDERLY_FROM:
        return frozenset({FeeGroup.ELDERLY})
    return frozenset()


def fee(copies: int, groups: Iterable[FeeGroup] = (), agency: bool = False) -> Fee:
    """The fee for a request of ``copies`` certificates by a person in ``groups`` (or by an agency)."""
    if agency:
        return Fee(0, 0, 0, 0, "yêu cầu của cơ quan, tổ chức: không thu phí")
    extra = max(0, copies - FREE_COPIES) * EXTRA_COPY_VND
    groups = frozenset(groups)
    if groups & WAIVED:
        names = ", ".join(sorted(g.value for g in groups & WAIVED))
        return Fee(BASE_VND, BASE_VND, extra, extra, f"miễn phí ({names})")
    if groups & HALF:
        names = ", ".join(sorted(g.value for g in groups & HALF))
        return Fee(BASE_VND, BASE_VND // 2, extra, BASE_VND // 2 + extra, f"giảm 50% ({names})")
    return Fee(BASE_VND, 0, extra, BASE_VND + extra, "mức thu đầy đủ")
