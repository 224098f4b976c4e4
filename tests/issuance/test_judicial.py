"""issuance.judicial: Penal Code 2015 Art. 41 and 70-72 on hand-worked cases, and the deterministic seed."""

from __future__ import annotations

from datetime import date

import pytest

from core.errors import InvalidArgument
from issuance.judicial import (
    OFFENCES,
    Conviction,
    JudicialRecord,
    OfficeBan,
    Sentence,
    SentenceKind,
    active_bans,
    add_months,
    expunged_at,
    offence,
    seed_record,
    seed_records,
    unexpunged_at,
)
from registry.generator import generate


def conviction(
    article: int = 173,
    sentence: Sentence | None = None,
    offence_date: date = date(2019, 1, 10),
    judgment_date: date = date(2019, 3, 1),
    completion: date = date(2020, 3, 1),
    ban: OfficeBan | None = None,
    court_expunged_on: date | None = None,
) -> Conviction:
    return Conviction(
        offence(article),
        offence_date,
        "Tòa án nhân dân khu vực 1 - Thành phố Hà Nội",
        "12/2019/HS-ST",
        judgment_date,
        sentence or Sentence(SentenceKind.PRISON, 12),
        completion,
        ban,
        court_expunged_on,
    )


@pytest.mark.parametrize(
    ("sentence", "years"),
    [
        (Sentence(SentenceKind.WARNING), 1),
        (Sentence(SentenceKind.FINE, fine_vnd=20_000_000), 1),
        (Sentence(SentenceKind.NON_CUSTODIAL, 12), 1),
        (Sentence(SentenceKind.SUSPENDED, 24, 36), 1),
        (Sentence(SentenceKind.PRISON, 60), 2),  # up to 5 years
        (Sentence(SentenceKind.PRISON, 61), 3),  # more than 5, up to 15
        (Sentence(SentenceKind.PRISON, 180), 3),
        (Sentence(SentenceKind.PRISON, 181), 5),  # more than 15
        (Sentence(SentenceKind.LIFE), 5),
    ],
)
def test_art_70_waiting_periods(sentence: Sentence, years: int) -> None:
    c = conviction(sentence=sentence, completion=date(2020, 3, 1))
    assert c.own_expungement_date == date(2020 + years, 3, 1)


def test_expunged_on_the_day_not_before() -> None:
    c = conviction(completion=date(2020, 3, 1))  # 12 months' prison: 2 years
    assert unexpunged_at([c], date(2022, 2, 28)) == (c,)
    assert expunged_at([c], date(2022, 3, 1)) == (c,)


def test_a_ban_that_ends_later_delays_expungement_art_70_3() -> None:
    ban = OfficeBan("Đảm nhiệm chức vụ lãnh đạo, quản lý", 5)
    c = conviction(353, Sentence(SentenceKind.PRISON, 36), completion=date(2022, 6, 1), ban=ban)
    assert c.ban_start == date(2022, 6, 1)  # Art. 41: from the prison term served
    assert c.ban_end == date(2027, 6, 1)
    assert c.own_expungement_date == date(2027, 6, 1)  # not 2024-06-01
    assert active_bans([c], date(2027, 5, 31)) == (c,)
    assert active_bans([c], date(2027, 6, 1)) == ()


def test_ban_with_a_suspended_sentence_runs_from_the_judgment() -> None:
    ban = OfficeBan("Đảm nhiệm chức vụ", 2)
    c = conviction(
        354, Sentence(SentenceKind.SUSPENDED, 24, 36), date(2019, 1, 1), date(2019, 5, 1), date(2022, 5, 1), ban
    )
    assert c.ban_start == date(2019, 5, 1)
    assert c.ban_end == date(2021, 5, 1)
    assert c.own_expungement_date == date(2023, 5, 1)


def test_a_new_offence_before_expungement_restarts_the_old_period_art_72() -> None:
    old = conviction(completion=date(2020, 3, 1))  # alone: expunged 2022-03-01
    new = conviction(321, Sentence(SentenceKind.PRISON, 6), date(2021, 5, 1), date(2021, 8, 1), date(2022, 2, 1))
    # The new one: 2 years after 2022-02-01; the old one no earlier.
    assert expunged_at([old, new], date(2023, 6, 1)) == ()
    assert set(expunged_at([old, new], date(2024, 2, 1))) == {old, new}
    # A later offence after the old one was expunged changes nothing.
    late = conviction(321, Sentence(SentenceKind.PRISON, 6), date(2022, 6, 1), date(2022, 8, 1), date(2023, 2, 1))
    assert expunged_at([old, late], date(2022, 3, 1)) == (old,)


def test_chapter_xiii_is_expunged_only_by_a_court_art_71() -> None:
    c = conviction(117, Sentence(SentenceKind.PRISON, 24), completion=date(2019, 12, 1))
    assert c.own_expungement_date is None
    assert expunged_at([c], date(2035, 1, 1)) == ()
    decided = conviction(
        117, Sentence(SentenceKind.PRISON, 24), completion=date(2019, 12, 1), court_expunged_on=date(2025, 1, 1)
    )
    assert expunged_at([decided], date(2025, 1, 1)) == (decided,)
    assert Sentence(SentenceKind.PRISON, 24).court_expungement_years == 5
    with pytest.raises(InvalidArgument):
        conviction(173, court_expunged_on=date(2025, 1, 1))


@pytest.mark.parametrize(
    "make",
    [
        lambda: Sentence(SentenceKind.PRISON, 2),
        lambda: Sentence(SentenceKind.PRISON, 361),
        lambda: Sentence(SentenceKind.NON_CUSTODIAL, 40),
        lambda: Sentence(SentenceKind.SUSPENDED, 48, 60),
        lambda: Sentence(SentenceKind.SUSPENDED, 12, 6),
        lambda: Sentence(SentenceKind.FINE, fine_vnd=500_000),
        lambda: Sentence(SentenceKind.WARNING, 3),
        lambda: OfficeBan("Đảm nhiệm chức vụ", 6),
        lambda: offence(999),
        lambda: conviction(judgment_date=date(2018, 1, 1)),
    ],
)
def test_impossible_values_are_refused(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument):
        make()


def test_catalog_names_articles_in_vietnamese() -> None:
    assert OFFENCES[173].name_vi == "Tội trộm cắp tài sản"
    assert OFFENCES[260].citation.startswith("Điều 260 Bộ luật Hình sự 2015")
    assert {134, 173, 174, 249, 251, 260, 321} <= set(OFFENCES)


def test_add_months_clamps_to_the_month_end() -> None:
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert add_months(date(2024, 11, 30), 14) == date(2026, 1, 30)


def test_record_orders_convictions_and_knows_clean() -> None:
    a = conviction(completion=date(2020, 3, 1))
    b = conviction(
        321, Sentence(SentenceKind.FINE, fine_vnd=5_000_000), date(2023, 1, 1), date(2023, 2, 1), date(2023, 4, 1)
    )
    record = JudicialRecord("001099000001", (b, a))
    assert record.convictions == (a, b)
    assert not record.clean_at(date(2023, 6, 1))  # b on record until 2024-04-01
    assert record.clean_at(date(2024, 4, 1))
    assert JudicialRecord("001099000002").clean_at(date(2026, 1, 1))


def test_seed_is_deterministic_and_realistic() -> None:
    people = list(generate(30_000, seed=7))
    first = [seed_record(p) for p in people]
    again = [seed_record(p) for p in reversed(people)][::-1]
    assert first == again
    with_record = [r for r in first if r.convictions]
    assert 0.01 <= len(with_record) / len(people) <= 0.02
    assert with_record == list(seed_records(people))
    reference = date(2026, 1, 1)
    assert any(r.expunged_at(reference) for r in with_record)  # some people have only expunged convictions
    assert any(r.unexpunged_at(reference) for r in with_record)
    by_id = {p.id_number: p for p in people}
    for record in with_record:
        person = by_id[record.id_number]
        for c in record.convictions:
            assert c.judgment_date < reference
            assert c.offence_date >= max(add_months(person.date_of_birth, 216), date(2018, 1, 1))
    assert seed_record(people[0], seed=8) is not None  # another seed is another draw, no error
