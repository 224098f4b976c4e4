"""The one place that decides whether an agency's fetch under a consent is allowed (issue 10, item 3).

``decide`` is pure: given the artefact, its status, its counters, the request and the time, it returns either
``Allowed`` with the counters after this fetch or ``Denied`` with a reason code. The store applies the new
counters atomically with the check (``consent.storage.FetchCharger``), so concurrent fetches cannot overspend.

The checks, in order (the first that fails names the reason):

1. ``WRONG_AGENCY``: the caller is not the artefact's agency — it learns nothing more about the artefact;
2. ``WRONG_PURPOSE``: the fetch is made for another purpose than the one granted;
3. ``EXPIRED`` if the status is EXPIRED, else ``NOT_ACTIVE`` unless the status is ACTIVE;
4. ``NOT_STARTED`` before ``start``; ``EXPIRED`` from ``expiry`` on (valid in [start, expiry), even before the
   system marks the status EXPIRED);
5. ``DOCUMENT_NOT_IN_GRANT``: neither the document's id nor its type is granted;
6. ``NOT_THE_CITIZENS``: the document is not (or no longer) the consenting citizen's;
7. ``USES_EXHAUSTED``: ``max_fetches`` fetches were made;
8. ``FREQUENCY_EXCEEDED``: ``frequency.count`` fetches were made in the current window.

A denial charges nothing. Frequency windows are calendar windows in Vietnam's time (UTC+07:00, no daylight
saving since 1975): the clock hour, the day from 00:00, the month from its 1st. The counters hold the number of
fetches in the window of the last fetch; a fetch in a later window starts that count again from zero. A clock
that goes backwards (``now`` before the last fetch) never reopens a window: the last fetch's window counts.
Fixed windows let a burst straddle a boundary (3 at 23:59 and 3 at 00:00 under "3 a day"); that is the price of
one counter row updated in place, and ``max_fetches`` still bounds the total.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from consent.artefact import ConsentArtefact, FrequencyUnit
from consent.states import Status
from core.errors import InvalidArgument, PermissionDenied
from vault.documents import DocumentType

VIETNAM = timezone(timedelta(hours=7), "ICT")


class Reason(enum.Enum):
    NOT_ACTIVE = "NOT_ACTIVE"
    NOT_STARTED = "NOT_STARTED"
    EXPIRED = "EXPIRED"
    USES_EXHAUSTED = "USES_EXHAUSTED"
    FREQUENCY_EXCEEDED = "FREQUENCY_EXCEEDED"
    DOCUMENT_NOT_IN_GRANT = "DOCUMENT_NOT_IN_GRANT"
    NOT_THE_CITIZENS = "NOT_THE_CITIZENS"
    WRONG_AGENCY = "WRONG_AGENCY"
    WRONG_PURPOSE = "WRONG_PURPOSE"


MESSAGES = {
    Reason.NOT_ACTIVE: "the consent is not active",
    Reason.NOT_STARTED: "the consent has not started yet",
    Reason.EXPIRED: "the consent has expired",
    Reason.USES_EXHAUSTED: "the consent's fetches are used up",
    Reason.FREQUENCY_EXCEEDED: "the consent's fetches for this period are used up",
    Reason.DOCUMENT_NOT_IN_GRANT: "the consent does not cover this document",
    Reason.NOT_THE_CITIZENS: "the document does not belong to the consenting citizen",
    Reason.WRONG_AGENCY: "the consent was not given to this agency",
    Reason.WRONG_PURPOSE: "the consent was not given for this purpose",
}


@dataclass(frozen=True, slots=True)
class Counters:
    """The use counters kept beside an artefact."""

    fetches: int = 0  # fetches made under the artefact, ever
    window_fetches: int = 0  # fetches made in the frequency window of ``last_fetch``
    last_fetch: datetime | None = None

    def __post_init__(self) -> None:
        if self.fetches < 0 or not 0 <= self.window_fetches <= self.fetches:
            raise InvalidArgument("counters must satisfy 0 <= window_fetches <= fetches")
        if (self.last_fetch is None) != (self.fetches == 0):
            raise InvalidArgument("counters have a last fetch exactly when a fetch was made")
        if self.last_fetch is not None and self.last_fetch.tzinfo is None:
            raise InvalidArgument("last_fetch must be timezone-aware")


@dataclass(frozen=True, slots=True)
class RequestedDocument:
    """The document asked for, as the vault knows it (``owner`` in the same pseudonymous namespace as the
    artefact's subject)."""

    id: uuid.UUID
    document_type: DocumentType
    owner: str


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """Who fetches (the agency's client id, from its bound consent token), why, and what."""

    client_id: str
    purpose: str
    document: RequestedDocument


@dataclass(frozen=True, slots=True)
class Allowed:
    counters: Counters  # what the store writes with the check


@dataclass(frozen=True, slots=True)
class Denied:
    reason: Reason

    @property
    def message(self) -> str:
        return MESSAGES[self.reason]

    def error(self) -> FetchDenied:
        return FetchDenied(self.reason)


Decision = Allowed | Denied


class FetchDenied(PermissionDenied):
    """A refused fetch (PERMISSION_DENIED); ``reason`` is the code the caller gets with it."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(f"{reason.value}: {MESSAGES[reason]}")
        self.reason = reason


def window_start(instant: datetime, unit: FrequencyUnit) -> datetime:
    """The start of the calendar window (Vietnam time) that holds ``instant``."""
    local = instant.astimezone(VIETNAM)
    if unit is FrequencyUnit.HOUR:
        local = local.replace(minute=0, second=0, microsecond=0)
    elif unit is FrequencyUnit.DAY:
        local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        local = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return local.astimezone(UTC)


def fetches_in_window(artefact: ConsentArtefact, counters: Counters, now: datetime) -> int:
    """How many fetches count against the frequency at ``now``."""
    if counters.last_fetch is None:
        return 0
    unit = artefact.frequency.unit
    if window_start(counters.last_fetch, unit) >= window_start(now, unit):
        return counters.window_fetches
    return 0


def gate(artefact: ConsentArtefact, status: Status, client_id: str, purpose: str, now: datetime) -> Denied | None:
    """The checks that do not depend on a document nor on the counters (also what a listing must pass)."""
    if client_id != artefact.client_id:
        return Denied(Reason.WRONG_AGENCY)
    if purpose != artefact.purpose:
        return Denied(Reason.WRONG_PURPOSE)
    if status is Status.EXPIRED:
        return Denied(Reason.EXPIRED)
    if status is not Status.ACTIVE:
        return Denied(Reason.NOT_ACTIVE)
    if now < artefact.start:
        return Denied(Reason.NOT_STARTED)
    if now >= artefact.expiry:
        return Denied(Reason.EXPIRED)
    return None


def decide(
    artefact: ConsentArtefact, status: Status, counters: Counters, request: FetchRequest, now: datetime
) -> Decision:
    """Allowed (with the counters after this fetch) or Denied (with the first rule that refused)."""
    if now.tzinfo is None:
        raise InvalidArgument("now must be timezone-aware")
    denied = gate(artefact, status, request.client_id, request.purpose, now)
    if denied:
        return denied
    document = request.document
    if not artefact.covers(document.id, document.document_type):
        return Denied(Reason.DOCUMENT_NOT_IN_GRANT)
    if document.owner != artefact.subject:
        return Denied(Reason.NOT_THE_CITIZENS)
    if counters.fetches >= artefact.max_fetches:
        return Denied(Reason.USES_EXHAUSTED)
    in_window = fetches_in_window(artefact, counters, now)
    if in_window >= artefact.frequency.count:
        return Denied(Reason.FREQUENCY_EXCEEDED)
    last = now if counters.last_fetch is None else max(counters.last_fetch, now)
    return Allowed(Counters(counters.fetches + 1, in_window + 1, last))
