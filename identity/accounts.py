"""The account aggregate and the narrow storage interface the identity logic needs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from identity.throttling import Admission, Counter, Key

Admit = Callable[[bool, dict[Key, Counter]], Admission]  # (familiar, locked counters) -> verdict and charge


@dataclass(frozen=True, slots=True)
class Account:
    id_number: str
    password_hash: str
    totp_secret: bytes | None  # sealed (see ``core.keys.sealing``)
    totp_pending: bytes | None  # sealed, during enrollment
    totp_last_step: int
    assurance_level: int
    activated_at: dt.datetime

    @property
    def totp_enrolled(self) -> bool:
        return self.totp_secret is not None


class AccountStore(Protocol):
    async def get(self, id_number: str) -> Account | None: ...
    async def create(self, id_number: str, password_hash: str) -> Account | None:
        """None when the account exists already."""

    async def set_password_hash(self, id_number: str, password_hash: str) -> None: ...
    async def set_pending_totp(self, id_number: str, sealed: bytes) -> None: ...
    async def confirm_totp(self, id_number: str, sealed: bytes, step: int) -> bool:
        """Make the pending secret the active one (if still pending); record ``step`` as used."""

    async def set_assurance_level(self, id_number: str, level: int, note: str) -> Account | None: ...


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one authentication attempt needs to know, read in one round trip."""

    account: Account | None
    counters: dict[Key, Counter]
    familiar: bool


class AttemptStore(Protocol):
    async def attempt(self, id_number: str, source: str, keys: list[Key]) -> Attempt:
        """The account and the counters ``keys`` as they are (a read, nothing charged)."""

    async def reserve(self, id_number: str, source: str, keys: list[Key], admit: Admit) -> tuple[Attempt, Admission]:
        """Lock the counters ``keys`` (created at zero when missing), ask ``admit``, and write the charge it
        returns, in one transaction: concurrent attempts are judged one after another, none lost."""

    async def totp_accepted(self, id_number: str, source: str, step: int, remember: bool = False) -> bool:
        """Atomically record ``step`` as used (False on a replay) and, when it was fresh, clear the
        account's failure counters and, if ``remember``, remember ``source`` as familiar."""


class ThrottleStore(Protocol):
    async def clear(self, keys: list[Key]) -> None: ...
    async def release(self, keys: list[Key], clear: list[Key] | None = None) -> None:
        """Take back an attempt's charge on ``keys`` (one failure each, and the lease); delete ``clear``."""

    async def settle(self, key: Key) -> None:
        """A failed attempt keeps its charge; its lease on ``key`` ends."""

    async def succeeded(self, account: str, source: str, remember: bool, released: list[Key]) -> None:
        """A complete sign-in: clear the account's counters for this source and account-wide, take back
        the charge on ``released``, and, if ``remember``, remember the source as familiar."""

    async def unlock(self, account: str) -> None: ...
