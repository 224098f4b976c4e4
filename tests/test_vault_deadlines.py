"""The vault gives its downstream calls only the time its caller has left (core.deadline): S3 requests
(vault.objects) and the request path's PostgreSQL statements (vault.store, db.bounded).

The downstream call is made slower than the deadline for real, on a stack of this module's own (its faults must
not reach the session stack's tests): SeaweedFS stopped (SIGSTOP: its sockets stay open, nothing answers) for an
S3 request, an ACCESS EXCLUSIVE lock on ``vault.documents`` for a statement. Without the deadline, the vault's
S3 request would wait for urllib3's read timeout (120 s, and its retries) in its worker thread, long after the
caller gave up (the handler is cancelled at the deadline; the thread is not).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import grpc
import httpx
import pytest

from core import deadline
from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from registry.generator import generate
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import channel_as, own_stack
from tests.vault_helpers import bearer, citizen_token, pieces, stream, upload
from tests.waiting import log_events, until
from vault.issuers import IssuerKeys
from vault.objects import ObjectStore, s3_client
from vault.store import VaultStore

pytestmark = pytest.mark.faults

SEEDED = 4
BUDGET = 1.0  # the caller's deadline, seconds: well above the vault's own work before S3, far below 120 s
S3_CUT = "vault.s3_deadline_exceeded"
SLACK_MS = 50  # grpc-timeout is sent rounded (the server's budget may read a few ms over); urllib3's is 120 000


@pytest.fixture(scope="module")
async def deadlined(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with own_stack(tmp_path_factory.mktemp("vault-deadlines"), SEEDED, _continue) as running:
        yield running


@pytest.fixture(scope="module")
async def token(deadlined: Stack) -> str:
    info = StackInfo.load(deadlined.info_path)
    async with httpx.AsyncClient(timeout=30) as http:
        return await citizen_token(http, info, list(generate(SEEDED))[1])


@pytest.fixture
async def vault(deadlined: Stack) -> AsyncIterator[pb_grpc.VaultStub]:
    async with channel_as(deadlined, "vault", "edge") as channel:
        yield pb_grpc.VaultStub(channel)


def _seaweed_pid(stack: Stack) -> int:
    assert stack.s3 is not None
    assert stack.s3.process is not None
    assert stack.s3.process.process is not None
    return stack.s3.process.process.pid


def _continue(stack: Stack) -> None:
    with contextlib.suppress(ProcessLookupError, AssertionError):
        os.kill(_seaweed_pid(stack), signal.SIGCONT)


@contextlib.contextmanager
def s3_stopped(stack: Stack) -> Iterator[None]:
    """SeaweedFS stopped (SIGSTOP): connections are accepted by the kernel, no request is answered."""
    os.kill(_seaweed_pid(stack), signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(_seaweed_pid(stack), signal.SIGCONT)


def _log_lines(stack: Stack) -> int:
    return len(stack.services["vault"].log.read_text(errors="replace").splitlines())


def _cut_within_budget(entries: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    """The S3 requests of ``method`` that were sent with at most the caller's time and cut at its deadline."""
    return [
        e for e in entries
        if e.get("method") == method and e.get("started") and 0 < e["read_timeout_ms"] <= BUDGET * 1000 + SLACK_MS
    ]  # fmt: skip


async def test_a_download_s_s3_request_ends_at_the_callers_deadline(
    deadlined: Stack, vault: pb_grpc.VaultStub, token: str
) -> None:
    """Download with a 1 s deadline while S3 does not answer: the vault's GET got at most that second as its
    read timeout and gave up at the deadline (logged by the worker thread), not after urllib3's 120 s."""
    document = await upload(vault, token, pieces(b"%PDF-1.7\n" + os.urandom(200_000)))
    log, skip = deadlined.services["vault"].log, _log_lines(deadlined)
    with s3_stopped(deadlined):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _reply in vault.Download(pb.DownloadRequest(id=document.id), metadata=bearer(token),
                                               timeout=BUDGET):  # fmt: skip
                pass
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        seen = await until(lambda: _cut_within_budget(log_events(log, skip, S3_CUT), "GET"),
                            "the vault's S3 GET gave up at the caller's deadline")  # fmt: skip
    assert seen, seen
    assert not log_events(log, skip, "rpc.crashed")
    assert not log_events(log, skip, "vault.s3_unavailable")  # a deadline is not an unreachable S3


async def test_an_upload_s_s3_request_ends_at_the_callers_deadline(
    deadlined: Stack, vault: pb_grpc.VaultStub, token: str
) -> None:
    """Upload with a 1 s deadline while S3 does not answer: the PUT, made in the upload executor's thread,
    carried the caller's deadline there and gave up at it."""
    content = b"%PDF-1.7\n" + os.urandom(100_000)
    meta = pb.UploadMetadata(document_type=pb.DOCUMENT_TYPE_OTHER, title="Hạn chót", filename="han.pdf")
    log, skip = deadlined.services["vault"].log, _log_lines(deadlined)
    with s3_stopped(deadlined):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await vault.Upload(stream(pb.UploadRequest, meta, pieces(content)), metadata=bearer(token),
                               timeout=BUDGET)  # fmt: skip
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        seen = await until(lambda: _cut_within_budget(log_events(log, skip, S3_CUT), "PUT"),
                            "the vault's S3 PUT gave up at the caller's deadline")  # fmt: skip
    assert seen, seen
    assert not log_events(log, skip, "rpc.crashed")
    listed = await vault.ListDocuments(pb.ListDocumentsRequest(page_size=100), metadata=bearer(token), timeout=20)
    assert all(d.title != "Hạn chót" for d in listed.documents), "a cut upload must leave no document"


async def test_no_s3_request_starts_once_the_callers_deadline_has_passed(deadlined: Stack) -> None:
    """With the caller's deadline gone, a download or an upload fails at once (``TimeoutError``, which the
    interceptor answers ``DEADLINE_EXCEEDED``) and sends S3 nothing; a ``DELETE`` (cleanup) still runs."""
    info = StackInfo.load(deadlined.info_path)
    access, secret = info.s3_keys()
    objects = ObjectStore(s3_client(info.s3_endpoint.split("://")[-1], access, secret, secure=False))
    stored, refused = str(uuid.uuid4()), str(uuid.uuid4())

    async def content() -> AsyncIterator[bytes]:
        yield b"%PDF-1.7\n" + os.urandom(10_000)

    try:
        await objects.put(stored, content())  # no caller deadline: the configured timeouts
        with deadline.bounded(0):
            with pytest.raises(TimeoutError):
                _ = [piece async for piece in objects.chunks(stored, 4096)]
            with pytest.raises(TimeoutError):
                await objects.put(refused, content())
            assert await objects.delete(stored), "cleanup runs after the deadline"
        assert refused not in await objects.names(), "an upload after the deadline sent S3 nothing"
        assert stored not in await objects.names()
    finally:
        objects.close()


LOCKED = ("vault.documents", "vault.citizen_keys", "oidc.clients")


async def test_the_vault_s_request_path_reads_end_at_the_callers_deadline(deadlined: Stack) -> None:
    """Each read of a request's path (listing, one document, versions, the KEK, an issued document, an issuer's
    keys) waits behind a lock inside a 300 ms deadline: it raises ``TimeoutError`` at the deadline (asyncpg
    cancels it in PostgreSQL), instead of waiting for the lock. Cleanup is not bounded: ``forget_object`` still
    runs to the end once the deadline has passed."""
    info = StackInfo.load(deadlined.info_path)
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=4)
    holder = await asyncpg.connect(info.postgres_dsn)
    assert pool is not None
    store, issuers, owner, some = VaultStore(pool), IssuerKeys(pool), "deadline-test-owner", uuid.uuid4()
    reads: dict[str, Callable[[], Awaitable[object]]] = {
        "documents": lambda: store.documents(owner, None, None, 10),
        "document": lambda: store.document(owner, some),
        "versions": lambda: store.versions(owner, some),
        "wrapped_kek": lambda: store.wrapped_kek(owner),
        "last_kek_version": lambda: store.last_kek_version(owner),
        "issued": lambda: store.issued("deadline-test", "d-1"),
        "issuer": lambda: issuers.issuer("deadline-test"),
    }
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute(f"LOCK TABLE {', '.join(LOCKED)} IN ACCESS EXCLUSIVE MODE")
        try:
            outcomes = {name: await _within_a_deadline(read, 0.3) for name, read in reads.items()}
            assert outcomes == dict.fromkeys(reads, "TimeoutError"), outcomes
        finally:
            await tx.rollback()
        with deadline.bounded(0):  # the deadline has passed: cleanup still runs
            await store.forget_object(str(uuid.uuid4()))
    finally:
        await holder.close()
        await pool.close()


async def _within_a_deadline(read: Callable[[], Awaitable[object]], seconds: float) -> str:
    """How ``read()`` ended inside a deadline of ``seconds``: the name of its error, or "waited for the lock" when
    it was still waiting 5 s later (a liveness bound only)."""

    async def bounded() -> object:
        with deadline.bounded(seconds):
            return await read()

    task = asyncio.create_task(bounded())
    done, _ = await asyncio.wait({task}, timeout=5)
    if not done:
        task.cancel()
        await asyncio.wait({task})
        return "waited for the lock"
    error = task.exception()
    return type(error).__name__ if error else "returned"
