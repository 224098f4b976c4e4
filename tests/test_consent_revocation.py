"""Revocation and pause take effect at once (issue 10 item 4): the agency's very next fetch after the citizen's
Revoke (or Pause) RPC returned is refused — the vault keeps no cache of a consent's status, each fetch reads it
under the row lock of its charge. The delays are printed (figures, not timed asserts)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.agency_fetch_helpers import (
    Consents,
    DemoAgency,
    SignedIn,
    denied,
    download_shared,
    register_agency,
    sign_in_citizen,
    terms,
)
from tests.conftest import channel_as
from tests.vault_helpers import PDF, upload

ROUNDS = 5


@pytest.fixture(scope="module")
def agency(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> DemoAgency:
    folder: Path = tmp_path_factory.mktemp("revocation-agency")
    return register_agency(stack, "Cơ quan thử thu hồi", folder)


@pytest.fixture(scope="module")
async def consents(stack: Stack) -> AsyncIterator[Consents]:
    async with channel_as(stack, "consent", "edge") as channel:
        yield Consents(channel)


@pytest.fixture(scope="module")
async def citizen(http: httpx.AsyncClient, info: StackInfo, fresh_citizens: Iterator[Citizen]) -> SignedIn:
    return await sign_in_citizen(http, info, next(fresh_citizens))


@pytest.fixture(scope="module")
async def document_id(vault: vgrpc.VaultStub, citizen: SignedIn) -> str:
    return (await upload(vault, citizen.token, [PDF], vpb.DOCUMENT_TYPE_DIPLOMA, "Bằng", "bang.pdf")).id


@pytest.fixture
async def channel(agency: DemoAgency, info: StackInfo) -> AsyncIterator[grpc.aio.Channel]:
    async with agency.vault(info) as opened:
        yield opened


@pytest.mark.parametrize("action", ["Revoke", "Pause"])
async def test_the_next_fetch_after_the_rpc_is_refused(
    consents: Consents, citizen: SignedIn, agency: DemoAgency, document_id: str, channel: grpc.aio.Channel,
    info: StackInfo, action: str,
) -> None:  # fmt: skip
    delays = []
    for _ in range(ROUNDS):
        consent_id = await consents.grant(citizen, agency, terms((document_id,), max_fetches=100, per_day=100))
        token = await agency.token(info, consent_id)
        assert (await download_shared(channel, token, document_id)).code == grpc.StatusCode.OK
        clicked = time.perf_counter()
        await consents.change(citizen, action, consent_id)
        returned = time.perf_counter()
        fetched = await download_shared(channel, token, document_id)  # the very next fetch: no retry, no wait
        refused = time.perf_counter()
        denied(fetched, "NOT_ACTIVE")
        delays.append(((returned - clicked) * 1000, (refused - returned) * 1000, (refused - clicked) * 1000))
    for rpc_ms, next_ms, total_ms in delays:
        print(f"{action}: RPC {rpc_ms:.1f} ms, next fetch refused {next_ms:.1f} ms after it returned "
              f"({total_ms:.1f} ms from the call)")  # fmt: skip


async def test_no_fetch_started_after_the_revocation_passes(
    consents: Consents, citizen: SignedIn, agency: DemoAgency, document_id: str, channel: grpc.aio.Channel,
    info: StackInfo,
) -> None:  # fmt: skip
    """Fetches run back to back in 4 loops while the citizen revokes: every fetch started after Revoke returned
    is refused; the ones in flight at that moment may still have been charged before it (then they are served)."""
    consent_id = await consents.grant(citizen, agency, terms((document_id,), max_fetches=1000, per_day=100))
    token = await agency.token(info, consent_id)
    outcomes: list[tuple[float, grpc.StatusCode]] = []
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            fetched = await download_shared(channel, token, document_id)
            outcomes.append((started, fetched.code))
            if fetched.code != grpc.StatusCode.OK:
                denied(fetched, "NOT_ACTIVE")
            await asyncio.sleep(0.05)  # the consent allows at most 100 a day: stay well under it before Revoke

    loops = [asyncio.create_task(loop()) for _ in range(4)]
    await asyncio.sleep(0.5)
    await consents.change(citizen, "Revoke", consent_id)
    returned = time.perf_counter()
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*loops)
    after = [code for started, code in outcomes if started >= returned]
    before = [code for started, code in outcomes if started < returned]
    assert after, "fetches were made after the revocation"
    assert all(code == grpc.StatusCode.PERMISSION_DENIED for code in after), after
    assert grpc.StatusCode.OK in before
    print(f"revocation under load: {before.count(grpc.StatusCode.OK)} fetches served before Revoke returned, "
          f"{len(after)} started after it, all refused")  # fmt: skip
