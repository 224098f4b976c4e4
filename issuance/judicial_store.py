"""The judicial records database (Law on Judicial Records 2009, Art. 2, 15–16: the records the National Judicial
Records Centre keeps on convictions) in PostgreSQL: ``judicial.convictions`` (migration 0017), one row per
conviction keyed by ``(id_number, serial)``; a person with no row has a clean record.

``JudicialRecordStore.record`` is what the judicial-records service reads; ``seed_judicial_records`` writes the
simulated population's records (``issuance.judicial.seed_records``: about 1.4 % of the population, the same for
the same ID numbers), idempotently, with COPY.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date, datetime, timedelta, timezone
from itertools import islice
from typing import Protocol

import asyncpg

from core.errors import InvalidArgument
from db.bounded import BoundedPool
from issuance.judicial import (
    SEED_REFERENCE_DATE,
    Conviction,
    JudicialRecord,
    OfficeBan,
    Sentence,
    SentenceKind,
    offence,
    seed_records,
)
from registry.citizen import Citizen
from registry.idnumber import InvalidIdNumber, parse

COLUMNS = (  # judicial.convictions (migration 0017)
    "id_number", "serial", "penal_code_article", "offence_date", "court", "judgment_number", "judgment_date",
    "sentence_kind", "sentence_months", "probation_months", "fine_vnd", "completion_date", "ban_position_vi",
    "ban_years", "court_expunged_on",
)  # fmt: skip
_LIST = ", ".join(COLUMNS)
SELECT = f"SELECT {_LIST} FROM judicial.convictions WHERE id_number = $1 ORDER BY serial"  # noqa: S608 - fixed names
INSERT = (
    f"INSERT INTO judicial.convictions ({_LIST}) SELECT {_LIST} FROM judicial_staging s"  # noqa: S608 - fixed names
    " WHERE NOT EXISTS (SELECT 1 FROM judicial.convictions c WHERE c.id_number = s.id_number)"
    " ON CONFLICT (id_number, serial) DO NOTHING"
)
BATCH = 20_000  # citizens a COPY at most
VIETNAM = timezone(timedelta(hours=7), "ICT")


def today_in_vietnam(now: datetime | None = None) -> date:
    """The day a record is stated for (served, expunged): Vietnam's calendar day."""
    return (now or datetime.now(VIETNAM)).astimezone(VIETNAM).date()


def check_id_number(raw: str) -> str:
    """A well-formed ID number (12 digits, a province code, a birth year not in the future), else
    INVALID_ARGUMENT: the registry's own rules (``registry.idnumber``)."""
    try:
        return parse(raw).value
    except InvalidIdNumber as error:
        raise InvalidArgument(str(error)) from None


class JudicialRecords:
    """The judicial-records service's one use case: a person's record by ID number (a malformed number is
    INVALID_ARGUMENT; one nobody holds, or without convictions, a clean record)."""

    def __init__(self, store: JudicialRecordStore) -> None:
        self._store = store

    async def record(self, raw_id_number: str) -> JudicialRecord:
        return await self._store.record(check_id_number(raw_id_number))


class JudicialRecordStore(Protocol):
    async def record(self, id_number: str) -> JudicialRecord:
        """The person's record (a clean one, without convictions, when nothing is on file)."""
        ...


def conviction_row(id_number: str, serial: int, c: Conviction) -> tuple[object, ...]:
    s, ban = c.sentence, c.ban
    return (
        id_number, serial, c.offence.article, c.offence_date, c.court, c.judgment_number, c.judgment_date,
        s.kind.value, s.months, s.probation_months, s.fine_vnd, c.completion_date,
        ban.position_vi if ban else None, ban.years if ban else None, c.court_expunged_on,
    )  # fmt: skip


def record_rows(record: JudicialRecord) -> list[tuple[object, ...]]:
    """The rows of a record, serials 1, 2 … in its (judgment) order."""
    return [conviction_row(record.id_number, i + 1, c) for i, c in enumerate(record.convictions)]


def conviction_of(row: asyncpg.Record) -> Conviction:
    ban = OfficeBan(row["ban_position_vi"], row["ban_years"]) if row["ban_position_vi"] is not None else None
    return Conviction(
        offence=offence(row["penal_code_article"]),
        offence_date=row["offence_date"],
        court=row["court"],
        judgment_number=row["judgment_number"],
        judgment_date=row["judgment_date"],
        sentence=Sentence(
            SentenceKind(row["sentence_kind"]), row["sentence_months"], row["probation_months"], row["fine_vnd"]
        ),
        completion_date=row["completion_date"],
        ban=ban,
        court_expunged_on=row["court_expunged_on"],
    )


class PostgresJudicialRecordStore:
    """``JudicialRecordStore`` over ``judicial.convictions`` (the read ends at the caller's deadline)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = BoundedPool(pool)

    async def record(self, id_number: str) -> JudicialRecord:
        rows = await self._pool.fetch(SELECT, id_number)
        return JudicialRecord(id_number, tuple(conviction_of(row) for row in rows))


async def seed_judicial_records(
    dsn_or_pool: str | asyncpg.Pool,
    citizens: Iterable[Citizen],
    *,
    clean: Collection[str] = (),
    seed: int = 2025,
    today: date = SEED_REFERENCE_DATE,
) -> int:
    """Write the seeded records (``issuance.judicial.seed_records``) of ``citizens``, except those whose ID number
    is in ``clean`` (the demo citizen: a clean record whatever the seed draws). Idempotent: a person who already
    has rows keeps them as they are. Returns how many convictions were added. As the schema's owner."""
    pool = await asyncpg.create_pool(dsn_or_pool, min_size=1, max_size=1) if isinstance(dsn_or_pool, str) else None
    target = pool or dsn_or_pool
    assert isinstance(target, asyncpg.Pool)
    wanted = (c for c in citizens if c.id_number not in clean)
    added = 0
    try:
        records = seed_records(wanted, seed, today)
        while batch := list(islice(records, BATCH)):
            added += await _load(target, [row for record in batch for row in record_rows(record)])
    finally:
        if pool is not None:
            await pool.close()
    return added


async def _load(pool: asyncpg.Pool, rows: list[tuple[object, ...]]) -> int:
    """COPY into a staging table, then the people not on file yet (all their rows, or none)."""
    if not rows:
        return 0
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("CREATE TEMP TABLE judicial_staging (LIKE judicial.convictions) ON COMMIT DROP")
        await conn.copy_records_to_table("judicial_staging", records=rows, columns=list(COLUMNS))
        status = await conn.execute(INSERT)
    return int(status.rsplit(" ", 1)[1])
