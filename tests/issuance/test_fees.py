"""issuance.fees: Circular 244/2016/TT-BTC amounts, reductions, waivers and extra copies."""

from __future__ import annotations

from datetime import date

import pytest

from issuance.fees import FeeGroup, fee, groups_from_registry


@pytest.mark.parametrize(
    ("copies", "groups", "total"),
    [
        (1, (), 200_000),
        (2, (), 200_000),
        (3, (), 205_000),
        (5, (), 215_000),
        (1, (FeeGroup.STUDENT,), 100_000),
        (4, (FeeGroup.MARTYR_RELATIVE,), 110_000),
        (1, (FeeGroup.ELDERLY,), 0),
        (3, (FeeGroup.POOR_HOUSEHOLD,), 5_000),
        (1, (FeeGroup.STUDENT, FeeGroup.DISABLED), 0),  # a waiver wins over a reduction
    ],
)
def test_amounts(copies: int, groups: tuple[FeeGroup, ...], total: int) -> None:
    result = fee(copies, groups)
    assert result.total_vnd == total
    assert result.base_vnd - result.reduction_vnd + result.extra_copies_vnd == total
    assert result.basis == "Thông tư 244/2016/TT-BTC"


def test_agencies_pay_nothing() -> None:
    assert fee(5, agency=True).total_vnd == 0


def test_age_groups_from_the_registry() -> None:
    on = date(2026, 7, 1)
    assert groups_from_registry(date(2010, 7, 2), on) == {FeeGroup.CHILD}  # 15 the day before 16
    assert groups_from_registry(date(2010, 7, 1), on) == frozenset()
    assert groups_from_registry(date(1966, 7, 1), on) == {FeeGroup.ELDERLY}
    assert groups_from_registry(date(1966, 7, 2), on) == frozenset()
