"""issuance.dossiers: the status machine against a table written out by hand, tracking numbers, deadlines."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from core.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from issuance.dossiers import (
    Actor,
    ActorNotAllowed,
    AutoApprovalPolicy,
    Event,
    IllegalTransition,
    Status,
    auto_decision,
    luhn_digit,
    open_dossier,
    parse_tracking_number,
    statutory_days,
    tracking_number,
    transition,
)
from issuance.fees import fee
from issuance.forms import FormNo
from issuance.judicial import Conviction, JudicialRecord, Sentence, SentenceKind, offence
from registry.citizen import Address, Citizen, Sex

LEGAL = """
SUBMITTED VERIFY  SYSTEM         VERIFYING
VERIFYING APPROVE OFFICER,SYSTEM APPROVED
VERIFYING REJECT  OFFICER,SYSTEM REJECTED
APPROVED  ISSUE   SYSTEM         ISSUED
"""
EXPECTED: dict[tuple[str, str, str], str] = {}
for line in LEGAL.strip().splitlines():
    source, event, actors, target = line.split()
    for actor in actors.split(","):
        EXPECTED[source, event, actor] = target
MAY_EVER = {e: {a for (_, ev, a) in EXPECTED if ev == e} for e in {ev for (_, ev, _) in EXPECTED}}
CASES = list(itertools.product(Status, Event, Actor))
VN = timezone(timedelta(hours=7))


@pytest.mark.parametrize(("status", "event", "actor"), CASES, ids=["-".join(m.value for m in c) for c in CASES])
def test_transition_matches_the_table(status: Status, event: Event, actor: Actor) -> None:
    key = (status.value, event.value, actor.value)
    if key in EXPECTED:
        assert transition(status, event, actor, reason="hồ sơ không hợp lệ") is Status(EXPECTED[key])
    elif actor.value not in MAY_EVER[event.value]:
        with pytest.raises(ActorNotAllowed) as caught:
            transition(status, event, actor, reason="x")
        assert isinstance(caught.value, PermissionDenied)
    else:
        with pytest.raises(IllegalTransition) as illegal:
            transition(status, event, actor, reason="x")
        assert isinstance(illegal.value, FailedPrecondition)


def test_a_rejection_needs_a_reason() -> None:
    with pytest.raises(InvalidArgument, match="reason"):
        transition(Status.VERIFYING, Event.REJECT, Actor.OFFICER, reason="  ")


def test_luhn_published_vector() -> None:
    assert luhn_digit("7992739871") == "3"  # the classic example (ISO/IEC 7812-1, Wikipedia)


def test_tracking_numbers_round_trip_and_catch_typos() -> None:
    number = tracking_number(date(2026, 1, 15), 123)
    assert number.startswith("000.00.00.LLTP-260115-000123")
    assert len(number) == len("000.00.00.LLTP-260115-0001230")
    assert parse_tracking_number(number) == ("000.00.00.LLTP", date(2026, 1, 15), 123)
    assert tracking_number(date(2026, 1, 15), 123) == number  # deterministic
    body = number[-7:]
    for i in range(6):  # every single-digit change of the sequence is caught
        changed = body[:i] + str((int(body[i]) + 1) % 10) + body[i + 1 :]
        with pytest.raises(InvalidArgument, match="typo"):
            parse_tracking_number(number[:-7] + changed)
    for bad in ("", "abc", "000.00.00.LLTP-261315-0001230", "x" * 100):
        with pytest.raises(InvalidArgument):
            parse_tracking_number(bad)
    with pytest.raises(InvalidArgument):
        tracking_number(date(2026, 1, 15), 0)
    with pytest.raises(InvalidArgument):
        tracking_number(date(2026, 1, 15), 1, unit="bad unit")


def _citizen(permanent: str = "Thành phố Hà Nội", current: str = "Thành phố Hà Nội", nationality: str = "Việt Nam"):  # type: ignore[no-untyped-def]
    return Citizen(
        "001099012345",
        "Nguyễn Văn An",
        date(1999, 5, 4),
        Sex.MALE,
        nationality,
        "Kinh",
        "Không",
        "Xã Đông Anh, Thành phố Hà Nội",
        Address("Số 1", "Phường A", permanent),
        Address("Số 1", "Phường A", current),
        date(2021, 3, 2),
        "Cục CS",
        "0912345678",
    )


CONVICTED = JudicialRecord(
    "001099012345",
    (
        Conviction(
            offence(173),
            date(2019, 1, 1),
            "Tòa án nhân dân Thành phố Hà Nội",
            "1/2019/HS-ST",
            date(2019, 3, 1),
            Sentence(SentenceKind.PRISON, 6),
            date(2019, 9, 1),
        ),
    ),
)


def test_statutory_days() -> None:
    assert statutory_days(_citizen()) == 10
    assert statutory_days(_citizen(current="Tỉnh Ninh Bình")) == 15  # lived in several provinces
    assert statutory_days(_citizen(permanent="Tỉnh Ninh Bình", current="Tỉnh Ninh Bình")) == 15  # born elsewhere
    assert statutory_days(_citizen(nationality="Nhật Bản")) == 15
    assert statutory_days(_citizen(), lived_abroad=True) == 15
    assert statutory_days(_citizen(), CONVICTED) == 15  # expungement to verify
    assert statutory_days(_citizen(), JudicialRecord("001099012345")) == 10


def test_dossier_lifecycle_deadline_and_overdue() -> None:
    received = datetime(2026, 2, 13, 9, 30, tzinfo=VN)  # Friday before Tết
    d = open_dossier(tracking_number(received.date(), 1), "001099012345", FormNo.ONE, fee(1), received, 10)
    assert d.status is Status.SUBMITTED
    assert d.deadline == date(2026, 3, 6)
    assert not d.overdue(datetime(2026, 3, 6, 23, 59, tzinfo=VN))
    assert d.overdue(datetime(2026, 3, 7, 0, 0, tzinfo=VN))
    assert d.overdue(datetime(2026, 3, 6, 17, 0, tzinfo=UTC))  # already 7 March in Viet Nam
    d = d.advance(Event.VERIFY, Actor.SYSTEM, received + timedelta(minutes=1))
    d = d.advance(Event.APPROVE, Actor.SYSTEM, received + timedelta(minutes=2))
    d = d.advance(Event.ISSUE, Actor.SYSTEM, datetime(2026, 3, 9, 8, tzinfo=VN))
    assert [c.status for c in d.history] == [Status.SUBMITTED, Status.VERIFYING, Status.APPROVED, Status.ISSUED]
    assert not d.overdue(datetime(2027, 1, 1, tzinfo=VN))
    assert d.finished_late()
    with pytest.raises(IllegalTransition):
        d.advance(Event.ISSUE, Actor.SYSTEM, datetime(2026, 3, 10, tzinfo=VN))


def test_rejection_keeps_its_reason() -> None:
    received = datetime(2026, 3, 2, 9, tzinfo=VN)
    d = open_dossier(tracking_number(received.date(), 7), "001099012345", FormNo.TWO, fee(1), received, 15)
    d = d.advance(Event.VERIFY, Actor.SYSTEM, received)
    d = d.advance(Event.REJECT, Actor.OFFICER, received + timedelta(hours=1), " Thông tin không khớp ")
    assert d.status is Status.REJECTED
    assert d.rejection_reason == "Thông tin không khớp"
    assert not d.overdue(datetime(2030, 1, 1, tzinfo=VN))


def test_open_dossier_refuses_bad_input() -> None:
    received = datetime(2026, 3, 2, 9, tzinfo=VN)
    good = tracking_number(received.date(), 7)
    with pytest.raises(InvalidArgument):
        open_dossier(good, "001099012345", FormNo.ONE, fee(1), received, 12)
    with pytest.raises(InvalidArgument):
        open_dossier(good, "001099012345", FormNo.ONE, fee(1), received.replace(tzinfo=None), 10)
    with pytest.raises(InvalidArgument):
        open_dossier(
            good[:-1] + "0" if good[-1] != "0" else good[:-1] + "1", "001099012345", FormNo.ONE, fee(1), received, 10
        )
    d = open_dossier(good, "001099012345", FormNo.ONE, fee(1), received, 10)
    with pytest.raises(InvalidArgument):
        d.advance(Event.VERIFY, Actor.SYSTEM, received - timedelta(seconds=1))


def test_auto_approval_policy() -> None:
    on = date(2026, 7, 1)
    clean = JudicialRecord("001099012345")
    policy = AutoApprovalPolicy()
    assert auto_decision(policy, FormNo.ONE, clean, on).approve
    assert auto_decision(policy, FormNo.TWO, clean, on).approve
    assert auto_decision(policy, FormNo.ONE, CONVICTED, on).approve  # expunged in 2021: clean on No. 1
    assert not auto_decision(policy, FormNo.TWO, CONVICTED, on).approve  # No. 2 prints it: an officer looks
    assert not auto_decision(policy, FormNo.ONE, CONVICTED, date(2020, 1, 1)).approve
    assert not auto_decision(AutoApprovalPolicy(enabled=False), FormNo.ONE, clean, on).approve
    only_one = AutoApprovalPolicy(forms=frozenset({FormNo.ONE}))
    assert "officer" in auto_decision(only_one, FormNo.TWO, clean, on).reason
