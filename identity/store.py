"""PostgreSQL implementations of the identity storage interfaces (asyncpg)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from identity.accounts import Account, Admit, Attempt
from identity.throttling import ALL, UNFAMILIAR, Admission, Counter, Key

T = TypeVar("T")
DEADLOCK_RETRIES = 3

FAMILIAR_FOR = dt.timedelta(days=180)
_COLUMN_NAMES = (
    "id_number",
    "password_hash",
    "totp_secret",
    "totp_pending",
    "totp_last_step",
    "assurance_level",
    "activated_at",
)
_COLUMNS = ", ".join(_COLUMN_NAMES)
ACCOUNT_COLUMNS = _COLUMNS  # for identity/verifications.py, which writes accounts too
_ACCOUNT_COLUMNS = ", ".join(f"a.{c}" for c in _COLUMN_NAMES)


def _account(row: asyncpg.Record | None) -> Account | None:
    return Account(**dict(row)) if row else None


def _key_columns(keys: list[Key]) -> tuple[list[str], list[str], list[str]]:
    """Counter keys as three parallel arrays, for ``unnest($1::text[], $2::text[], $3::text[])``."""
    return [k.account for k in keys], [k.source for k in keys], [k.factor for k in keys]


def _epoch(seconds: float) -> float | None:
    return seconds or None


async def _retrying(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` again when PostgreSQL broke a deadlock by aborting it (every writer locks counters in
    key order, so this is a safety net, not a path)."""
    for _ in range(DEADLOCK_RETRIES - 1):
        try:
            return await work()
        except asyncpg.exceptions.DeadlockDetectedError:
            continue
    return await work()


# Lock the counters in key order (creating missing ones at zero) and return them; ``inserted`` tells new rows.
_LOCK_COUNTERS = (
    "INSERT INTO identity.throttle (account, source, factor, failures, last_failure)"
    " SELECT a, s, f, 0, to_timestamp(0) FROM unnest($1::text[], $2::text[], $3::text[]) AS k(a, s, f)"
    " ORDER BY a, s, f"
    " ON CONFLICT (account, source, factor) DO UPDATE SET failures = identity.throttle.failures"
    " RETURNING account, source, factor, failures, extract(epoch FROM last_failure)::float8 AS last_failure,"
    " coalesce(extract(epoch FROM pending_until)::float8, 0) AS pending_until, xmax = 0 AS inserted"
)
_WRITE_CHARGE = (
    "UPDATE identity.throttle t SET failures = k.n, last_failure = to_timestamp(k.t), pending_until = to_timestamp(k.p)"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::float8[], $6::float8[]) AS k(a, s, f, n, t, p)"
    " WHERE t.account = k.a AND t.source = k.s AND t.factor = k.f"
)
_DROP = (
    "DELETE FROM identity.throttle t USING unnest($1::text[], $2::text[], $3::text[]) AS k(a, s, f)"
    " WHERE t.account = k.a AND t.source = k.s AND t.factor = k.f"
)
# Lock ``keys`` in key order, then delete those marked ``drop`` and take one failure and the lease off the rest.
_RELEASE = (
    "WITH k AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[]) AS k(a, s, f, drop)),"
    " locked AS (SELECT t.account, t.source, t.factor, k.drop FROM identity.throttle t"
    "            JOIN k ON t.account = k.a AND t.source = k.s AND t.factor = k.f"
    "            ORDER BY t.account, t.source, t.factor FOR UPDATE OF t),"
    " gone AS (DELETE FROM identity.throttle t USING locked l WHERE l.drop"
    "          AND t.account = l.account AND t.source = l.source AND t.factor = l.factor)"
    " UPDATE identity.throttle t SET failures = greatest(t.failures - 1, 0), pending_until = NULL"
    " FROM locked l WHERE NOT l.drop AND t.account = l.account AND t.source = l.source AND t.factor = l.factor"
)


class PostgresAccountStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, id_number: str) -> Account | None:
        return _account(
            await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM identity.accounts WHERE id_number = $1", id_number)
        )

    async def create(self, id_number: str, password_hash: str) -> Account | None:
        row = await self._pool.fetchrow(
            f"INSERT INTO identity.accounts (id_number, password_hash) VALUES ($1, $2)"
            f" ON CONFLICT (id_number) DO NOTHING RETURNING {_COLUMNS}",
            id_number,
            password_hash,
        )
        return _account(row)

    async def set_password_hash(self, id_number: str, password_hash: str) -> None:
        await self._pool.execute(
            "UPDATE identity.accounts SET password_hash = $2, updated_at = now() WHERE id_number = $1",
            id_number,
            password_hash,
        )

    async def set_pending_totp(self, id_number: str, sealed: bytes) -> None:
        await self._pool.execute(
            "UPDATE identity.accounts SET totp_pending = $2, updated_at = now() WHERE id_number = $1",
            id_number,
            sealed,
        )

    async def confirm_totp(self, id_number: str, sealed: bytes, step: int) -> bool:
        status = await self._pool.execute(
            "UPDATE identity.accounts SET totp_secret = totp_pending, totp_pending = NULL,"
            " totp_last_step = $3, updated_at = now()"
            " WHERE id_number = $1 AND totp_pending = $2 AND totp_secret IS NULL",
            id_number,
            sealed,
            step,
        )
        return status == "UPDATE 1"

    async def set_assurance_level(self, id_number: str, level: int, note: str) -> Account | None:
        row = await self._pool.fetchrow(
            "UPDATE identity.accounts SET assurance_level = $2, verification_note = $3, updated_at = now()"
            f" WHERE id_number = $1 RETURNING {_COLUMNS}",
            id_number,
            level,
            note,
        )
        return _account(row)


class PostgresAttemptStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def attempt(self, id_number: str, source: str, keys: list[Key]) -> Attempt:
        row = await self._pool.fetchrow(
            f"SELECT {_ACCOUNT_COLUMNS},"
            " ARRAY(SELECT row(t.account, t.source, t.factor, t.failures, extract(epoch FROM t.last_failure)::float8)"
            "       FROM identity.throttle t"
            "       JOIN unnest($3::text[], $4::text[], $5::text[]) AS k(account, source, factor)"
            "       USING (account, source, factor)) AS counters,"
            " EXISTS (SELECT 1 FROM identity.known_sources k WHERE k.account = $1 AND k.source = $2"
            "         AND k.last_success > now() - $6::interval) AS familiar"
            " FROM (VALUES (1)) AS one LEFT JOIN identity.accounts a ON a.id_number = $1",
            id_number,
            source,
            *_key_columns(keys),
            FAMILIAR_FOR,
        )
        assert row is not None
        account = Account(**{c: row[c] for c in _COLUMN_NAMES}) if row["id_number"] else None
        counters = {Key(a, s, f): Counter(n, at) for a, s, f, n, at in row["counters"]}
        return Attempt(account, counters, row["familiar"])

    async def reserve(self, id_number: str, source: str, keys: list[Key], admit: Admit) -> tuple[Attempt, Admission]:
        """SP 800-63B-4 §3.2.2: the attempt is counted before the verifier runs, under the counters' row locks."""
        return await _retrying(lambda: self._reserve(id_number, source, keys, admit))

    async def _reserve(self, id_number: str, source: str, keys: list[Key], admit: Admit) -> tuple[Attempt, Admission]:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT {_ACCOUNT_COLUMNS},"
                " EXISTS (SELECT 1 FROM identity.known_sources k WHERE k.account = $1 AND k.source = $2"
                "         AND k.last_success > now() - $3::interval) AS familiar"
                " FROM (VALUES (1)) AS one LEFT JOIN identity.accounts a ON a.id_number = $1",
                id_number,
                source,
                FAMILIAR_FOR,
            )
            assert row is not None
            locked = await conn.fetch(_LOCK_COUNTERS, *_key_columns(keys))
            counters = {
                Key(r["account"], r["source"], r["factor"]): Counter(
                    r["failures"], r["last_failure"], r["pending_until"]
                )
                for r in locked
            }
            admission = admit(row["familiar"], counters)
            charged = list(admission.charged)
            if charged:
                await conn.execute(
                    _WRITE_CHARGE,
                    *_key_columns(charged),
                    [admission.charged[k].failures for k in charged],
                    [admission.charged[k].last_failure for k in charged],
                    [_epoch(admission.charged[k].pending_until) for k in charged],
                )
            unused = [
                Key(r["account"], r["source"], r["factor"])
                for r in locked
                if r["inserted"] and Key(r["account"], r["source"], r["factor"]) not in admission.charged
            ]
            if unused:
                await conn.execute(_DROP, *_key_columns(unused))
        account = Account(**{c: row[c] for c in _COLUMN_NAMES}) if row["id_number"] else None
        return Attempt(account, counters, row["familiar"]), admission

    async def totp_accepted(self, id_number: str, source: str, step: int, remember: bool = False) -> bool:
        return await _retrying(lambda: self._totp_accepted(id_number, source, step, remember))

    async def _totp_accepted(self, id_number: str, source: str, step: int, remember: bool) -> bool:
        accepted = await self._pool.fetchval(
            "WITH accepted AS (UPDATE identity.accounts SET totp_last_step = $2"
            "                  WHERE id_number = $1 AND totp_last_step < $2 RETURNING id_number),"
            " locked AS (SELECT account, source, factor FROM identity.throttle"
            "            WHERE account = $1 AND source = ANY($4::text[]) AND EXISTS (SELECT 1 FROM accepted)"
            "            ORDER BY account, source, factor FOR UPDATE),"
            " cleared AS (DELETE FROM identity.throttle t USING locked l"
            "             WHERE t.account = l.account AND t.source = l.source AND t.factor = l.factor),"
            " known AS (INSERT INTO identity.known_sources (account, source, last_success)"
            "           SELECT id_number, $3, now() FROM accepted WHERE $5"
            "           ON CONFLICT (account, source) DO UPDATE SET last_success = now())"
            " SELECT count(*) FROM accepted",
            id_number,
            step,
            source,
            [source, ALL, UNFAMILIAR],
            remember,
        )
        return bool(accepted)


class PostgresThrottleStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def clear(self, keys: list[Key]) -> None:
        await self.release([], keys)

    async def release(self, keys: list[Key], clear: list[Key] | None = None) -> None:
        every = [*keys, *(clear or [])]
        drop = [False] * len(keys) + [True] * len(clear or [])
        await _retrying(lambda: self._pool.execute(_RELEASE, *_key_columns(every), drop))

    async def settle(self, key: Key) -> None:
        await self._pool.execute(
            "UPDATE identity.throttle SET pending_until = NULL WHERE account = $1 AND source = $2 AND factor = $3",
            key.account,
            key.source,
            key.factor,
        )

    async def succeeded(self, account: str, source: str, remember: bool, released: list[Key]) -> None:
        await _retrying(lambda: self._succeeded(account, source, remember, released))

    async def _succeeded(self, account: str, source: str, remember: bool, released: list[Key]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            cleared = await conn.fetch(
                "SELECT account, source, factor FROM identity.throttle WHERE account = $1 AND source = ANY($2::text[])",
                account,
                [source, ALL, UNFAMILIAR],
            )
            keys = [Key(r["account"], r["source"], r["factor"]) for r in cleared]
            drop = [False] * len(released) + [True] * len(keys)
            await conn.execute(_RELEASE, *_key_columns([*released, *keys]), drop)
            if remember:
                await conn.execute(
                    "INSERT INTO identity.known_sources (account, source, last_success) VALUES ($1, $2, now())"
                    " ON CONFLICT (account, source) DO UPDATE SET last_success = now()",
                    account,
                    source,
                )

    async def unlock(self, account: str) -> None:
        await self._pool.execute("DELETE FROM identity.throttle WHERE account = $1", account)
