"""PostgreSQL implementations of the identity storage interfaces (asyncpg)."""

from __future__ import annotations

import datetime as dt

import asyncpg

from identity.accounts import Account, Attempt
from identity.throttling import ALL, UNFAMILIAR, Counter, Key

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
_ACCOUNT_COLUMNS = ", ".join(f"a.{c}" for c in _COLUMN_NAMES)


def _account(row: asyncpg.Record | None) -> Account | None:
    return Account(**dict(row)) if row else None


def _key_columns(keys: list[Key]) -> tuple[list[str], list[str], list[str]]:
    """Counter keys as three parallel arrays, for ``unnest($1::text[], $2::text[], $3::text[])``."""
    return [k.account for k in keys], [k.source for k in keys], [k.factor for k in keys]


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

    async def totp_accepted(self, id_number: str, source: str, step: int) -> bool:
        accepted = await self._pool.fetchval(
            "WITH accepted AS (UPDATE identity.accounts SET totp_last_step = $2"
            "                  WHERE id_number = $1 AND totp_last_step < $2 RETURNING id_number),"
            " cleared AS (DELETE FROM identity.throttle WHERE account = $1 AND source = ANY($4::text[])"
            "             AND EXISTS (SELECT 1 FROM accepted)),"
            " known AS (INSERT INTO identity.known_sources (account, source, last_success)"
            "           SELECT id_number, $3, now() FROM accepted"
            "           ON CONFLICT (account, source) DO UPDATE SET last_success = now())"
            " SELECT count(*) FROM accepted",
            id_number,
            step,
            source,
            [source, ALL, UNFAMILIAR],
        )
        return bool(accepted)


class PostgresThrottleStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def save(self, counters: dict[Key, Counter]) -> None:
        keys = list(counters)
        await self._pool.execute(
            "INSERT INTO identity.throttle (account, source, factor, failures, last_failure)"
            " SELECT a, s, f, n, to_timestamp(t) FROM unnest($1::text[], $2::text[], $3::text[], $4::int[],"
            " $5::float8[]) AS k(a, s, f, n, t)"
            " ON CONFLICT (account, source, factor)"
            " DO UPDATE SET failures = excluded.failures, last_failure = excluded.last_failure",
            *_key_columns(keys),
            [counters[k].failures for k in keys],
            [counters[k].last_failure for k in keys],
        )

    async def clear(self, keys: list[Key]) -> None:
        await self._pool.execute(
            "DELETE FROM identity.throttle t USING unnest($1::text[], $2::text[], $3::text[]) AS k(a, s, f)"
            " WHERE t.account = k.a AND t.source = k.s AND t.factor = k.f",
            *_key_columns(keys),
        )

    async def succeeded(self, account: str, source: str) -> None:
        await self._pool.execute(
            "WITH cleared AS (DELETE FROM identity.throttle WHERE account = $1 AND source = ANY($3::text[]))"
            " INSERT INTO identity.known_sources (account, source, last_success) VALUES ($1, $2, now())"
            " ON CONFLICT (account, source) DO UPDATE SET last_success = now()",
            account,
            source,
            [source, ALL, UNFAMILIAR],
        )

    async def unlock(self, account: str) -> None:
        await self._pool.execute("DELETE FROM identity.throttle WHERE account = $1", account)
