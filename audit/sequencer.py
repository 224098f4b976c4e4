"""The log's single writer: audit events → leaves in PostgreSQL → tiles in S3 → signed checkpoints.

One sequencer writes at a time, whatever the number of log replicas: each holds a dedicated connection and
takes the session advisory lock ``LOCK_KEY``; the others wait for it (a dead holder's connection ends and
frees it). The holder loads the tree's right edge (audit/compact.py) from ``tlog`` and loops:

1. **Batch** (one REPEATABLE READ transaction, so one snapshot): the snapshot's ``xmin``; up to ``batch``
   events of ``audit.events`` not in ``tlog.entries`` whose transaction id is at or above
   ``tlog.state.scan_xid``, in id order; their leaves (audit/leaves.py) and leaf hashes (RFC 9162 §2.1.1)
   at the next indexes, the full subtrees they complete (``tlog.nodes``), and the new size. A scan that
   found fewer than ``batch`` events raises ``scan_xid`` to ``xmin``: every transaction below it had ended
   before the snapshot, so all of its events were seen (events commit out of id order; none is skipped).
   All or nothing: a batch interrupted by anything leaves no trace and is taken again.
2. **Tiles**: every C2SP tlog-tiles tile and entry bundle that changed since ``tlog.state.tiles_size``, read
   back from ``tlog`` and written to S3, then ``tiles_size`` = size. Tiles are therefore always in S3 before
   a checkpoint names their size; full tiles are written once (a retry writes the same bytes).
3. **Checkpoint**, at most every ``interval`` seconds and only when the tree grew: the C2SP tlog-checkpoint
   of the tiled size, signed (signed note, Ed25519), stored in ``tlog.checkpoints``, then written to S3 as
   ``checkpoint``.

A lost connection (PostgreSQL restarting) drops the lock and the in-memory edge; the loop reconnects and
starts over from what is committed. An S3 failure leaves ``tiles_size`` behind: sequencing goes on, and the
tiles (then the checkpoint) catch up once S3 answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import checkpoint as notes
from audit import merkle, tiles
from audit.compact import CompactRange
from audit.leaves import LeafBuilder, SourceEvent
from core import logs
from core.keys.signing import Signer as KeySigner
from core.keys.signing import private_key

log = logs.get("audit.sequencer")

LOCK_KEY = 0x746C6F67  # "tlog": the session advisory lock of the single writer
CHECKPOINT = "checkpoint"
VKEY = "vkey"  # the verifier key (signed-note "Verifiers"), published beside the checkpoint

UNSEQUENCED = """
    SELECT e.id, e.at, e.actor, e.action, e.outcome, e.subject, e.detail FROM audit.events e
    WHERE e.xid >= $1::text::xid8 AND NOT EXISTS (SELECT 1 FROM tlog.entries t WHERE t.event_id = e.id)
    ORDER BY e.id LIMIT $2
"""

# What is not yet in a signed checkpoint (issue 12 item 3, the log's lag): the events not sequenced (all at or above
# the scan floor, by the floor's rule) and the leaves at or past the newest checkpoint's size; their oldest time.
BACKLOG = """
    WITH floor AS (SELECT scan_xid FROM tlog.state),
         signed AS (SELECT coalesce(max(size), 0) AS size FROM tlog.checkpoints),
         pending AS (
             SELECT e.at FROM audit.events e, floor
             WHERE e.xid >= floor.scan_xid AND NOT EXISTS (SELECT 1 FROM tlog.entries t WHERE t.event_id = e.id)
         ),
         unsigned AS (
             SELECT e.at FROM tlog.entries t JOIN audit.events e ON e.id = t.event_id, signed WHERE t.idx >= signed.size
         )
    SELECT (SELECT count(*) FROM pending) AS unsequenced,
           coalesce(extract(epoch FROM clock_timestamp() - (
               SELECT min(at) FROM (SELECT at FROM pending UNION ALL SELECT at FROM unsigned) AS behind
           )), 0)::float8 AS lag
"""


async def backlog(pool: Any) -> tuple[int, float]:
    """(events not yet sequenced, seconds the oldest event not yet in a signed checkpoint has waited; 0: none)."""
    row = await pool.fetchrow(BACKLOG)
    return int(row["unsequenced"]), max(0.0, float(row["lag"]))


class TileStoreError(Exception):
    """The tile store (S3) did not take a write; the message says why, without credentials."""


class TileStore(Protocol):
    async def put(self, name: str, data: bytes, content_type: str) -> None:
        """Store ``data`` at ``name`` (overwriting); ``TileStoreError`` if it could not."""


@dataclass(frozen=True, slots=True)
class Signer:
    """The log's key: its signed-note name (the origin) and Ed25519 key (from the LOG_SIGNING seed)."""

    origin: str
    private_key: Ed25519PrivateKey

    @classmethod
    def from_seed(cls, origin: str, seed: bytes) -> Signer:
        return cls(origin, Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_signer(cls, origin: str, signer: KeySigner) -> Signer:
        """The key of ``KeyProvider.signer(LOG_SIGNING)``: the seed's key, or an Ed25519 key in a PKCS#11 token
        (``core.keys.pkcs11``), which then signs each checkpoint without leaving it."""
        if signer.alg != "EdDSA":
            raise ValueError(f"the log's checkpoint key is Ed25519 (c2sp.org/signed-note), not {signer.alg}")
        key = private_key(signer)
        assert isinstance(key, Ed25519PrivateKey)
        return cls(origin, key)

    @property
    def vkey(self) -> str:
        return notes.vkey(self.origin, self.private_key.public_key())

    def sign(self, size: int, root_hash: bytes) -> str:
        body = notes.format_checkpoint(notes.Checkpoint(self.origin, size, root_hash))
        return notes.sign(body, self.origin, self.private_key)


async def node_from_db(conn: Any, level: int, index: int) -> bytes:
    if level == 0:
        value = await conn.fetchval("SELECT leaf_hash FROM tlog.entries WHERE idx = $1", index)
    else:
        value = await conn.fetchval("SELECT hash FROM tlog.nodes WHERE level = $1 AND idx = $2", level, index)
    if value is None:
        raise RuntimeError(f"tlog holds no node {level}/{index}: the log's tables are damaged")
    return bytes(value)


async def tile_content(conn: Any, path: tiles.TilePath) -> bytes:
    """The bytes of one tile or bundle, read from ``tlog`` (the nodes of its range)."""
    first, last = path.index * tiles.WIDTH, path.index * tiles.WIDTH + path.width
    if path.level is None:
        rows = await conn.fetch("SELECT leaf FROM tlog.entries WHERE idx >= $1 AND idx < $2 ORDER BY idx", first, last)
        data = tiles.bundle_bytes([bytes(r[0]) for r in rows]) if len(rows) == path.width else b""
    elif path.level == 0:
        rows = await conn.fetch(
            "SELECT leaf_hash FROM tlog.entries WHERE idx >= $1 AND idx < $2 ORDER BY idx", first, last
        )
        data = tiles.tile_bytes([bytes(r[0]) for r in rows]) if len(rows) == path.width else b""
    else:
        rows = await conn.fetch(
            "SELECT hash FROM tlog.nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
            tiles.HEIGHT * path.level,
            first,
            last,
        )
        data = tiles.tile_bytes([bytes(r[0]) for r in rows]) if len(rows) == path.width else b""
    if not data:
        raise RuntimeError(f"tlog lacks the content of {path}: the log's tables are damaged")
    return data


class Sequencer:
    def __init__(
        self,
        dsn: str,
        store: TileStore,
        builder: LeafBuilder,
        signer: Signer,
        batch: int = 1000,
        interval: float = 1.0,
        idle: float = 0.05,
    ) -> None:
        self._dsn = dsn
        self._store = store
        self._builder = builder
        self._signer = signer
        self._batch = batch
        self._interval = interval
        self._idle = idle
        self._tree: CompactRange | None = None
        self._tiles_size = 0
        self._scan_xid = 0
        self._last_checkpoint = (-1, 0.0)  # (size, monotonic time)
        self._published = -1  # size of the checkpoint last written to S3
        self._floor_raised = 0.0
        self.leader = asyncio.Event()

    async def run_forever(self, stopping: asyncio.Event | None = None) -> None:
        stopping = stopping or asyncio.Event()
        while not stopping.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=5)
                await self._lead(conn, stopping)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
                log.warning("log.sequencer_interrupted", error_type=type(error).__name__, error=str(error)[:200])
            except Exception:  # a bug or damaged tables: said loudly, tried again (nothing half-written stays)
                log.exception("log.sequencer_failed")
            finally:
                self.leader.clear()
                self._tree = None
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            if not stopping.is_set():
                await _sleep_or(stopping, 0.5)

    async def _lead(self, conn: asyncpg.Connection, stopping: asyncio.Event) -> None:
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
            if await _sleep_or(stopping, 1.0):
                return
        await self._load(conn)
        self.leader.set()
        log.info("log.sequencer_leading", size=self._tree.size if self._tree else 0)
        await self._store.put(VKEY, (self._signer.vkey + "\n").encode(), "text/plain; charset=utf-8")
        while not stopping.is_set():
            count = await self.step(conn)
            if count < self._batch:
                await _sleep_or(stopping, self._idle)

    async def _load(self, conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow("SELECT size, tiles_size, scan_xid::text AS scan_xid FROM tlog.state")
        if row is None:
            raise RuntimeError("tlog.state has no row: apply the migrations")
        size = int(row["size"])
        edge = [await node_from_db(conn, level, index) for level, index in CompactRange.edge_nodes(size)]
        self._tree = CompactRange(size, edge)
        self._tiles_size = int(row["tiles_size"])
        self._scan_xid = int(row["scan_xid"])
        last = await conn.fetchval("SELECT max(size) FROM tlog.checkpoints")
        self._last_checkpoint = (-1 if last is None else int(last), 0.0)
        self._published = -1

    async def step(self, conn: asyncpg.Connection) -> int:
        """One batch, then tiles and a checkpoint when due; the number of events sequenced."""
        count = await self._sequence(conn)
        if self._tree is not None and self._tiles_size < self._tree.size:
            try:
                await self._write_tiles(conn, self._tiles_size, self._tree.size)
            except TileStoreError as error:  # S3 down or refusing: sequencing goes on, tiles catch up later
                behind = self._tree.size - self._tiles_size
                log.warning("log.tiles_unwritten", error=str(error), behind=behind)
                return count
        await self._checkpoint(conn)
        return count

    async def _sequence(self, conn: asyncpg.Connection) -> int:
        assert self._tree is not None
        tree = self._tree.copy()  # the transaction may fail: the edge changes only once it committed
        async with conn.transaction(isolation="repeatable_read"):
            xmin = int(await conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text"))
            rows = await conn.fetch(UNSEQUENCED, str(self._scan_xid), self._batch)
            if not rows and (xmin == self._scan_xid or time.monotonic() - self._floor_raised < 1.0):
                return 0  # nothing new; the floor is raised at most once a second while idle
            first = tree.size
            idx, event_ids, subjects, leaves, hashes = [], [], [], [], []
            levels, node_idx, node_hashes = [], [], []
            for row in rows:
                event = SourceEvent(row["id"], row["at"], row["actor"], row["action"], row["outcome"], row["subject"],
                                    _detail(row["detail"]))  # fmt: skip
                leaf = self._builder.leaf(event)
                leaf_hash = merkle.leaf_hash(leaf)
                idx.append(tree.size)
                event_ids.append(event.event_id)
                subjects.append(event.subject)
                leaves.append(leaf)
                hashes.append(leaf_hash)
                for level, index, value in tree.append(leaf_hash):
                    levels.append(level)
                    node_idx.append(index)
                    node_hashes.append(value)
            if rows:
                await conn.execute(
                    "INSERT INTO tlog.entries (idx, event_id, subject, leaf, leaf_hash)"
                    " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bytea[], $5::bytea[])",
                    idx, event_ids, subjects, leaves, hashes,
                )  # fmt: skip
            if levels:
                await conn.execute(
                    "INSERT INTO tlog.nodes (level, idx, hash)"
                    " SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])",
                    levels, node_idx, node_hashes,
                )  # fmt: skip
            scan_xid = xmin if len(rows) < self._batch else self._scan_xid
            await conn.execute("UPDATE tlog.state SET size = $1, scan_xid = $2::text::xid8", tree.size, str(scan_xid))
        if scan_xid != self._scan_xid:
            self._floor_raised = time.monotonic()
        self._tree, self._scan_xid = tree, scan_xid
        if rows:
            log.info("log.batch", first=first, count=len(rows))
        return len(rows)

    async def _write_tiles(self, conn: asyncpg.Connection, old: int, new: int) -> None:
        changed = tiles.changed(old, new)
        for start in range(0, len(changed), 16):
            part = changed[start : start + 16]
            contents = [await tile_content(conn, path) for path in part]
            await asyncio.gather(
                *(
                    self._store.put(str(p), data, "application/octet-stream")
                    for p, data in zip(part, contents, strict=True)
                )
            )
        await conn.execute("UPDATE tlog.state SET tiles_size = $1", new)
        self._tiles_size = new

    async def _checkpoint(self, conn: asyncpg.Connection) -> None:
        assert self._tree is not None
        size = self._tiles_size
        last_size, last_at = self._last_checkpoint
        now = time.monotonic()
        if size != self._tree.size:
            return
        if size > last_size and now - last_at >= self._interval:
            note = await asyncio.to_thread(self._signer.sign, size, self._tree.root())  # an HSM call blocks
            await conn.execute(
                "INSERT INTO tlog.checkpoints (size, root_hash, note) VALUES ($1, $2, $3)"
                " ON CONFLICT (size) DO NOTHING",
                size, self._tree.root(), note,
            )  # fmt: skip
            self._last_checkpoint = (size, now)
            log.debug("log.checkpoint", size=size)
        if self._last_checkpoint[0] > self._published:
            note = await conn.fetchval("SELECT note FROM tlog.checkpoints ORDER BY size DESC LIMIT 1")
            try:
                await self._store.put(CHECKPOINT, note.encode(), "text/plain; charset=utf-8")
            except TileStoreError as error:  # S3: published on a later round
                log.warning("log.checkpoint_unpublished", error=str(error))
                return
            self._published = self._last_checkpoint[0]


def _detail(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        raw = json.loads(raw)
    return raw if isinstance(raw, dict) else {}


async def _sleep_or(stopping: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stopping`` is set first; whether it was."""
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        return False
    return True
