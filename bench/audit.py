"""``dinhdanh bench audit``: transparency-log appends per second through the sequencer, and proofs per second.

Phase 1 (appends), ``seconds`` long: ``writers`` tasks append audit events as the services do
(``PostgresAuditLog``, group commit, actor ``service:bench``, action ``bench.append``) as fast as PostgreSQL
takes them, while the stack's log service sequences them (batches of up to 1,000 events in one transaction,
leaves, nodes, tiles to S3) and publishes a checkpoint at most every second. Figures: events appended per
second, entries sequenced *and covered by a published checkpoint* per second (from the first checkpoint after
the start to the one covering the last event), checkpoints published, the time from the last append until a
checkpoint covered it. Phase 2 (proofs), ``seconds`` long: ``concurrency`` GetInclusionProof calls in flight
over mTLS at random indexes of the latest checkpoint (RFC 9162 §2.1.3 from stored nodes), per second with
p50/p99.

The events appended stay in the log (it is append-only): run it on a development stack.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from typing import Any

import asyncpg

from audit.events import AuditEvent, PostgresAuditLog
from bench.stats import Tally
from protos.audit.v1 import log_pb2 as pb
from protos.audit.v1 import log_pb2_grpc as pb_grpc
from stack.info import StackInfo

TARGET_APPENDS = 1000


async def _latest(conn: asyncpg.Connection) -> tuple[int, float]:
    row = await conn.fetchrow(
        "SELECT size, extract(epoch FROM at) AS at FROM tlog.checkpoints ORDER BY size DESC LIMIT 1"
    )
    return (0, 0.0) if row is None else (int(row["size"]), float(row["at"]))


async def appends(info: StackInfo, seconds: float, writers: int) -> dict[str, Any]:
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=writers, max_size=writers)
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        audit = PostgresAuditLog(pool)
        start_size, _ = await _latest(conn)
        appended = 0
        stop_at = time.monotonic() + seconds
        started = time.time()

        async def writer(number: int) -> None:
            nonlocal appended
            while time.monotonic() < stop_at:
                await asyncio.gather(
                    *(audit.append(AuditEvent("service:bench", "bench.append", "success", detail={"version": i}))
                      for i in range(50))
                )  # fmt: skip
                appended += 50

        await asyncio.gather(*(writer(n) for n in range(writers)))
        ended = time.time()
        total = await conn.fetchval("SELECT count(*) FROM audit.events")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            size, _at = await _latest(conn)
            if size >= total:
                break
            await asyncio.sleep(0.1)
        covered_at = time.time()
        rows = await conn.fetch(
            "SELECT size, extract(epoch FROM at) AS at FROM tlog.checkpoints"
            " WHERE at >= to_timestamp($1) ORDER BY size",
            started,
        )
        checkpoints = [(int(r["size"]), float(r["at"])) for r in rows]
    finally:
        await conn.close()
        await pool.close()
    first_size, first_at = checkpoints[0] if checkpoints else (start_size, started)
    last_size, last_at = checkpoints[-1] if checkpoints else (start_size, started)
    span = max(last_at - first_at, 1e-6)
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(checkpoints)]
    sequenced_rate = round((last_size - first_size) / span, 1) if len(checkpoints) > 1 else 0.0
    return {
        "seconds": round(ended - started, 1),
        "appended": appended,
        "appended_per_second": round(appended / max(ended - started, 1e-6), 1),
        "sequenced_per_second": sequenced_rate,
        "target_per_second": TARGET_APPENDS,
        "checkpoints": len(checkpoints),
        "checkpoint_interval_s": round(sum(gaps) / len(gaps), 2) if gaps else None,
        "covered_after_last_append_s": round(covered_at - ended, 2),
        "tree_size": last_size,
    }


async def proofs(info: StackInfo, seconds: float, concurrency: int) -> dict[str, Any]:
    tally = Tally()
    async with info.channel("log") as channel:
        stub = pb_grpc.LogStub(channel)
        latest = await stub.GetCheckpoint(pb.GetCheckpointRequest(), timeout=10)
        size = latest.size
        stop_at = time.monotonic() + seconds
        begun = time.monotonic()

        async def caller() -> None:
            while time.monotonic() < stop_at:
                index = random.randrange(size)  # noqa: S311 - load, not security
                t0 = time.perf_counter()
                try:
                    await stub.GetInclusionProof(pb.GetInclusionProofRequest(index=index, tree_size=size), timeout=10)
                except Exception as error:  # counted, the run goes on
                    tally.error(type(error).__name__)
                    continue
                tally.latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = time.monotonic() - begun
    return {"tree_size": size, **tally.summary(elapsed)}


async def run(info: StackInfo, seconds: float, writers: int, concurrency: int) -> dict[str, Any]:
    return {
        "appends": await appends(info, seconds, writers),
        "inclusion_proofs": await proofs(info, seconds, concurrency),
    }
