"""``registry.citizens`` in PostgreSQL: lookups, counting, and bulk loading with COPY."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from registry.citizen import Address, Citizen, Sex
from registry.generator import CITIZEN_COLUMNS, citizen_row


def _citizen(row: asyncpg.Record) -> Citizen:
    return Citizen(
        id_number=row["id_number"],
        full_name=row["full_name"],
        date_of_birth=row["date_of_birth"],
        sex=Sex(row["sex"]),
        nationality=row["nationality"],
        ethnicity=row["ethnicity"],
        religion=row["religion"],
        hometown=row["hometown"],
        permanent_address=Address(row["permanent_street"], row["permanent_commune"], row["permanent_province"]),
        current_address=Address(row["current_street"], row["current_commune"], row["current_province"]),
        id_card_issue_date=row["id_card_issue_date"],
        id_card_issue_place=row["id_card_issue_place"],
        phone=row["phone"],
    )


class PopulationStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, id_number: str) -> Citizen | None:
        row = await self._pool.fetchrow("SELECT * FROM registry.citizens WHERE id_number = $1", id_number)
        return _citizen(row) if row else None

    async def count(self) -> int:
        return int(await self._pool.fetchval("SELECT count(*) FROM registry.citizens"))

    async def all(self) -> list[Citizen]:
        """Every citizen, by ID number (seeding what derives from the population, e.g. judicial records)."""
        return [_citizen(row) for row in await self._pool.fetch("SELECT * FROM registry.citizens ORDER BY id_number")]

    async def load(self, citizens: Iterable[Citizen]) -> int:
        """Add citizens not on record yet (COPY into a staging table, then one INSERT); returns how many."""
        rows = [citizen_row(c) for c in citizens]
        columns = ", ".join(CITIZEN_COLUMNS)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("CREATE TEMP TABLE staging (LIKE registry.citizens) ON COMMIT DROP")
            await conn.copy_records_to_table("staging", records=rows, columns=list(CITIZEN_COLUMNS))
            status = await conn.execute(
                f"INSERT INTO registry.citizens ({columns}) SELECT {columns} FROM staging"
                " ON CONFLICT (id_number) DO NOTHING"
            )
        return int(status.rsplit(" ", 1)[1])
