"""PostgreSQL implementation of ``identity.passkeys.PasskeyStore`` (tables of migration 0024)."""

from __future__ import annotations

from typing import Any

import asyncpg

from identity.passkeys import Challenge, Passkey

_COLUMNS = (
    "credential_id, id_number, user_handle, public_key, sign_count, transports, aaguid, backup_eligible,"
    " backup_state, user_verified, name, created_at, last_used_at"
)


def _passkey(row: asyncpg.Record) -> Passkey:
    values = dict(row)
    values["transports"] = tuple(values["transports"] or ())
    return Passkey(**values)


class PostgresPasskeyStore:
    def __init__(self, pool: Any) -> None:
        """``pool``: an asyncpg pool (or db.bounded.BoundedPool: the request's deadline bounds each query)."""
        self._pool = pool

    async def assurance_level(self, id_number: str) -> int | None:
        level = await self._pool.fetchval("SELECT assurance_level FROM identity.accounts WHERE id_number = $1",
                                          id_number)  # fmt: skip
        return int(level) if level is not None else None

    async def passkeys(self, id_number: str) -> list[Passkey]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM identity.passkeys WHERE id_number = $1 ORDER BY created_at, credential_id",  # noqa: S608 - fixed column names
            id_number,
        )
        return [_passkey(r) for r in rows]

    async def passkey(self, credential_id: bytes) -> Passkey | None:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM identity.passkeys WHERE credential_id = $1",  # noqa: S608
                                        credential_id)  # fmt: skip
        return _passkey(row) if row else None

    async def add(self, passkey: Passkey) -> bool:
        inserted = await self._pool.fetchval(
            "INSERT INTO identity.passkeys (credential_id, id_number, user_handle, public_key, sign_count, transports,"
            " aaguid, backup_eligible, backup_state, user_verified, name, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            " ON CONFLICT (credential_id) DO NOTHING RETURNING true",
            passkey.credential_id,
            passkey.id_number,
            passkey.user_handle,
            passkey.public_key,
            passkey.sign_count,
            list(passkey.transports),
            passkey.aaguid,
            passkey.backup_eligible,
            passkey.backup_state,
            passkey.user_verified,
            passkey.name,
            passkey.created_at,
        )
        return bool(inserted)

    async def used(self, credential_id: bytes, sign_count: int, backup_state: bool) -> bool:
        # WebAuthn §6.1.1: the counter only grows (unless the authenticator keeps none: both 0); the condition is
        # in the UPDATE so that concurrent sign-ins are ordered by the row lock, never both accepted with one value
        updated = await self._pool.fetchval(
            "UPDATE identity.passkeys SET sign_count = $2, backup_state = $3, last_used_at = now()"
            " WHERE credential_id = $1 AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0)) RETURNING true",
            credential_id,
            sign_count,
            backup_state,
        )
        return bool(updated)

    async def remove(self, id_number: str, credential_id: bytes) -> bool:
        removed = await self._pool.fetchval(
            "DELETE FROM identity.passkeys WHERE id_number = $1 AND credential_id = $2 RETURNING true",
            id_number,
            credential_id,
        )
        return bool(removed)

    async def put_challenge(self, challenge: Challenge, limit: int) -> bool:
        # expired challenges go with each new one; a source holding ``limit`` live ones gets no more
        inserted = await self._pool.fetchval(
            "WITH gone AS (DELETE FROM identity.passkey_challenges WHERE expires_at < now())"
            " INSERT INTO identity.passkey_challenges (id, purpose, challenge, id_number, user_handle, source,"
            " expires_at) SELECT $1, $2, $3, $4, $5, $6, $7"
            " WHERE (SELECT count(*) FROM identity.passkey_challenges WHERE source = $6 AND expires_at > now()) < $8"
            " RETURNING true",
            challenge.id,
            challenge.purpose,
            challenge.challenge,
            challenge.id_number,
            challenge.user_handle,
            challenge.source,
            challenge.expires_at,
            limit,
        )
        return bool(inserted)

    async def take_challenge(self, handle: str, purpose: str, source: str) -> Challenge | None:
        # DELETE … RETURNING: of two concurrent takes of one challenge, exactly one gets the row
        row = await self._pool.fetchrow(
            "DELETE FROM identity.passkey_challenges WHERE id = $1 RETURNING id::text, purpose, challenge,"
            " rtrim(id_number) AS id_number, user_handle, source, expires_at, expires_at > now() AS fresh",
            handle,
        )
        if row is None or not row["fresh"] or row["purpose"] != purpose or row["source"] != source:
            return None
        values = dict(row)
        values.pop("fresh")
        return Challenge(**values)
