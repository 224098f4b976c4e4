"""A certificate request as a dossier (hồ sơ): tracking number, status machine, statutory deadline, auto-approval.

::

    SUBMITTED ──VERIFY (system)──▶ VERIFYING ──APPROVE (officer, system)──▶ APPROVED ──ISSUE (system)──▶ ISSUED
                                       └──────REJECT (officer, system; a reason)──▶ REJECTED

REJECTED and ISSUED are terminal. As in :mod:`consent.states`, ``transition`` checks who before when: an
actor that can never cause the event is PERMISSION_DENIED; an event the status does not allow is
FAILED_PRECONDITION; a rejection without a reason is INVALID_ARGUMENT.

**Deadline** (Law on Judicial Records 2009, Art. 48, as amended): at most 10 working days from receipt of a
valid request; 15 when the person has lived in several provinces, has lived abroad, is a foreigner, or when
whether a conviction is automatically expunged must be verified. :func:`statutory_days` applies those from
what the registry and the judicial record show: residence in more than one province (permanent, current and the
province of birth registration told apart), a nationality other than Vietnamese, and any conviction at all
(its expungement must be verified).

**Tracking number**: in the manner of the National Public Service Portal's dossier codes (the issuing unit's
electronic identifier under Decision 20/2020/QĐ-TTg, the date received, a daily sequence) —
``<unit>-<YYMMDD>-<NNNNNN><C>`` where C is the Luhn check digit (ISO/IEC 7812-1) of the digits of the date and
sequence, so a mistyped number is caught before any lookup.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from types import MappingProxyType

from core import state_machine
from core.errors import InvalidArgument
from issuance.calendar import add_working_days
from issuance.fees import Fee
from issuance.forms import FormNo
from issuance.judicial import JudicialRecord
from registry.citizen import Citizen
from registry.geography import OLD_TO_NEW
from registry.names import NATIONALITY

VIETNAM_TIME = timezone(timedelta(hours=7))
NORMAL_DAYS = 10
EXTENDED_DAYS = 15
MAX_REASON = 500
UNIT = re.compile(r"[A-Z0-9]{1,5}(?:\.[A-Z0-9]{1,5}){0,4}")
TRACKING = re.compile(r"(?P<unit>[A-Z0-9.]{1,29})-(?P<date>\d{6})-(?P<seq>\d{6})(?P<check>\d)")
DEFAULT_UNIT = "000.00.00.LLTP"


class Status(enum.Enum):
    SUBMITTED = "SUBMITTED"
    VERIFYING = "VERIFYING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    ISSUED = "ISSUED"


class Event(enum.Enum):
    VERIFY = "VERIFY"
    APPROVE = "APPROVE"
    REJECT = "REJECT"
    ISSUE = "ISSUE"


class Actor(enum.Enum):
    OFFICER = "OFFICER"
    SYSTEM = "SYSTEM"


_DECIDERS = frozenset(Actor)
_SYSTEM = frozenset({Actor.SYSTEM})
TRANSITIONS: Mapping[tuple[Status, Event], tuple[Status, frozenset[Actor]]] = MappingProxyType(
    {
        (Status.SUBMITTED, Event.VERIFY): (Status.VERIFYING, _SYSTEM),
        (Status.VERIFYING, Event.APPROVE): (Status.APPROVED, _DECIDERS),
        (Status.VERIFYING, Event.REJECT): (Status.REJECTED, _DECIDERS),
        (Status.APPROVED, Event.ISSUE): (Status.ISSUED, _SYSTEM),
    }
)


class IllegalTransition(state_machine.IllegalTransition):
    """The dossier's status does not allow this event (FAILED_PRECONDITION)."""

    noun = "dossier"


class ActorNotAllowed(state_machine.ActorNotAllowed):
    """This kind of caller may not cause this event (PERMISSION_DENIED)."""

    noun = "dossier"


MACHINE = state_machine.StateMachine(TRANSITIONS, Status, Event, IllegalTransition, ActorNotAllowed)
TERMINAL = MACHINE.terminal
ACTORS_OF = MACHINE.actors_of


def transition(status: Status, event: Event, actor: Actor, reason: str = "") -> Status:
    """The status after ``event`` by ``actor``, or the domain error that refuses it."""
    target = MACHINE.transition(status, event, actor)
    if event is Event.REJECT and not reason.strip():
        raise InvalidArgument("a rejection needs a reason the citizen can read")
    if len(reason) > MAX_REASON:
        raise InvalidArgument(f"a reason is at most {MAX_REASON} characters")
    return target


# ---------------------------------------------------------------------------------------------------------------
# Tracking numbers.


def luhn_digit(digits: str) -> str:
    """The Luhn check digit to append to ``digits``."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str(-total % 10)


def tracking_number(received: date, sequence: int, unit: str = DEFAULT_UNIT) -> str:
    """The dossier code for the ``sequence``-th request (from 1) ``unit`` received on ``received``."""
    if not UNIT.fullmatch(unit) or len(unit) > 29:
        raise InvalidArgument("unit must be an electronic identifier such as 000.00.00.H26")
    if not 1 <= sequence <= 999_999:
        raise InvalidArgument("sequence must be 1..999999")
    body = f"{received:%y%m%d}{sequence:06d}"
    return f"{unit}-{body[:6]}-{body[6:]}{luhn_digit(body)}"


def parse_tracking_number(text: str) -> tuple[str, date, int]:
    """(unit, date received, sequence) of a well-formed number; INVALID_ARGUMENT otherwise (a typo included)."""
    match = TRACKING.fullmatch(text.strip()) if len(text) <= 64 else None
    if match is None or not UNIT.fullmatch(match["unit"]):
        raise InvalidArgument("a tracking number looks like 000.00.00.LLTP-260115-0000123")
    body = match["date"] + match["seq"]
    if luhn_digit(body) != match["check"]:
        raise InvalidArgument("this tracking number has a typo: its check digit does not match")
    try:
        received = datetime.strptime(match["date"], "%y%m%d").date()
    except ValueError:
        raise InvalidArgument("this tracking number's date is not a date") from None
    return match["unit"], received, int(match["seq"])


# ---------------------------------------------------------------------------------------------------------------
# Deadline and dossier.


def statutory_days(citizen: Citizen, record: JudicialRecord | None = None, lived_abroad: bool = False) -> int:
    """10 working days, or 15 in the cases of Art. 48 that the registry and the record show."""
    birth_unit = OLD_TO_NEW.get(citizen.id_number[:3])
    provinces = {citizen.permanent_address.province, citizen.current_address.province}
    if birth_unit:
        provinces.add(birth_unit)
    if (
        len(provinces) > 1
        or lived_abroad
        or citizen.nationality != NATIONALITY
        or (record is not None and record.convictions)
    ):
        return EXTENDED_DAYS
    return NORMAL_DAYS


@dataclass(frozen=True, slots=True)
class StatusChange:
    status: Status
    at: datetime
    actor: Actor
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Dossier:
    """One request being handled; ``advance`` returns the next version, never changes this one."""

    tracking_number: str
    id_number: str
    form: FormNo
    fee: Fee
    received_at: datetime
    working_days: int
    deadline: date
    history: tuple[StatusChange, ...] = field(default=())

    @property
    def status(self) -> Status:
        return self.history[-1].status if self.history else Status.SUBMITTED

    @property
    def rejection_reason(self) -> str:
        return self.history[-1].reason if self.status is Status.REJECTED else ""

    def advance(self, event: Event, actor: Actor, at: datetime, reason: str = "") -> Dossier:
        target = transition(self.status, event, actor, reason)
        _aware(at, "at")
        if self.history and at < self.history[-1].at:
            raise InvalidArgument("a status change cannot predate the previous one")
        return replace(self, history=(*self.history, StatusChange(target, at, actor, reason.strip())))

    def overdue(self, now: datetime) -> bool:
        """Not issued nor rejected, and the deadline day (Vietnam time) is past."""
        if self.status in TERMINAL:
            return False
        return _aware(now, "now").astimezone(VIETNAM_TIME).date() > self.deadline

    def finished_late(self) -> bool:
        """Issued or rejected after the deadline day."""
        return self.status in TERMINAL and self.history[-1].at.astimezone(VIETNAM_TIME).date() > self.deadline


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise InvalidArgument(f"{name} must carry a time zone")
    return moment


def open_dossier(
    tracking: str, id_number: str, form: FormNo, fee: Fee, received_at: datetime, working_days: int
) -> Dossier:
    """A SUBMITTED dossier whose deadline counts ``working_days`` from the day received (Vietnam time)."""
    parse_tracking_number(tracking)
    if working_days not in (NORMAL_DAYS, EXTENDED_DAYS):
        raise InvalidArgument(f"the statutory time is {NORMAL_DAYS} or {EXTENDED_DAYS} working days")
    received_day = _aware(received_at, "received_at").astimezone(VIETNAM_TIME).date()
    deadline = add_working_days(received_day, working_days)
    first = StatusChange(Status.SUBMITTED, received_at, Actor.SYSTEM)
    return Dossier(tracking, id_number, form, fee, received_at, working_days, deadline, (first,))


# ---------------------------------------------------------------------------------------------------------------
# Auto-approval.


@dataclass(frozen=True, slots=True)
class AutoApprovalPolicy:
    """Which dossiers the system approves without an officer (everything else waits for one)."""

    enabled: bool = True
    forms: frozenset[FormNo] = frozenset(FormNo)


@dataclass(frozen=True, slots=True)
class Decision:
    approve: bool
    reason: str


def auto_decision(policy: AutoApprovalPolicy, form: FormNo, record: JudicialRecord, at: date) -> Decision:
    """Approve a clean record automatically; leave any other to an officer (never reject automatically).

    Clean for Form No. 1: nothing not yet expunged and no ban in force. For Form No. 2: no conviction at all
    (an expunged one is printed too, so an officer checks it).
    """
    if not policy.enabled:
        return Decision(False, "automatic approval is turned off")
    if form not in policy.forms:
        return Decision(False, f"Form No. {int(form)} is always reviewed by an officer")
    if form is FormNo.ONE and record.clean_at(at):
        return Decision(True, "clean record: no conviction on record and no ban in force")
    if form is FormNo.TWO and not record.convictions:
        return Decision(True, "clean record: no conviction")
    return Decision(False, "the record holds convictions: an officer reviews it")
