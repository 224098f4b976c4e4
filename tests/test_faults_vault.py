"""Fault tests of the vault on a stack of its own: PostgreSQL frozen (SIGSTOP of every process), SeaweedFS killed
(SIGKILL), the vault killed (SIGKILL), each under concurrent uploads and downloads.

Each scenario asserts what a citizen relies on: nothing acknowledged is lost, every listed document downloads
with its SHA-256, no call ends ``INTERNAL``, and the upkeep finds no document whose object is missing. The
faults are short (a freeze of 2 × 4 s, an outage of a few seconds) so that the module stays within a minute or
two on two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from registry.generator import generate
from stack.info import StackInfo
from stack.process import ManagedProcess
from stack.supervisor import Stack
from tests.conftest import channel_as, own_stack
from tests.test_cli import dinhdanh
from tests.vault_helpers import CHUNK, bearer, citizen_token, download_digest, stream

pytestmark = pytest.mark.faults

SEEDED = 12
UPLOADERS = 4
DOWNLOADERS = 2
FREEZE = 4.0  # seconds PostgreSQL stays frozen, twice
DEADLINE = 2.0  # of each upload and download under load: shorter than a freeze, so handlers are cancelled


@pytest.fixture(scope="module")
async def faulty(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """A stack of this module's own: its faults must not reach the session stack's tests."""
    async with own_stack(tmp_path_factory.mktemp("faults"), SEEDED, _thaw) as running:
        yield running


@pytest.fixture(scope="module")
def faulty_info(faulty: Stack) -> StackInfo:
    return StackInfo.load(faulty.info_path)


@pytest.fixture(scope="module")
async def tokens(faulty_info: StackInfo) -> list[str]:
    """Vault tokens of two citizens of the fault stack."""
    async with httpx.AsyncClient(timeout=30) as http:
        return [await citizen_token(http, faulty_info, citizen) for citizen in list(generate(SEEDED))[1:3]]


# The faults.


def _postgres_pids(stack: Stack) -> list[int]:
    """The postmaster and every process it forked (backends, checkpointer, WAL writer...)."""
    assert stack.postgres is not None
    assert stack.postgres.process is not None
    postmaster = stack.postgres.process.pid
    assert postmaster is not None
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(entry.name))
    return [postmaster, *children]


_frozen: list[int] = []


@contextlib.contextmanager
def frozen(stack: Stack) -> Iterator[None]:
    """Every PostgreSQL process stopped (SIGSTOP): connections stay open, nothing answers."""
    assert stack.postgres is not None
    assert stack.postgres.process is not None
    postmaster = stack.postgres.process.pid
    assert postmaster is not None
    os.kill(postmaster, signal.SIGSTOP)  # first: it forks nothing new meanwhile
    _frozen.append(postmaster)
    for pid in _postgres_pids(stack)[1:]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
            _frozen.append(pid)
    try:
        yield
    finally:
        _thaw(stack)


def _thaw(stack: Stack) -> None:
    while _frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(_frozen.pop(), signal.SIGCONT)


def _kill(process: ManagedProcess | None) -> None:
    assert process is not None
    assert process.process is not None
    process.process.send_signal(signal.SIGKILL)
    process.process.wait()


# Load: uploads and downloads that keep going through the fault.


class Load:
    """Concurrent uploads (each acknowledged document noted with its SHA-256) and downloads of acknowledged
    documents (each complete download checked against it); every status code a call ended with is counted."""

    def __init__(self, stack: Stack, tokens: list[str]) -> None:
        self._stack = stack
        self.tokens = tokens
        self.acknowledged: dict[str, tuple[str, bytes]] = {}  # document id → (token, sha256)
        self.codes: Counter[grpc.StatusCode] = Counter()
        self.internal: list[str] = []  # the details of any INTERNAL error
        self.unavailable: set[str] = set()  # the details of UNAVAILABLE errors
        self.wrong: list[str] = []  # downloads whose content did not match
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._random = random.Random(9)

    async def __aenter__(self) -> Load:
        self._channel = channel_as(self._stack, "vault", "edge")
        self._vault = pb_grpc.VaultStub(self._channel)
        self._tasks = [asyncio.create_task(self._uploads(i)) for i in range(UPLOADERS)]
        self._tasks += [asyncio.create_task(self._downloads()) for _ in range(DOWNLOADERS)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        await self._channel.close()

    async def until_acknowledged(self, count: int, timeout: float = 60) -> None:
        async with asyncio.timeout(timeout):
            while len(self.acknowledged) < count:  # noqa: ASYNC110 - counted by other tasks
                await asyncio.sleep(0.05)

    async def _uploads(self, index: int) -> None:
        token = self.tokens[index % len(self.tokens)]
        while not self._stop.is_set():
            size = self._random.choice((64 * 1024, 700 * 1024, 3 * CHUNK // 2))
            content = b"%PDF-1.7\n" + os.urandom(size)
            chunks = [content[i : i + CHUNK] for i in range(0, len(content), CHUNK)]
            meta = pb.UploadMetadata(document_type=pb.DOCUMENT_TYPE_OTHER, title="Tải khi hỏng", filename="h.pdf")
            try:
                document = await self._vault.Upload(stream(pb.UploadRequest, meta, chunks), metadata=bearer(token),
                                                    timeout=DEADLINE)  # fmt: skip
            except grpc.aio.AioRpcError as error:
                await self._failed("upload", error)
                continue
            assert document.sha256 == hashlib.sha256(content).digest()
            self.acknowledged[document.id] = (token, document.sha256)

    async def _failed(self, what: str, error: grpc.aio.AioRpcError) -> None:
        self.codes[error.code()] += 1
        if error.code() == grpc.StatusCode.INTERNAL and not _client_side(error):
            self.internal.append(f"{what}: {error.details()} {error.debug_error_string()}")
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            self.unavailable.add(error.details() or "")
        await asyncio.sleep(0.05)

    async def _downloads(self) -> None:
        while not self._stop.is_set():
            if not self.acknowledged:
                await asyncio.sleep(0.05)
                continue
            document_id = self._random.choice(list(self.acknowledged))
            token, sha256 = self.acknowledged[document_id]
            try:
                _meta, digest, _ = await asyncio.wait_for(download_digest(self._vault, token, document_id), DEADLINE)
            except grpc.aio.AioRpcError as error:
                await self._failed("download", error)
                continue
            except TimeoutError:
                self.codes[grpc.StatusCode.DEADLINE_EXCEEDED] += 1
                continue
            if digest != sha256:
                self.wrong.append(document_id)


def _client_side(error: grpc.aio.AioRpcError) -> bool:
    """grpc's client library reports INTERNAL ("Failed execute_batch ... SendMessageOperation") when the server
    ended an upload (a refusal, a deadline) while the client was still writing chunks: no answer of the vault."""
    return "execute_batch" in error.debug_error_string() and "SendMessageOperation" in error.debug_error_string()


def crashes(stack: Stack) -> list[str]:
    """The vault's log lines of calls that crashed (the interceptor's INTERNAL)."""
    log = stack.services["vault"].log
    return [line for line in log.read_text(errors="replace").splitlines() if '"rpc.crashed"' in line]


# What must hold after every fault.


async def healthy(stack: Stack, timeout: float = 60) -> None:
    """Until the vault answers its health check SERVING (a fresh channel: no reconnect back-off)."""
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(grpc.aio.AioRpcError):
                async with channel_as(stack, "vault", "edge") as channel:
                    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                                            timeout=2)  # fmt: skip
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
            await asyncio.sleep(0.25)


async def health(stack: Stack, service: str = "vault") -> int | None:
    try:
        async with channel_as(stack, service, "edge") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
            return int(reply.status)
    except grpc.aio.AioRpcError:
        return None


async def until_health(stack: Stack, status: int, timeout: float, service: str = "vault") -> None:
    async with asyncio.timeout(timeout):
        while await health(stack, service) != status:  # noqa: ASYNC110 - another process's state
            await asyncio.sleep(0.25)


async def observed(stack: Stack, services: tuple[str, ...], seen: set[tuple[str, int | None]]) -> None:
    """Note every health status ``services`` answer, until cancelled."""
    while True:
        statuses = await asyncio.gather(*(health(stack, service) for service in services))
        seen |= set(zip(services, statuses, strict=True))
        await asyncio.sleep(0.2)


async def listed(vault: pb_grpc.VaultStub, token: str) -> dict[str, bytes]:
    found, page = {}, ""
    while True:
        reply = await vault.ListDocuments(pb.ListDocumentsRequest(page_size=100, page_token=page),
                                          metadata=bearer(token), timeout=20)  # fmt: skip
        found |= {d.id: d.sha256 for d in reply.documents}
        page = reply.next_page_token
        if not page:
            return found


async def nothing_lost(stack: Stack, load: Load) -> None:
    """Every acknowledged document is listed with its SHA-256; every listed one downloads with it; the upkeep,
    sweeping every pending object now, finds no document without its object."""
    assert not load.wrong, f"downloads that did not match their document: {load.wrong}"
    assert not load.internal, f"a fault must never be INTERNAL: {load.codes} {load.internal}"
    assert not crashes(stack), f"the vault answered INTERNAL: {crashes(stack)[:3]}"
    await healthy(stack)
    async with channel_as(stack, "vault", "edge") as channel:
        vault = pb_grpc.VaultStub(channel)
        for token in load.tokens:
            documents = await listed(vault, token)
            mine = {i: sha for i, (t, sha) in load.acknowledged.items() if t == token}
            assert mine.items() <= documents.items(), "an acknowledged upload is missing or changed"
            for document_id, sha256 in documents.items():
                try:
                    _meta, digest, _ = await download_digest(vault, token, document_id)
                except grpc.aio.AioRpcError as error:
                    message = f"listed document {document_id}: {error.code().name} {error.details()}"
                    raise AssertionError(message) from None
                assert digest == sha256, f"listed document {document_id} does not match its SHA-256"
    code, done = await asyncio.to_thread(dinhdanh, stack, "vault", "upkeep", "--grace", "0")
    assert code == 0, done
    assert done["missing"] == 0, done


# The scenarios.


async def test_postgres_frozen_under_load_leaves_no_half_document(faulty: Stack, tokens: list[str]) -> None:
    """Uploads whose deadline expires while PostgreSQL is frozen, some with their commit already sent: once
    PostgreSQL wakes, every row it commits still has its object. Every service says NOT_SERVING while it is
    frozen, and SERVING again by itself afterwards."""
    services, seen = ("vault", "identity", "registry"), set[tuple[str, int | None]]()
    async with Load(faulty, tokens) as load:
        await load.until_acknowledged(8)
        watch = asyncio.create_task(observed(faulty, services, seen))
        for _ in range(2):
            with frozen(faulty):
                await asyncio.sleep(FREEZE)
            await asyncio.sleep(1.5)
        before = len(load.acknowledged)
        await load.until_acknowledged(before + 4)  # the vault works again by itself
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    assert load.codes[grpc.StatusCode.DEADLINE_EXCEEDED] > 0, "the freeze cut calls short"
    for service in services:
        assert (service, health_pb2.HealthCheckResponse.NOT_SERVING) in seen, f"{service}: {seen}"
        await until_health(faulty, health_pb2.HealthCheckResponse.SERVING, 30, service)
    await nothing_lost(faulty, load)


async def test_s3_killed_under_load_is_unavailable_then_recovers(faulty: Stack, tokens: list[str]) -> None:
    """With SeaweedFS killed, calls end UNAVAILABLE (never INTERNAL) and the health check says NOT_SERVING;
    once it is back, SERVING again by itself, and nothing acknowledged is lost."""
    assert faulty.s3 is not None
    async with Load(faulty, tokens) as load:
        await load.until_acknowledged(len(load.acknowledged) + 8)
        _kill(faulty.s3.process)
        await until_health(faulty, health_pb2.HealthCheckResponse.NOT_SERVING, timeout=20)
        await asyncio.sleep(3)
        failed = load.codes[grpc.StatusCode.UNAVAILABLE]
        faulty.s3.start()  # through the launcher: no Python runs in the child, however busy our channels
        await faulty.s3.wait_ready()
        await until_health(faulty, health_pb2.HealthCheckResponse.SERVING, timeout=30)
        await load.until_acknowledged(len(load.acknowledged) + 4)
    assert failed > 0, f"calls during the outage end UNAVAILABLE: {load.codes}"
    assert any("object store (S3) cannot be reached" in details for details in load.unavailable), load.unavailable
    await nothing_lost(faulty, load)


async def test_vault_killed_under_load_loses_nothing(faulty: Stack, tokens: list[str]) -> None:
    """SIGKILL of the vault in the middle of uploads and downloads; once it runs again, everything it
    acknowledged is there, and the objects of the uploads it never finished are swept."""
    vault = faulty.services["vault"]
    async with Load(faulty, tokens) as load:
        await load.until_acknowledged(len(load.acknowledged) + 8)
        _kill(vault)
        await asyncio.sleep(1)
        if not vault.alive():  # a supervisor may have restarted it already
            vault.start()
        await healthy(faulty)
    await nothing_lost(faulty, load)
