"""The vault's upkeep: purge documents past their retention, sweep objects whose upload never committed.

- Purge: a soft-deleted document (every version) and a crypto-shredded one stay for the retention period
  (30 days by default), then their objects are deleted from S3 and their rows from PostgreSQL.
- Sweep: an upload names its object in ``vault.pending_objects`` before S3 can complete it, and the
  transaction that commits the document clears the name. A name older than the grace period (one hour by
  default: longer than any upload may take) is an upload that failed or whose process died between S3 and
  PostgreSQL; its object (if S3 completed it) is deleted. A late commit of a swept upload is refused
  (``UploadExpired``), so a document never points to a deleted object.

- Check (``dinhdanh vault upkeep`` only): every document version committed before the check began must have
  its object in S3; one that has not is reported (its download answers ``DATA_LOSS``). Nothing is changed.

Every vault replica runs purge and sweep every few minutes; batches are row-locked with ``SKIP LOCKED``, so replicas
share the work. ``dinhdanh vault upkeep`` runs them once, now.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from core import logs

log = logs.get("vault.upkeep")

BATCH = 500
DEFAULT_GRACE = timedelta(hours=1)

Batches = Callable[[datetime, int], AbstractAsyncContextManager[list[str]]]


class UpkeepBatches(Protocol):
    """Object names to clean, in row-locked batches, and the objects rows refer to (vault.upkeep_store)."""

    def due_for_purge(self, now: datetime, limit: int) -> AbstractAsyncContextManager[list[str]]: ...

    def stale_uploads(self, started_before: datetime, limit: int) -> AbstractAsyncContextManager[list[str]]: ...

    async def clock(self) -> datetime: ...

    async def stored_objects(self, created_before: datetime) -> list[tuple[str, str]]: ...


@dataclass(frozen=True, slots=True)
class Upkept:
    purged: int  # document versions whose object and row were removed
    swept: int  # uploads that never committed, their objects removed


class Janitor:
    def __init__(
        self,
        store: UpkeepBatches,
        remove_objects: Callable[[Sequence[str]], Awaitable[None]],
        grace: timedelta = DEFAULT_GRACE,
        batch: int = BATCH,
    ) -> None:
        self._store = store
        self._remove = remove_objects
        self._grace = grace
        self._batch = batch

    async def run_once(self, now: datetime | None = None) -> Upkept:
        """Purge and sweep everything due at ``now`` (the current time by default)."""
        now = now or datetime.now(UTC)
        purged = await self._drain(self._store.due_for_purge, now)
        swept = await self._drain(self._store.stale_uploads, now - self._grace)
        if purged or swept:
            log.info("vault.upkeep", purged=purged, swept=swept)
        return Upkept(purged, swept)

    async def missing(self, object_names: Callable[[], Awaitable[set[str]]]) -> list[str]:
        """The document versions (``"<id> v<n>"``) whose object is not among ``object_names()``."""
        began = await self._store.clock()  # rows committed later may have objects the listing missed
        present = await object_names()
        return [label for name, label in await self._store.stored_objects(began) if name not in present]

    async def _drain(self, batches: Batches, when: datetime) -> int:
        done = 0
        while True:
            async with batches(when, self._batch) as names:
                if names:
                    await self._remove(names)
            done += len(names)
            if len(names) < self._batch:
                return done

    async def run_forever(self, interval: float) -> None:
        """``run_once`` every ``interval`` seconds (±10 %, so replicas drift apart); errors are logged and
        retried at the next round."""
        while True:
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))  # noqa: S311 - jitter, not a secret
            try:
                await self.run_once()
            except Exception as error:  # the loop must outlive a bad round (S3 or DB down)
                log.warning("vault.upkeep_failed", error_type=type(error).__name__)
