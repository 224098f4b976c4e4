"""Reading the transparency log in PostgreSQL (``tlog``, migration 0014) for its gRPC service.

Proofs (RFC 9162 §2.1.3-§2.1.4) are computed by audit/merkle.py over the stored full-subtree hashes: which
nodes a proof needs depends only on the index and sizes, so a first pass records them, one query fetches
them, and the second pass builds the proof. Stored nodes never change, so they are cached (bounded).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from audit import merkle

CACHE_NODES = 200_000
LATEST_TTL = 0.2  # seconds a read of the latest checkpoint is reused
_ZERO = bytes(merkle.HASH_SIZE)


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root_hash: bytes
    note: str


@dataclass(frozen=True, slots=True)
class StoredEntry:
    index: int
    leaf: bytes
    leaf_hash: bytes

    @property
    def fields(self) -> dict[str, Any]:
        value = json.loads(self.leaf)
        return value if isinstance(value, dict) else {}


def _needed(build: Callable[[merkle.NodeSource], object]) -> set[tuple[int, int]]:
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return _ZERO

    build(record)
    return wanted


class LogReader:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._latest: StoredCheckpoint | None = None
        self._latest_at = 0.0

    async def latest(self, fresh: bool = False) -> StoredCheckpoint | None:
        """The latest checkpoint; unless ``fresh``, a read of the last ``LATEST_TTL`` seconds is reused."""
        now = time.monotonic()
        if not fresh and self._latest is not None and now - self._latest_at < LATEST_TTL:
            return self._latest
        row = await self._pool.fetchrow("SELECT size, root_hash, note FROM tlog.checkpoints ORDER BY size DESC LIMIT 1")
        found = None if row is None else StoredCheckpoint(int(row["size"]), bytes(row["root_hash"]), row["note"])
        if found is not None:
            self._latest, self._latest_at = found, now
        return found

    async def _nodes(self, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        found: dict[tuple[int, int], bytes] = {}
        missing: list[tuple[int, int]] = []
        for key in keys:
            cached = self._cache.get(key)
            if cached is None:
                missing.append(key)
            else:
                found[key] = cached
        if missing:
            leaves = [index for level, index in missing if level == 0]
            inner = [(level, index) for level, index in missing if level > 0]
            rows = await self._pool.fetch(
                "SELECT 0::smallint AS level, idx, leaf_hash AS hash FROM tlog.entries WHERE idx = ANY($1::bigint[])"
                " UNION ALL SELECT n.level, n.idx, n.hash FROM tlog.nodes n"
                " JOIN unnest($2::smallint[], $3::bigint[]) AS k(level, idx) ON n.level = k.level AND n.idx = k.idx",
                leaves,
                [level for level, _ in inner],
                [index for _, index in inner],
            )
            for row in rows:
                key = (int(row["level"]), int(row["idx"]))
                found[key] = bytes(row["hash"])
                self._cache[key] = found[key]
            while len(self._cache) > CACHE_NODES:
                self._cache.popitem(last=False)
        return found

    async def _with_nodes(self, build: Callable[[merkle.NodeSource], Any]) -> Any:
        nodes = await self._nodes(_needed(build))

        def node(level: int, index: int) -> bytes:
            value = nodes.get((level, index))
            if value is None:
                raise merkle.ProofError(f"node {level}/{index} is not in the log")
            return value

        return build(node)

    async def inclusion(self, index: int, size: int) -> tuple[bytes, list[bytes]]:
        """The leaf hash at ``index`` and its audit path in the tree of ``size``."""
        return await self._with_nodes(lambda node: (node(0, index), merkle.inclusion_proof(index, size, node)))

    async def inclusions(self, indexes: list[int], size: int) -> dict[int, list[bytes]]:
        """Audit paths of several leaves in the tree of ``size``, with one query for all of their nodes."""
        return await self._with_nodes(lambda node: {i: merkle.inclusion_proof(i, size, node) for i in indexes})

    async def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        return await self._with_nodes(lambda node: merkle.consistency_proof(old_size, new_size, node))

    async def entries_of(self, subject: str, below: int, limit: int) -> list[StoredEntry]:
        """The subject's entries with an index below ``below``, newest first."""
        rows = await self._pool.fetch(
            "SELECT idx, leaf, leaf_hash FROM tlog.entries WHERE subject = $1 AND idx < $2 ORDER BY idx DESC LIMIT $3",
            subject,
            below,
            limit,
        )
        return [StoredEntry(int(r["idx"]), bytes(r["leaf"]), bytes(r["leaf_hash"])) for r in rows]

    async def pending(self, subject: str, size: int) -> int:
        """The subject's events not yet in the checkpoint of ``size``: sequenced after it, or not yet sequenced."""
        return int(
            await self._pool.fetchval(
                "SELECT (SELECT count(*) FROM tlog.entries WHERE subject = $1 AND idx >= $2)"
                " + (SELECT count(*) FROM audit.events e WHERE e.subject = $1"
                "    AND NOT EXISTS (SELECT 1 FROM tlog.entries t WHERE t.event_id = e.id))",
                subject,
                size,
            )
        )

    async def client_names(self, client_ids: Iterable[str]) -> dict[str, str]:
        ids = sorted(set(client_ids))
        if not ids:
            return {}
        rows = await self._pool.fetch("SELECT client_id, name FROM oidc.clients WHERE client_id = ANY($1)", ids)
        return {r["client_id"]: r["name"] for r in rows}
