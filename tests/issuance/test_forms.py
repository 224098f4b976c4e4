"""issuance.forms: who may obtain Form No. 1 / No. 2, and what each shows (Law on Judicial Records Art. 41-46)."""

from __future__ import annotations

import re
from datetime import date

import pytest

from core.errors import InvalidArgument, PermissionDenied
from issuance.forms import (
    BANNED,
    HAS_RECORD,
    NO_RECORD,
    NOT_BANNED,
    FormNo,
    NotEntitled,
    Requester,
    RequesterKind,
    certificate_content,
    check_entitled,
)
from issuance.judicial import Conviction, JudicialRecord, OfficeBan, Sentence, SentenceKind, offence

AT = date(2026, 7, 1)


def _conviction(article: int, completion: date, sentence: Sentence, ban: OfficeBan | None = None) -> Conviction:
    judged = date(completion.year - 1, 1, 15)
    return Conviction(
        offence(article),
        date(judged.year - 1, 11, 1),
        "Tòa án nhân dân Thành phố Hà Nội",
        f"{article}/{judged.year}/HS-ST",
        judged,
        sentence,
        completion,
        ban,
    )


EXPUNGED = _conviction(321, date(2020, 1, 15), Sentence(SentenceKind.FINE, fine_vnd=10_000_000))  # 2021
ON_RECORD = _conviction(173, date(2025, 1, 15), Sentence(SentenceKind.PRISON, 12))  # until 2027
BANNED_ONE = _conviction(
    353, date(2025, 3, 1), Sentence(SentenceKind.SUSPENDED, 24, 24), OfficeBan("Đảm nhiệm chức vụ lãnh đạo, quản lý", 3)
)

ALLOWED = [
    (FormNo.ONE, Requester(RequesterKind.SELF)),
    (FormNo.ONE, Requester(RequesterKind.REPRESENTATIVE, written_authorisation=True)),
    (FormNo.ONE, Requester(RequesterKind.AGENCY, legal_basis="Luật Doanh nghiệp 2020, Điều 17")),
    (FormNo.ONE, Requester(RequesterKind.PROCEDURAL_AUTHORITY)),
    (FormNo.TWO, Requester(RequesterKind.SELF)),
    (FormNo.TWO, Requester(RequesterKind.PROCEDURAL_AUTHORITY)),
]
REFUSED = [
    (FormNo.ONE, Requester(RequesterKind.REPRESENTATIVE), "written authorisation"),
    (FormNo.ONE, Requester(RequesterKind.AGENCY), "where a law allows"),
    (FormNo.TWO, Requester(RequesterKind.REPRESENTATIVE, written_authorisation=True), "not even with"),
    (FormNo.TWO, Requester(RequesterKind.REPRESENTATIVE), "Art. 46(2)"),
    (FormNo.TWO, Requester(RequesterKind.AGENCY, legal_basis="Luật Doanh nghiệp 2020"), "procedural authorities"),
]


@pytest.mark.parametrize(("form", "requester"), ALLOWED)
def test_entitled(form: FormNo, requester: Requester) -> None:
    check_entitled(form, requester)


@pytest.mark.parametrize(("form", "requester", "why"), REFUSED)
def test_not_entitled_says_why(form: FormNo, requester: Requester, why: str) -> None:
    with pytest.raises(NotEntitled, match=re.escape(why)) as caught:
        check_entitled(form, requester)
    assert isinstance(caught.value, PermissionDenied)


def test_clean_record_reads_no_conviction_on_both_forms() -> None:
    record = JudicialRecord("001099000001")
    one = certificate_content(FormNo.ONE, record, AT, ban_requested=False)
    two = certificate_content(FormNo.TWO, record, AT, ban_requested=False)
    assert one.status_vi == two.status_vi == NO_RECORD == "không có án tích"
    assert one.entries == two.entries == ()
    assert one.ban_vi is None
    assert two.ban_vi == NOT_BANNED


def test_an_expunged_conviction_is_absent_from_no_1_and_present_in_no_2() -> None:
    record = JudicialRecord("001099000001", (EXPUNGED,))
    one = certificate_content(FormNo.ONE, record, AT, ban_requested=True)
    assert one.status_vi == NO_RECORD
    assert one.entries == ()
    assert one.ban_vi == NOT_BANNED
    two = certificate_content(FormNo.TWO, record, AT, ban_requested=False)
    assert len(two.entries) == 1
    entry = two.entries[0]
    assert entry.expunged_on == date(2021, 1, 15)
    assert entry.offence_vi == "Tội đánh bạc"
    assert entry.article.startswith("Điều 321")
    assert two.status_vi == NO_RECORD  # expunged: as if never convicted (Penal Code Art. 69)


def test_no_2_lists_everything_in_time_order_no_1_only_what_is_on_record() -> None:
    record = JudicialRecord("001099000001", (ON_RECORD, EXPUNGED))
    one = certificate_content(FormNo.ONE, record, AT, ban_requested=False)
    assert one.status_vi == HAS_RECORD
    assert [e.judgment_number for e in one.entries] == [ON_RECORD.judgment_number]
    assert one.entries[0].expunged_on is None
    assert one.entries[0].main_penalty_vi == "Tù có thời hạn 1 năm"
    two = certificate_content(FormNo.TWO, record, AT, ban_requested=False)
    assert two.status_vi == HAS_RECORD
    assert [e.judgment_number for e in two.entries] == [EXPUNGED.judgment_number, ON_RECORD.judgment_number]


def test_the_ban_shows_on_no_1_only_when_asked() -> None:
    record = JudicialRecord("001099000001", (BANNED_ONE,))
    assert certificate_content(FormNo.ONE, record, AT, ban_requested=False).ban_vi is None
    asked = certificate_content(FormNo.ONE, record, AT, ban_requested=True)
    assert asked.ban_vi is not None
    assert asked.ban_vi.startswith(BANNED)
    assert "15/01/2027" in asked.ban_vi
    assert asked.entries[0].additional_penalty_vi.startswith("Cấm đảm nhiệm chức vụ")
    assert certificate_content(FormNo.TWO, record, AT, ban_requested=False).ban_vi == asked.ban_vi


def test_form_must_be_a_form() -> None:
    with pytest.raises(InvalidArgument):
        certificate_content(3, JudicialRecord("001099000001"), AT, False)  # type: ignore[arg-type]
