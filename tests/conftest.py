"""Session fixtures: one real stack (PostgreSQL, SeaweedFS, every service) on free ports in a temp dir."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from issuance.judicial import seed_record
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from registry.generator import generate
from services.tls import secure_channel
from stack.info import StackInfo
from stack.pki import PlatformCA
from stack.ports import Ports
from stack.supervisor import Stack
from tests.vault_helpers import citizen_token

SEEDED = 400


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("var")


@contextlib.asynccontextmanager
async def own_stack(
    folder: Path, seed_count: int = SEEDED, before_stop: Callable[[Stack], None] = lambda _s: None
) -> AsyncIterator[Stack]:
    """A whole stack in ``folder`` on free ports; ``before_stop`` undoes what a test did to its processes
    (a module whose faults must not reach the session stack's tests has one of its own)."""
    running = Stack(folder, Ports.free(), seed_count=seed_count, fast_unsafe=True, say=lambda _m: None)
    await running.start()
    try:
        yield running
    finally:
        before_stop(running)
        running.stop()


@pytest.fixture(scope="session")
async def stack(var_dir: Path) -> AsyncIterator[Stack]:
    async with own_stack(var_dir) as running:
        yield running


@pytest.fixture(scope="session")
def info(stack: Stack) -> StackInfo:
    return StackInfo.load(stack.info_path)


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def owner(fresh_citizens: Iterator[Citizen]) -> Citizen:
    """A citizen of the module's vault tests."""
    return next(fresh_citizens)


@pytest.fixture(scope="module")
async def token(http: httpx.AsyncClient, info: StackInfo, owner: Citizen) -> str:
    """``owner``'s access token for the vault."""
    return await citizen_token(http, info, owner)


@pytest.fixture(scope="module")
async def vault(stack: Stack) -> AsyncIterator[pb_grpc.VaultStub]:
    """The vault, reached as the platform peer ``edge`` (citizen and agency tokens go in the metadata)."""
    async with channel_as(stack, "vault", "edge") as channel:
        yield pb_grpc.VaultStub(channel)


@pytest.fixture(scope="session")
def citizens() -> list[Citizen]:
    return list(generate(SEEDED))


@pytest.fixture(scope="session")
def _fresh_pool(citizens: list[Citizen]) -> Iterator[Citizen]:
    # The first is the demo citizen; those with a conviction on record are handed out by ``convicted_citizens``.
    return (c for c in citizens[1:] if not seed_record(c).convictions)


@pytest.fixture(scope="session")
def convicted_citizens(citizens: list[Citizen]) -> Iterator[Citizen]:
    """Seeded citizens with a conviction on record (issuance.judicial's seed) and no account yet, each handed out
    once: the tests needing one take it here, never from ``fresh_citizens`` (4 among the 400 seeded)."""
    return (c for c in citizens[1:] if seed_record(c).convictions)


@pytest.fixture
def fresh_citizen(_fresh_pool: Iterator[Citizen]) -> Citizen:
    """A seeded citizen no other test has used (no account yet)."""
    return next(_fresh_pool)


@pytest.fixture(scope="session")
def fresh_citizens(_fresh_pool: Iterator[Citizen]) -> Iterator[Citizen]:
    return _fresh_pool


@pytest.fixture(scope="session")
def ca(stack: Stack) -> PlatformCA:
    return stack.ca


def channel_as(stack: Stack, service: str, caller: str, operator: bool = False) -> grpc.aio.Channel:
    paths = stack.ca.issue(caller, operator=operator)
    address = f"127.0.0.1:{getattr(stack.ports, service)}"
    return secure_channel(address, paths.ca, paths.cert, paths.key, server=service)


@pytest.fixture
async def operator_identity(info: StackInfo) -> AsyncIterator[grpc.aio.Channel]:
    async with info.channel("identity") as channel:
        yield channel


@pytest.fixture
async def operator_registry(info: StackInfo) -> AsyncIterator[grpc.aio.Channel]:
    async with info.channel("registry") as channel:
        yield channel


@pytest.fixture
async def edge_identity(stack: Stack) -> AsyncIterator[grpc.aio.Channel]:
    """identity as the HTTP edge sees it (the login pages' caller)."""
    async with channel_as(stack, "identity", "edge") as channel:
        yield channel


_sources = itertools.count()


@pytest.fixture
def source() -> str:
    return f"test-device-{next(_sources)}"
