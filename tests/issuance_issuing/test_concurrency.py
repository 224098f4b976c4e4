"""Several issuing workers on one database never issue a dossier twice, and an issue interrupted between the vault
delivery and the commit (the real issuance process killed) is settled by doing it again: one vault document."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from core.keys import purposes
from core.settings import Settings
from issuance import issuing
from issuance.delivery import VaultDeliverer
from issuance.issuer_keys import SigningKey
from issuance.issuing import GrpcRecords, IssuingWorker, PoolBuilder, SigningMaterial, WorkerConfig
from issuance.issuing_store import Claim, PostgresIssuingStore
from registry.citizen import Citizen
from services.registry_client import RegistryCitizens
from services.tls import secure_channel
from stack import issuers
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.issuance_issuing.conftest import approve, dossier_row, issued_row
from tests.waiting import until

WORKERS = 3
DOSSIERS = 8


class Watched(PostgresIssuingStore):
    """The real store, noting what this worker claimed."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.claimed: list[uuid.UUID] = []

    async def claim(self, limit: int, lease_seconds: float) -> list[Claim]:
        claims = await super().claim(limit, lease_seconds)
        self.claimed.extend(c.dossier_id for c in claims)
        return claims


@contextlib.asynccontextmanager
async def a_worker(stack: Stack, info: StackInfo, pool: asyncpg.Pool) -> AsyncIterator[tuple[IssuingWorker, Watched]]:
    """A worker of this test process, as the issuance service would run it (its role, certificate and client)."""
    paths = stack.ca.issue("issuance")
    keys = stack.secrets.keys("issuance")
    cert, chain = issuers.document_certificate(stack.ca, stack.secrets)
    material = SigningMaterial(keys.key(purposes.ISSUANCE_SIGNING), keys.key(purposes.ISSUANCE_DOCUMENT),
                               cert.read_bytes(), chain.read_bytes())  # fmt: skip
    client = stack.secrets.json(issuers.CLIENTS_FILE)["issuance"]  # type: ignore[index]
    registry = secure_channel(info.services["registry"], paths.ca, paths.cert, paths.key, server="registry")
    judicial = secure_channel(info.services["judicial"], paths.ca, paths.cert, paths.key, server="judicial")
    deliverer = VaultDeliverer(issuer=info.oidc_issuer, credentials=issuers.credentials(stack.secrets, "issuance"),
                               vault_address=info.services["vault"], tls_ca=paths.ca, tls_cert=paths.cert,
                               tls_key=paths.key)  # fmt: skip
    builder = PoolBuilder(material, 0)
    settings = Settings(keys_dir=stack.secrets.keys_dir("issuance"), issuer=info.oidc_issuer)
    cover = await issuing._status_cover(pool, settings)
    store = Watched(pool)
    config = WorkerConfig(info.oidc_issuer, client["client_id"], concurrency=4, interval=0.05, lease=120)
    worker = IssuingWorker(store, RegistryCitizens(registry), GrpcRecords(judicial), deliverer, builder, config, cover)
    try:
        yield worker, store
    finally:
        await worker.stop()
        await builder.close()
        await deliverer.close()
        await registry.close()
        await judicial.close()


@pytest.fixture
async def service_pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    """The issuance service's own role (what its worker runs as)."""
    pool = await asyncpg.create_pool(stack._service_dsn("issuance"), min_size=1, max_size=8)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()


async def vault_documents(pool: asyncpg.Pool, certificate_id: str) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT id FROM vault.documents WHERE issuer_document_id = $1", certificate_id)


async def test_parallel_workers_never_issue_one_dossier_twice(
    stack: Stack, info: StackInfo, owner_pool: asyncpg.Pool, service_pool: asyncpg.Pool,
    clean_citizens: Iterator[Citizen],
) -> None:  # fmt: skip
    waiting = [await dossier_row(owner_pool, stack, next(clean_citizens), holder=SigningKey.generate(),
                                 approved=False) for _ in range(DOSSIERS)]  # fmt: skip
    async with contextlib.AsyncExitStack() as workers:
        started = [await workers.enter_async_context(a_worker(stack, info, service_pool)) for _ in range(WORKERS)]
        stopping = asyncio.Event()
        runs = [asyncio.create_task(worker.run(stopping)) for worker, _ in started]
        await asyncio.gather(*(approve(owner_pool, d) for d in waiting))  # all due at once, the service's too
        try:
            for dossier_id in waiting:
                await until(lambda d=dossier_id: issued_row(owner_pool, d), "every dossier ISSUED", timeout=180)
        finally:
            stopping.set()
            await asyncio.gather(*runs)
            for worker, _ in started:
                await worker.drain()
    claimed = [set(store.claimed) for _, store in started]
    for i, mine in enumerate(claimed):
        for theirs in claimed[i + 1 :]:
            assert not mine & theirs, "two workers claimed one dossier"
    assert sum(worker.issued for worker, _ in started) <= DOSSIERS
    for dossier_id in waiting:
        row = await issued_row(owner_pool, dossier_id)
        assert row is not None
        issued = await owner_pool.fetchval("SELECT count(*) FROM issuance.dossier_events WHERE dossier_id = $1"
                                           " AND status = 'ISSUED'", dossier_id)  # fmt: skip
        assert issued == 1
        audited = await owner_pool.fetchval("SELECT count(*) FROM audit.events WHERE action = 'issuance.issue'"
                                            " AND detail->>'dossier_id' = $1", str(dossier_id))  # fmt: skip
        assert audited == 1
        documents = await vault_documents(owner_pool, row["certificate_id"])
        assert [str(d["id"]) for d in documents] == [row["vault_document_id"]]
    indexes = await owner_pool.fetch("SELECT status_index FROM issuance.dossiers WHERE id = ANY($1::uuid[])", waiting)
    assert len({r["status_index"] for r in indexes}) == DOSSIERS, "one status list entry each"


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
    return found


def described(pids: set[int]) -> str:
    out = []
    for pid in pids:
        with contextlib.suppress(OSError):
            cmd = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
            out.append(f"{pid} {alive(pid)} {cmd}")
    return "; ".join(out)


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


async def test_an_issue_killed_after_delivery_is_settled_by_doing_it_again(
    stack: Stack, info: StackInfo, owner_pool: asyncpg.Pool, clean_citizens: Iterator[Citizen]
) -> None:
    process = stack.services["issuance"]
    assert process.env is not None
    process.env["DINHDANH_ISSUANCE_ISSUE_LEASE"] = "4"  # the killed claim is due again 4 s on
    restart = stack._restarter("issuance")
    await restart()
    dossier_id = await dossier_row(owner_pool, stack, next(clean_citizens), holder=SigningKey.generate(),
                                   approved=False)  # fmt: skip
    await approve(owner_pool, dossier_id)  # not due yet: the test holds nothing so far
    await owner_pool.execute("UPDATE issuance.dossiers SET next_issue_at = NULL WHERE id = $1", dossier_id)
    # an uncommitted dossier_events row with the seq the worker's ISSUED row will take: its insert (in the settling
    # transaction, after the delivery) waits on it, while the claim does not (the row is written without the
    # foreign key's lock on the dossier: session_replication_role replica, as the superuser)
    holder = await asyncpg.connect(info.postgres_dsn)
    transaction = holder.transaction()
    await transaction.start()
    await holder.execute("SET LOCAL session_replication_role = replica")
    seq = await holder.fetchval("SELECT count(*) FROM issuance.dossier_events WHERE dossier_id = $1", dossier_id)
    await holder.execute("INSERT INTO issuance.dossier_events (dossier_id, seq, status, at, actor)"
                         " VALUES ($1, $2, 'ISSUED', now(), 'SYSTEM')", dossier_id, seq)  # fmt: skip
    try:
        await owner_pool.execute("UPDATE issuance.dossiers SET next_issue_at = now() WHERE id = $1", dossier_id)

        async def delivered() -> str | None:
            certificate_id = await owner_pool.fetchval("SELECT certificate_id FROM issuance.dossiers WHERE id = $1",
                                                       dossier_id)  # fmt: skip
            return certificate_id if certificate_id and await vault_documents(owner_pool, certificate_id) else None

        certificate_id = await until(delivered, "the certificate delivered into the vault", timeout=180)
        assert await issued_row(owner_pool, dossier_id) is None, "delivered, not yet committed"
        assert process.pid is not None
        builders = children(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        assert process.process is not None
        await asyncio.to_thread(process.process.wait)
    finally:
        await transaction.rollback()
        await holder.close()
    await until(lambda: not any(alive(pid) for pid in builders),
                f"the builder processes gone with their parent: {described(builders)}", timeout=30)  # fmt: skip
    try:
        await restart()
        row = await until(lambda: issued_row(owner_pool, dossier_id), "ISSUED after the restart", timeout=180)
    finally:
        process.env.pop("DINHDANH_ISSUANCE_ISSUE_LEASE", None)
    assert row["certificate_id"] == certificate_id, "the same certificate, done again"
    documents = await vault_documents(owner_pool, certificate_id)
    assert [str(d["id"]) for d in documents] == [row["vault_document_id"]], "exactly one vault document"
    issued = await owner_pool.fetchval("SELECT count(*) FROM issuance.dossier_events WHERE dossier_id = $1"
                                       " AND status = 'ISSUED'", dossier_id)  # fmt: skip
    assert issued == 1
