"""The citizen's account security (issue 13 §5): the temporary lock of password sign-in, step-up, TOTP re-enrolment.

- **Lock of password sign-in**: the citizen locks it from the security page ("I lost my phone", "someone knows my
  password"); while locked, ``IdentityService.verify_password`` refuses a right password with ``FailedPrecondition``
  (``PASSWORD_LOCKED``, what the login page shows). Only the citizen lifts it, from a session still signed in and
  after a step-up; or an operator, for a level-2 account only (verified in person: the operator can check the
  person again; a level-1 account has nothing an operator could check, so only its holder may lift it).
- **Step-up** (SP 800-63B-4 §2.2.3, reauthentication; NIST's "re-prove a current authenticator now"): a fresh
  TOTP code, single use and throttled as a sign-in's second factor (``IdentityService.step_up``). A session, or a
  recent ``auth_time``, is never enough: the point is that whoever holds the browser also holds the factor.
- **TOTP re-enrolment**, never removal: the current secret's code (the step-up) starts it; the new secret is
  pending (``identity.accounts.totp_pending``) for ``REPLACEMENT_TTL``; its first code replaces the old secret in one
  statement (one try: a wrong code cancels it, so the new secret is never guessed without a new step-up). TOTP is
  the account's second factor on the password path, and an account whose TOTP was removed would be offered
  enrolment after the password alone (``NextStep.TOTP_ENROLLMENT``): whoever knows the password would then choose
  the second factor. So the last second factor is never removed, only replaced; a citizen who
  lost their phone locks password sign-in and re-enrols in person (an operator).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from core.errors import FailedPrecondition, InvalidArgument, PermissionDenied, Unauthenticated
from identity import totp
from identity.service import Enrollment, IdentityService, valid_code, valid_id, valid_source
from registry.idnumber import mask

REPLACEMENT_TTL = 600  # seconds to prove the new secret's first code
MAX_NOTE = 500


@dataclass(frozen=True, slots=True)
class PasswordLock:
    locked_at: dt.datetime
    locked_by: str  # "citizen"


@dataclass(frozen=True, slots=True)
class SecurityState:
    id_number: str
    assurance_level: int
    totp_enrolled: bool
    lock: PasswordLock | None
    totp_replacing: bool


class SecurityStore(Protocol):
    """What the security use cases store (``PostgresSecurityStore``); ``locked`` is what VerifyPassword reads."""

    async def lock(self, id_number: str) -> PasswordLock | None:
        """The account's lock of password sign-in, None when not locked."""

    async def set_lock(self, id_number: str, locked_by: str) -> PasswordLock:
        """Lock (idempotent: a second lock keeps the first one's time)."""

    async def clear_lock(self, id_number: str) -> bool:
        """Lift the lock; False when there was none."""

    async def begin_replacement(self, id_number: str, sealed: bytes, until: dt.datetime) -> None:
        """Store the pending secret and how long it may be proven."""

    async def replacing(self, id_number: str) -> bool: ...

    async def end_replacement(self, id_number: str) -> None:
        """Cancel a pending re-enrolment (the current secret stays)."""

    async def replace_totp(self, id_number: str, sealed: bytes, step: int) -> bool:
        """Make the pending secret ``sealed`` the current one (if still pending and in time), record ``step``."""


class PostgresSecurityStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def lock(self, id_number: str) -> PasswordLock | None:
        row = await self._pool.fetchrow(
            "SELECT locked_at, locked_by FROM identity.password_locks WHERE id_number = $1", id_number
        )
        return PasswordLock(row["locked_at"], row["locked_by"]) if row else None

    async def locked(self, id_number: str) -> bool:
        return bool(await self._pool.fetchval("SELECT 1 FROM identity.password_locks WHERE id_number = $1", id_number))

    async def set_lock(self, id_number: str, locked_by: str) -> PasswordLock:
        row = await self._pool.fetchrow(
            "WITH added AS (INSERT INTO identity.password_locks (id_number, locked_by) VALUES ($1, $2)"
            "               ON CONFLICT (id_number) DO NOTHING RETURNING locked_at, locked_by)"
            " SELECT locked_at, locked_by FROM added"
            " UNION ALL SELECT locked_at, locked_by FROM identity.password_locks WHERE id_number = $1",
            id_number, locked_by,
        )  # fmt: skip
        assert row is not None
        return PasswordLock(row["locked_at"], row["locked_by"])

    async def clear_lock(self, id_number: str) -> bool:
        status = await self._pool.execute("DELETE FROM identity.password_locks WHERE id_number = $1", id_number)
        return status == "DELETE 1"

    async def begin_replacement(self, id_number: str, sealed: bytes, until: dt.datetime) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE identity.accounts SET totp_pending = $2, updated_at = now() WHERE id_number = $1",
                id_number, sealed,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO identity.totp_replacements (id_number, until) VALUES ($1, $2)"
                " ON CONFLICT (id_number) DO UPDATE SET until = excluded.until",
                id_number, until,
            )  # fmt: skip

    async def replacing(self, id_number: str) -> bool:
        return bool(
            await self._pool.fetchval(
                "SELECT 1 FROM identity.totp_replacements WHERE id_number = $1 AND until > now()", id_number
            )
        )

    async def end_replacement(self, id_number: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            gone = await conn.execute("DELETE FROM identity.totp_replacements WHERE id_number = $1", id_number)
            if gone == "DELETE 1":
                await conn.execute(
                    "UPDATE identity.accounts SET totp_pending = NULL WHERE id_number = $1 AND totp_secret IS NOT NULL",
                    id_number,
                )

    async def replace_totp(self, id_number: str, sealed: bytes, step: int) -> bool:
        status = await self._pool.fetchval(
            "WITH ended AS (DELETE FROM identity.totp_replacements WHERE id_number = $1 AND until > now()"
            "               RETURNING id_number)"
            " UPDATE identity.accounts a SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = $3,"
            " updated_at = now() FROM ended WHERE a.id_number = ended.id_number AND a.totp_pending = $2"
            " AND a.totp_secret IS NOT NULL RETURNING 1",
            id_number, sealed, step,
        )  # fmt: skip
        return bool(status)


class AccountSecurity:
    """The use cases of the AccountSecurity RPCs; the identity service does the step-ups and the audit events."""

    def __init__(self, identity: IdentityService, store: SecurityStore) -> None:
        self._identity = identity
        self._store = store

    async def state(self, id_number: str) -> SecurityState:
        id_number = valid_id(id_number)
        view = await self._identity.get_account(id_number)
        lock = await self._store.lock(id_number)
        replacing = await self._store.replacing(id_number)
        account = view.account
        return SecurityState(id_number, account.assurance_level, account.totp_enrolled, lock, replacing)

    async def lock_password(self, id_number: str, source: str) -> SecurityState:
        """No step-up to lock: locking only ever protects the account (and a thief would gain nothing by it)."""
        id_number, source = valid_id(id_number), valid_source(source)
        await self._identity.get_account(id_number)  # NotFound without an account
        await self._store.set_lock(id_number, "citizen")
        await self._identity.record("security.password_lock", "success", id_number, source)
        return await self.state(id_number)

    async def unlock_password(self, id_number: str, code: str, source: str) -> SecurityState:
        id_number = valid_id(id_number)
        await self._identity.step_up(id_number, code, source, "security.step_up")
        await self._store.clear_lock(id_number)
        await self._identity.record("security.password_unlock", "success", id_number, source, reason="citizen")
        return await self.state(id_number)

    async def operator_unlock_password(self, id_number: str, note: str) -> SecurityState:
        """Level 2 only: the citizen was verified in person, and the operator checks them again before this."""
        id_number = valid_id(id_number)
        if len(note) > MAX_NOTE:
            raise InvalidArgument(f"note longer than {MAX_NOTE} characters")
        state = await self.state(id_number)
        if state.assurance_level < 2:
            await self._identity.record("security.password_unlock", "refused", id_number, None, reason="level_1")
            raise PermissionDenied("only the citizen can lift the lock of a level-1 account (not verified in person)")
        if state.lock is None:
            raise FailedPrecondition("password sign-in is not locked")
        await self._store.clear_lock(id_number)
        await self._identity.record("security.password_unlock", "success", id_number, None, reason="operator")
        return await self.state(id_number)

    async def step_up(self, id_number: str, code: str, source: str, purpose: str) -> int:
        """A step-up for a change made elsewhere (a passkey's removal); the time it was made."""
        if purpose not in ("passkey.remove", "passkey.register"):
            raise InvalidArgument("purpose is passkey.remove or passkey.register")
        await self._identity.step_up(valid_id(id_number), code, source, "security.step_up", purpose=purpose)
        return int(dt.datetime.now(dt.UTC).timestamp())

    async def start_totp_replacement(self, id_number: str, code: str, source: str) -> tuple[Enrollment, int]:
        id_number = valid_id(id_number)
        await self._identity.step_up(id_number, code, source, "security.step_up")
        secret = totp.new_secret()
        until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=REPLACEMENT_TTL)
        await self._store.begin_replacement(id_number, self._identity.seal_totp(secret, id_number), until)
        uri = totp.provisioning_uri(secret, mask(id_number))
        await self._identity.record("security.totp_replace.start", "success", id_number, source)
        return Enrollment(secret, uri, totp.qr_png(uri)), REPLACEMENT_TTL

    async def signed_out_everywhere(self, id_number: str, source: str, sessions: int, refresh_tokens: int) -> None:
        """The edge ended every session of the citizen: recorded (actor: the edge) for their history."""
        id_number, source = valid_id(id_number), valid_source(source)
        await self._identity.record("security.sign_out_everywhere", "success", id_number, source,
                                    sessions=sessions, refresh_tokens=refresh_tokens)  # fmt: skip

    async def confirm_totp_replacement(self, id_number: str, code: str, source: str) -> SecurityState:
        id_number, source, code = valid_id(id_number), valid_source(source), valid_code(code)
        account = (await self._identity.get_account(id_number)).account
        if account.totp_pending is None or not await self._store.replacing(id_number):
            raise FailedPrecondition("no TOTP re-enrolment in progress (or it expired): start again")
        secret = self._identity.open_totp(account.totp_pending, id_number)
        step = totp.matching_step(secret, code, 0)
        if step is None or not await self._store.replace_totp(id_number, account.totp_pending, step):
            await self._store.end_replacement(id_number)  # one try per step-up: never guessed at leisure
            await self._identity.record("security.totp_replace", "failure", id_number, source, reason="wrong_code")
            raise Unauthenticated("wrong code for the new secret; the re-enrolment is cancelled, start again")
        await self._identity.record("security.totp_replace", "success", id_number, source)
        return await self.state(id_number)
