"""Revocation and suspension of issued certificates, published as an IETF Token Status List (list 0).

An officer of the Judicial Records Centre revokes a certificate for good (it was issued in error, the record
changed), suspends it (a check is pending) or lifts a suspension (service Officers: Revoke, Suspend, Reinstate)::

    VALID ──SUSPEND──▶ SUSPENDED ──REINSTATE──▶ VALID
      └─────REVOKE──────▶ REVOKED ◀──REVOKE──┘          (REVOKED is final)

Only an ISSUED dossier's certificate has a status (FAILED_PRECONDITION otherwise), a change needs a reason
(INVALID_ARGUMENT), and an event its status does not allow is FAILED_PRECONDITION (``core.state_machine``).

Each change is one transaction (``issuance.status_store.PostgresStatusStore``): the dossier's row locked, its
``credential_status`` written, an ``audit.events`` row (action ``issuance.revoke`` / ``issuance.suspend`` /
``issuance.reinstate``, actor ``agency:<officer client id>``, the dossier's ``subject`` pseudonym; no
``issuance.dossier_events`` row: the dossier's own status stays ISSUED), and the Status List Token of list 0
rebuilt from every dossier's ``(status_index, credential_status)`` under a per-list lock and stored in
``issuance.status_lists`` with its version incremented, so concurrent changes serialise on the list and none
loses another's entry.

The token (draft-ietf-oauth-status-list §5.1, ``issuance.status_list``): header ``typ statuslist+jwt``, ES256
with the issuer key (the ``ISSUANCE_SIGNING`` seed, ``SigningKey.from_seed``, its RFC 7638 thumbprint as
``kid``); claims ``iss`` the edge's URL (``DINHDANH_ISSUER``), ``sub`` ``{issuer}/statuslists/0`` (what every
credential's ``status.status_list.uri`` names), ``iat``, ``exp`` = ``iat`` + 24 h (§5.1 RECOMMENDED; re-signed
well before, ``start_refresher``), ``ttl`` 300 s (§5.1: how long a verifier may cache it; the edge's
``Cache-Control: max-age``), and ``status_list {bits: 2, lst}`` (§4: 0 VALID, 1 INVALID = revoked,
2 SUSPENDED, §7.1). The list has at least 1,024 entries (the draft's
Privacy Considerations, "Observability of Issuers": herd privacy — a fetch of the list does not tell which
credential is checked, and a small list would tell how few were issued), grown in chunks of 1,024 so it always
covers every index the sequence ``issuance.status_indexes`` has handed out plus a chunk ahead.

Use from the issuance service::

    store = issuance.status_store.status_store(pool, settings)   # ISSUANCE_SIGNING key, settings.issuer
    await publish_initial(store)                                  # on start: list 0 exists, rebuilt from the rows
    stop = start_refresher(store)                                 # re-signs before exp; await stop() on shutdown
    status = await revoke(store, dossier_id, reason, officer)     # -> CredentialStatus.REVOKED
    await cover(store, status_index)                              # the issuing worker, after assigning an index
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from core import logs, state_machine
from core.errors import FailedPrecondition, InvalidArgument
from issuance.issuer_keys import SigningKey
from issuance.status_list import Status, StatusList, sign_status_list

LIST_ID = 0  # every certificate's entry is in list 0 (MAX_ENTRIES = 16,777,216 entries)
BITS = 2
MIN_ENTRIES = 1024  # herd privacy (the draft's Privacy Considerations); a multiple of 8
CHUNK = 1024  # the list grows by this many entries (a multiple of 8)
TTL = timedelta(minutes=5)
LIFETIME = timedelta(hours=24)
REFRESH_AFTER = timedelta(hours=12)  # a list older than this is re-signed by the refresher
REFRESH_EVERY = 600.0  # seconds between the refresher's checks
MAX_REASON = 500
MAX_OFFICER = 200
CONTENT_TYPE = "application/statuslist+jwt"  # §8.1 (the edge serves the token with it)
log = logs.get("issuance.revocation")


class CredentialStatus(enum.Enum):
    """An issued certificate's status (``issuance.dossiers.credential_status``; proto ``CredentialStatus``)."""

    VALID = "VALID"
    REVOKED = "REVOKED"
    SUSPENDED = "SUSPENDED"


class Event(enum.Enum):
    REVOKE = "REVOKE"
    SUSPEND = "SUSPEND"
    REINSTATE = "REINSTATE"


class Actor(enum.Enum):
    OFFICER = "OFFICER"


class IllegalChange(state_machine.IllegalTransition):
    """The certificate's status does not allow this change (FAILED_PRECONDITION)."""

    noun = "certificate"


class ActorNotAllowed(state_machine.ActorNotAllowed):
    noun = "certificate"


_OFFICER = frozenset({Actor.OFFICER})
MACHINE = state_machine.StateMachine(
    {
        (CredentialStatus.VALID, Event.REVOKE): (CredentialStatus.REVOKED, _OFFICER),
        (CredentialStatus.SUSPENDED, Event.REVOKE): (CredentialStatus.REVOKED, _OFFICER),
        (CredentialStatus.VALID, Event.SUSPEND): (CredentialStatus.SUSPENDED, _OFFICER),
        (CredentialStatus.SUSPENDED, Event.REINSTATE): (CredentialStatus.VALID, _OFFICER),
    },
    CredentialStatus,
    Event,
    IllegalChange,
    ActorNotAllowed,
)
ACTIONS: Mapping[Event, str] = {
    Event.REVOKE: "issuance.revoke",
    Event.SUSPEND: "issuance.suspend",
    Event.REINSTATE: "issuance.reinstate",
}
# what each credential status is in the list (§7.1)
LIST_VALUES: Mapping[CredentialStatus, Status] = {
    CredentialStatus.VALID: Status.VALID,
    CredentialStatus.REVOKED: Status.INVALID,
    CredentialStatus.SUSPENDED: Status.SUSPENDED,
}


class NotIssued(FailedPrecondition):
    """The dossier has no issued certificate (FAILED_PRECONDITION)."""

    def __init__(self, dossier_status: str) -> None:
        super().__init__(
            f"only an issued certificate can be revoked, suspended or reinstated; this dossier is {dossier_status}"
        )


def next_status(dossier_status: str, current: CredentialStatus | None, event: Event) -> CredentialStatus:
    """The certificate's status after ``event``, or the FAILED_PRECONDITION that refuses it (the store calls this
    with the locked row's values)."""
    if dossier_status != "ISSUED" or current is None:
        raise NotIssued(dossier_status)
    return MACHINE.transition(current, event, Actor.OFFICER)


def dossier_uuid(dossier_id: str | uuid.UUID) -> uuid.UUID:
    if isinstance(dossier_id, uuid.UUID):
        return dossier_id
    try:
        return uuid.UUID(str(dossier_id))
    except ValueError:
        raise InvalidArgument("the dossier id must be a UUID") from None


def checked_reason(reason: str) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise InvalidArgument("a status change needs a reason")
    if len(text) > MAX_REASON:
        raise InvalidArgument(f"a reason is at most {MAX_REASON} characters")
    return text


def checked_officer(officer: str) -> str:
    if not isinstance(officer, str) or not 0 < len(officer) <= MAX_OFFICER or not officer.isprintable():
        raise InvalidArgument("the officer must be named (the officer agency's client id)")
    return officer


def status_list_uri(issuer: str, list_id: int = LIST_ID) -> str:
    """``{issuer}/statuslists/{id}``: the list's URI, its ``sub`` and where the edge serves it."""
    return f"{issuer.rstrip('/')}/statuslists/{list_id}"


def list_size(highest_index: int | None) -> int:
    """Entries of a list whose highest handed-out index is ``highest_index`` (None: none yet): at least
    ``MIN_ENTRIES``, a whole number of ``CHUNK``s, a chunk ahead of the highest index."""
    if highest_index is None or highest_index < 0:
        return MIN_ENTRIES
    return max(MIN_ENTRIES, (highest_index + 1 + CHUNK + CHUNK - 1) // CHUNK * CHUNK)


@dataclass(frozen=True)
class StatusListSigner:
    """Signs list ``list_id``'s Status List Token with the issuer key (see the module docstring)."""

    key: SigningKey
    issuer: str
    ttl: timedelta = TTL
    lifetime: timedelta = LIFETIME

    def __post_init__(self) -> None:
        if not self.issuer.startswith(("https://", "http://")):
            raise InvalidArgument("the status list issuer is the edge's URL (DINHDANH_ISSUER)")

    def uri(self, list_id: int = LIST_ID) -> str:
        return status_list_uri(self.issuer, list_id)

    def sign(self, entries: Mapping[int, CredentialStatus], size: int, at: datetime, list_id: int = LIST_ID) -> str:
        """The token of a list of ``size`` entries, all VALID but ``entries``."""
        status_list = StatusList.new(size, BITS)
        for index, status in entries.items():
            if status is not CredentialStatus.VALID:
                status_list.set(index, LIST_VALUES[status])
        return sign_status_list(self.key, status_list, uri=self.uri(list_id), at=at, lifetime=self.lifetime,
                                ttl=self.ttl, issuer=self.issuer.rstrip("/"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Change:
    """One requested change, as the store receives it."""

    dossier_id: uuid.UUID
    event: Event
    reason: str
    officer: str
    at: datetime


@dataclass(frozen=True, slots=True)
class PublishedList:
    list_id: int
    token: str
    size: int
    version: int
    built_at: datetime


class StatusStore(Protocol):
    """Where credential statuses and the signed lists live (``issuance.status_store.PostgresStatusStore``)."""

    async def change(self, change: Change) -> CredentialStatus:
        """Lock the dossier, apply ``next_status`` to it, write it with its audit row and the rebuilt list, in one
        transaction; a refusal commits only its ``refused`` audit row, then raises."""

    async def rebuild(self, at: datetime, list_id: int = LIST_ID, *, older_than: datetime | None = None,
                      covering: int | None = None) -> PublishedList | None:  # fmt: skip
        """Rebuild and store list ``list_id`` (always when it is absent; else only when it was built before
        ``older_than`` or does not cover index ``covering``, if either is given); the list as stored."""

    async def published(self, list_id: int = LIST_ID) -> PublishedList | None:
        """The stored list, None when there is none."""


def _now() -> datetime:
    return datetime.now(UTC)


async def _change(
    store: StatusStore, dossier_id: str | uuid.UUID, reason: str, officer: str, event: Event
) -> CredentialStatus:
    change = Change(dossier_uuid(dossier_id), event, checked_reason(reason), checked_officer(officer), _now())
    return await store.change(change)


async def revoke(store: StatusStore, dossier_id: str | uuid.UUID, reason: str, officer: str) -> CredentialStatus:
    """Revoke the certificate of dossier ``dossier_id`` for good (VALID or SUSPENDED → REVOKED).

    ``officer`` is the officer agency's client id (``Caller.name``); ``reason`` is required (at most 500
    characters). NOT_FOUND for an unknown dossier, FAILED_PRECONDITION if it is not ISSUED or already REVOKED,
    INVALID_ARGUMENT for a missing reason or a malformed id. Returns the new status (``CredentialStatus.REVOKED``)
    once the dossier, its audit row and the re-signed list 0 have committed together."""
    return await _change(store, dossier_id, reason, officer, Event.REVOKE)


async def suspend(store: StatusStore, dossier_id: str | uuid.UUID, reason: str, officer: str) -> CredentialStatus:
    """Suspend the certificate (VALID → SUSPENDED); as ``revoke`` otherwise."""
    return await _change(store, dossier_id, reason, officer, Event.SUSPEND)


async def reinstate(store: StatusStore, dossier_id: str | uuid.UUID, reason: str, officer: str) -> CredentialStatus:
    """Lift a suspension (SUSPENDED → VALID); a revoked certificate stays revoked (FAILED_PRECONDITION)."""
    return await _change(store, dossier_id, reason, officer, Event.REINSTATE)


async def publish_initial(store: StatusStore) -> PublishedList:
    """On the issuance service's start: list 0 rebuilt from the dossiers and stored (all VALID on a fresh
    platform; after a restart it carries every revocation and suspension), re-signed so it is fresh."""
    published = await store.rebuild(_now())
    assert published is not None
    return published


async def cover(store: StatusStore, status_index: int) -> None:
    """Make list 0 cover ``status_index`` (the issuing worker calls it after taking an index from
    ``issuance.status_indexes`` and before the certificate is ISSUED): a no-op unless the list is too short."""
    if isinstance(status_index, bool) or not isinstance(status_index, int) or status_index < 0:
        raise InvalidArgument("a status index is a non-negative integer")
    await store.rebuild(_now(), covering=status_index)


async def refresh(store: StatusStore) -> None:
    """Re-sign list 0 when it was built more than ``REFRESH_AFTER`` ago (long before its ``exp``)."""
    now = _now()
    await store.rebuild(now, older_than=now - REFRESH_AFTER)


def start_refresher(store: StatusStore, every: float = REFRESH_EVERY) -> Callable[[], Awaitable[None]]:
    """A task that calls ``refresh`` every ``every`` seconds; returns the coroutine function that stops it."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await refresh(store)
            except Exception as error:  # the next round tries again; the current list is valid for hours
                log.warning("issuance.status_list_refresh_failed", error=type(error).__name__)

    task = asyncio.get_running_loop().create_task(loop())

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return stop
