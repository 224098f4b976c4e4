"""PostgreSQL side of the vault's upkeep: batches of rows to clean, locked while their objects go.

Each batch is one transaction: the rows are selected ``FOR UPDATE SKIP LOCKED`` (vault replicas running the
upkeep at once take disjoint batches and never wait on each other), handed to the caller, and deleted only
when the caller's block ends normally, that is after the objects are gone from S3. Should the block raise,
the transaction rolls back and the rows stay for the next run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg


class UpkeepStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def stale_uploads(self, started_before: datetime, limit: int) -> AsyncIterator[list[str]]:
        """Object names of uploads begun before ``started_before`` that never committed their row. A pending name
        that a document row references anyway is never handed out (its object stays), only forgotten."""
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                """SELECT p.object_name,
                          EXISTS (SELECT 1 FROM vault.documents d WHERE d.object_name = p.object_name) AS referenced
                   FROM vault.pending_objects p WHERE p.started_at < $1
                   ORDER BY p.started_at LIMIT $2 FOR UPDATE OF p SKIP LOCKED""",
                started_before,
                limit,
            )
            yield [row["object_name"] for row in rows if not row["referenced"]]
            await connection.execute(
                "DELETE FROM vault.pending_objects WHERE object_name = ANY($1::text[])",
                [row["object_name"] for row in rows],
            )

    async def clock(self) -> datetime:
        """PostgreSQL's current time (the clock of ``created_at``)."""
        return await self._pool.fetchval("SELECT clock_timestamp()")  # type: ignore[no-any-return]

    async def stored_objects(self, created_before: datetime) -> list[tuple[str, str]]:
        """(object name, "document id vN") of every document version committed before ``created_before`` whose
        object must exist: not due for purge (the purge deletes the object before the row)."""
        rows = await self._pool.fetch(
            """SELECT object_name, logical_id, version FROM vault.documents
               WHERE created_at < $1 AND (purge_after IS NULL OR purge_after > now())""",
            created_before,
        )
        return [(row["object_name"], f"{row['logical_id']} v{row['version']}") for row in rows]

    @asynccontextmanager
    async def due_for_purge(self, now: datetime, limit: int) -> AsyncIterator[list[str]]:
        """Object names of document versions (soft-deleted or shredded) whose retention ended by ``now``;
        their rows go with them."""
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                """SELECT id, object_name FROM vault.documents WHERE purge_after <= $1
                   ORDER BY purge_after LIMIT $2 FOR UPDATE SKIP LOCKED""",
                now,
                limit,
            )
            yield [row["object_name"] for row in rows]
            await connection.execute(
                "DELETE FROM vault.documents WHERE id = ANY($1::uuid[])", [row["id"] for row in rows]
            )
