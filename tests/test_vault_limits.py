"""A citizen's open uploads: only a few at once (parallel streams), and a stream that goes idle is cut off with
nothing stored (on a second vault process of the session stack whose idle timeout is short)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from services.tls import secure_channel
from stack.info import StackInfo
from stack.ports import HOST
from stack.process import ManagedProcess
from stack.supervisor import Stack
from tests.conftest import channel_as
from tests.identity_calls import refused
from tests.test_vault_consistency import Paused, pending, settled, started, visible
from tests.vault_helpers import CHUNK, PDF, bearer, s3_objects, upload

OPEN_UPLOADS = 4  # DINHDANH_VAULT_MAX_OPEN_UPLOADS, the default
IDLE = 1.5  # seconds, the second vault's DINHDANH_VAULT_UPLOAD_IDLE_TIMEOUT


async def test_a_citizen_holds_only_a_few_uploads_open_at_once(
    vault: pb_grpc.VaultStub, token: str, info: StackInfo
) -> None:
    streams = [Paused(b"%PDF-1.7\n" + os.urandom(2 * CHUNK), before=CHUNK) for _ in range(OPEN_UPLOADS + 1)]
    calls = [asyncio.ensure_future(vault.Upload(s.requests(), metadata=bearer(token), timeout=60)) for s in streams]

    async def sent_or_ended(stream: Paused, call: asyncio.Future[object]) -> None:
        sent = asyncio.ensure_future(stream.sent.wait())  # a refused stream may never get to send its chunk
        await asyncio.wait([sent, call], return_when=asyncio.FIRST_COMPLETED)
        sent.cancel()

    await asyncio.wait_for(asyncio.gather(*(sent_or_ended(s, c) for s, c in zip(streams, calls, strict=True))), 30)
    done, _ = await asyncio.wait(calls, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1, "exactly one of the parallel uploads is refused at once"
    (refusal,) = done
    error = await refused(refusal, grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert f"{OPEN_UPLOADS} uploads" in (error.details() or "")
    for stream in streams:
        stream.go.set()
    stored = [await call for call in calls if call is not refusal]
    assert len(stored) == OPEN_UPLOADS
    again = await upload(vault, token, [PDF])  # the slots are free again
    assert again.size_bytes == len(PDF)


@pytest.fixture(scope="module")
async def idle_vault(stack: Stack) -> AsyncIterator[pb_grpc.VaultStub]:
    """A second vault process of the session stack (same PostgreSQL, S3 and keys), its idle timeout short."""
    running = stack.services["vault"]
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    env = dict(running.env or os.environ) | {
        "DINHDANH_LISTEN": f"{HOST}:{port}",
        "DINHDANH_VAULT_UPLOAD_IDLE_TIMEOUT": str(IDLE),
        "DINHDANH_VAULT_UPKEEP_INTERVAL": "0",
        "DINHDANH_METRICS_LISTEN": "",  # the stack's vault has the stack's metrics port
    }
    second = ManagedProcess("vault-idle", running.argv, Path(running.log).with_name("vault-idle.log"), env)
    second.start()
    paths = stack.ca.issue("edge")
    try:
        async with secure_channel(f"{HOST}:{port}", paths.ca, paths.cert, paths.key, server="vault") as channel:
            await _serving(channel, second)
            yield pb_grpc.VaultStub(channel)
    finally:
        second.stop()


async def _serving(channel: grpc.aio.Channel, process: ManagedProcess) -> None:
    async with asyncio.timeout(60):
        while True:
            assert process.alive(), process.tail()
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.2)


async def test_an_idle_upload_stream_is_cut_off_and_stores_nothing(
    idle_vault: pb_grpc.VaultStub, token: str, stack: Stack, info: StackInfo
) -> None:
    objects, names = s3_objects(stack), await pending(info)
    async with channel_as(stack, "vault", "edge") as channel:
        documents = await visible(pb_grpc.VaultStub(channel), token)
    stream = Paused(b"%PDF-1.7\n" + os.urandom(2 * CHUNK), before=CHUNK)  # then sends nothing until `go`
    call = idle_vault.Upload(stream.requests(), metadata=bearer(token), timeout=60)
    await asyncio.wait_for(stream.sent.wait(), 30)
    await started(info, names)
    error = await refused(call, grpc.StatusCode.ABORTED)
    assert "sent nothing for" in (error.details() or ""), error.details()
    stream.go.set()
    await settled(info, names)
    assert await pending(info) <= names
    assert s3_objects(stack) == objects
    async with channel_as(stack, "vault", "edge") as channel:
        assert await visible(pb_grpc.VaultStub(channel), token) == documents
