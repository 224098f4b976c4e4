"""The record of in-person verifications (issue 13 §3; migration 0023): what an operator checked when raising an
account to assurance level 2, kept as the ``evidence`` the OpenID Provider returns in ``verified_claims``
(OpenID Connect for Identity Assurance 1.0 §5; OpenID Identity Assurance Schema Definition 1.0 §5.1.1 evidence
type ``document`` with its ``check_details`` and ``document_details``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from identity.accounts import Account

# Schema Definition §5.1.1.1 check methods: the physical card examined in person, and the person compared with
# its photo in person (what the older drafts called method "pipp", physical in-person proofing).
IN_PERSON_CHECKS = ("vpip", "pvp")
DOCUMENT_TYPES = ("idcard", "passport")  # idcard: the chip citizen identity card (CCCD / thẻ căn cước)


@dataclass(frozen=True, slots=True)
class InPerson:
    """One in-person verification as recorded."""

    txn: uuid.UUID
    id_number: str
    verifier: str | None  # the operator's certificate name (None for verifications older than the record)
    place: str
    check_methods: tuple[str, ...]
    document_type: str
    document_number: str
    document_issuer: str
    document_issued: dt.date | None
    verified_at: dt.datetime


class VerificationStore(Protocol):
    """What ``IdentityService`` needs to record and read in-person verifications."""

    async def verify_in_person(self, record: InPerson) -> Account | None:
        """Raise the account to level 2 and append ``record``, atomically (None when there is no such account)."""

    async def latest(self, id_number: str) -> InPerson | None:
        """The newest in-person verification of the account, if any."""


_COLUMNS = (
    "txn, id_number, verifier, place, check_methods, document_type, document_number, document_issuer,"
    " document_issued, verified_at"
)


class PostgresVerificationStore:
    def __init__(self, pool: asyncpg.Pool, account_columns: str) -> None:
        """``account_columns``: the ``identity.accounts`` columns an ``Account`` is made of (identity/store.py)."""
        self._pool = pool
        self._account_columns = account_columns

    async def verify_in_person(self, record: InPerson) -> Account | None:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE identity.accounts SET assurance_level = 2, verification_note = $2, updated_at = now()"  # noqa: S608
                f" WHERE id_number = $1 RETURNING {self._account_columns}",
                record.id_number,
                record.place,
            )
            if row is None:
                return None
            await conn.execute(
                f"INSERT INTO identity.verifications ({_COLUMNS}, assurance_level)"  # noqa: S608 - a column list
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 2)",
                record.txn, record.id_number, record.verifier, record.place, list(record.check_methods),
                record.document_type, record.document_number, record.document_issuer, record.document_issued,
                record.verified_at,
            )  # fmt: skip
        return Account(**dict(row))

    async def latest(self, id_number: str) -> InPerson | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM identity.verifications"  # noqa: S608 - a column list
            " WHERE id_number = $1 ORDER BY verified_at DESC LIMIT 1",
            id_number,
        )
        if row is None:
            return None
        return InPerson(**{**dict(row), "check_methods": tuple(row["check_methods"])})
