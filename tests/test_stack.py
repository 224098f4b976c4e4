"""The embedded stack: stack.json, real PostgreSQL and S3, restarts, and clear start-up errors."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from db.migrate import current_head
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from stack.info import StackInfo
from stack.ports import Ports
from stack.postgres import StackError
from stack.process import Backoff
from stack.seaweed import SeaweedS3
from stack.supervisor import Stack
from tests.waiting import until

KEYS = {"services", "tls", "postgres_dsn", "s3_endpoint", "demo_citizen"}


def test_stack_json_says_where_everything_is(stack: Stack) -> None:
    data = json.loads(stack.info_path.read_text())
    assert set(data) >= KEYS
    assert set(data["services"]) == {
        "registry",
        "identity",
        "vault",
        "consent",
        "log",
        "judicial",
        "issuance",
        "health",
    }
    assert all(Path(p).exists() for p in data["tls"].values())
    assert set(data["demo_citizen"]) == {"id_number", "password", "totp_secret"}
    assert oct(stack.info_path.stat().st_mode & 0o777) == "0o600"


async def test_postgres_is_real_and_migrated(info: StackInfo) -> None:
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        assert (await conn.fetchval("SHOW server_version")).startswith("18")
        assert await conn.fetchval("SELECT version_num FROM alembic_version") == current_head()
        assert await conn.fetchval("SELECT count(*) FROM registry.citizens") == 400
    finally:
        await conn.close()


def test_s3_is_real_and_needs_the_generated_keys(stack: Stack, info: StackInfo) -> None:
    assert stack.s3 is not None
    client = stack.s3.client()
    client.put_object("vault", "probe/object", io.BytesIO(b"ciphertext only"), 15)
    assert client.get_object("vault", "probe/object").read() == b"ciphertext only"
    stranger = SeaweedS3(stack.s3.folder, stack.ports, "nobody", "wrong-secret-key").client()
    with pytest.raises(Exception, match=r"(?i)access|denied|signature|invalid"):
        stranger.get_object("vault", "probe/object").read()


async def test_a_taken_port_is_a_clear_message(tmp_path: Path) -> None:
    ports = Ports.free()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports.identity))
        busy.listen()
        with pytest.raises(StackError, match=rf"ports already in use: identity {ports.identity}"):
            await Stack(tmp_path / "var", ports, say=lambda _m: None).start()


async def test_a_var_from_another_version_is_a_clear_message(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    (var / "LAYOUT").write_text("0")
    with pytest.raises(StackError, match="written by another version"):
        await Stack(var, Ports.free(), say=lambda _m: None).start()


async def test_a_second_up_on_the_same_var_is_refused(stack: Stack) -> None:
    with pytest.raises(StackError, match="another `dinhdanh up` is running"):
        await Stack(stack.var, Ports.free(), say=lambda _m: None).start()


async def test_data_survives_a_restart(tmp_path: Path) -> None:
    var = tmp_path / "var"
    first = Stack(var, Ports.free(), seed_count=50, fast_unsafe=True, say=lambda _m: None)
    info = await first.start()
    first.stop()
    assert not any(p.alive() for p in (first.postgres.process, first.s3.process) if p)  # type: ignore[union-attr]
    second = Stack(var, Ports.free(), seed_count=50, fast_unsafe=True, say=lambda _m: None)
    try:
        again = await second.start()
        assert again.demo_citizen == info.demo_citizen
        conn = await asyncpg.connect(again.postgres_dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM identity.accounts") == 1
        finally:
            await conn.close()
    finally:
        second.stop()


def _said(messages: list[str], *words: str) -> bool:
    return any(all(word in message for word in words) for message in messages)


async def _answers(info: StackInfo, service: str) -> bool:
    try:
        async with info.channel(service) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        return reply.status == health_pb2.HealthCheckResponse.SERVING
    except Exception:
        return False


async def test_a_crashed_process_is_restarted_and_said(tmp_path: Path) -> None:
    """Issue 9 (one crash stops everything): SIGKILL a service, then SeaweedFS, then PostgreSQL under a
    running supervisor; each death is said at once, each process is started again and answers."""
    said: list[str] = []
    stack = Stack(tmp_path / "var", Ports.free(), seed_count=50, fast_unsafe=True, say=said.append)
    info = await stack.start()
    stop = asyncio.Event()
    supervisor = asyncio.create_task(stack.supervise(stop))
    try:
        old = stack.services["identity"].pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        await until(lambda: _said(said, "identity", "died"), "the death of identity said", timeout=90.0)
        await until(lambda: _said(said, "identity", "answers again"), "identity restarted", timeout=90.0)
        assert stack.services["identity"].pid != old
        assert _said(said, "identity", "restarting in")
        async with info.channel("identity") as channel:
            account = await igrpc.IdentityStub(channel).GetAccount(
                ipb.GetAccountRequest(id_number=info.demo_citizen["id_number"]), timeout=10
            )
        assert account.totp_enrolled
        assert not supervisor.done()  # the stack runs on: nothing was torn down

        assert stack.s3 is not None
        assert stack.s3.process is not None
        os.kill(stack.s3.process.pid or 0, signal.SIGKILL)
        await until(lambda: _said(said, "SeaweedFS", "died"), "the death of SeaweedFS said", timeout=90.0)
        await until(lambda: _said(said, "SeaweedFS", "answers again"), "SeaweedFS restarted", timeout=90.0)
        client = info.s3_client()
        assert await asyncio.to_thread(client.bucket_exists, "vault")

        assert stack.postgres is not None
        assert stack.postgres.process is not None
        os.kill(stack.postgres.process.pid or 0, signal.SIGKILL)
        await until(lambda: _said(said, "PostgreSQL", "died"), "the death of PostgreSQL said", timeout=90.0)
        await until(lambda: _said(said, "PostgreSQL", "answers again"), "PostgreSQL restarted", timeout=90.0)
        conn = await asyncpg.connect(info.postgres_dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM identity.accounts") == 1
        finally:
            await conn.close()
        for name in info.services:  # their health follows PostgreSQL: SERVING again by themselves
            await until(lambda name=name: _answers(info, name), f"{name} serving again", timeout=90.0, every=0.2)
    finally:
        stop.set()
        await supervisor
        stack.stop()
    assert not any(p.alive() for p in (stack.postgres.process, stack.s3.process) if p)


def _child(parent: int, command: str) -> int:
    """The pid of ``parent``'s child whose command line contains ``command``."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    for pid in children:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        if command in argv:
            return int(pid)
    raise AssertionError(f"no child of {parent} runs {command}")


def _wait(condition: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"never happened: {what}"
        time.sleep(0.2)


def test_a_taken_fixed_port_is_refused_with_advice_that_works(tmp_path: Path) -> None:
    """Issue 9 (papercut): `dinhdanh up` where a fixed port is taken refuses with the list and advises a
    command; the failed start leaves nothing that changes the next one; the advised command comes up."""
    var = tmp_path / "var"  # `dinhdanh up` run from tmp_path, as a newcomer runs it from the checkout
    cli = [sys.executable, "-m", "cli.main"]
    held = socket.socket()
    try:
        try:
            held.bind(("127.0.0.1", Ports().identity))
            held.listen()
        except OSError:
            pass  # someone holds it already: the refusal is the same
        refused = subprocess.run([*cli, "up"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert refused.returncode == 1
        assert f"ports already in use: identity {Ports().identity}" in refused.stderr
        advice = re.search(r"`(dinhdanh up[^`]*)`", refused.stderr)
        assert advice, refused.stderr
        assert not (var / "ports.json").exists()
        argv = shlex.split(advice.group(1))
        assert argv[:2] == ["dinhdanh", "up"]
        errors = tmp_path / "up.stderr"
        with errors.open("w") as stderr, subprocess.Popen(
            [*cli, *argv[1:], "--seed-count", "50", "--json"], stdout=subprocess.PIPE, stderr=stderr, text=True,
            cwd=tmp_path,
        ) as process:  # fmt: skip
            try:
                assert process.stdout is not None
                line = process.stdout.readline()  # the one JSON object, printed once everything answers
                assert line, errors.read_text()
                data = json.loads(line)
                assert "services" in data, data
                assert f"127.0.0.1:{Ports().identity}" not in data["services"].values()
                assert json.loads((var / "ports.json").read_text())["identity"] != Ports().identity
                vault = _child(process.pid, "services vault")  # `up` supervises: a crash is said, not fatal
                os.kill(vault, signal.SIGKILL)
                _wait(lambda: "vault restarted" in errors.read_text(), "up restarted the vault")
                assert '"event": "vault died (killed by SIGKILL); restarting in' in errors.read_text()
                assert process.poll() is None
            finally:
                process.send_signal(signal.SIGINT)  # Ctrl-C
                process.wait(60)
        assert process.returncode == 0, errors.read_text()
    finally:
        held.close()


def test_restarts_back_off_and_calm_down() -> None:
    """Restart delays double from 0.5 s up to 30 s while restarts fail; a process that stayed up a minute
    starts again at 0.5 s."""
    backoff = Backoff()
    backoff.died(now=0.0)
    assert [backoff.next_delay() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    backoff.started(now=100.0)
    backoff.died(now=120.0)  # died again 20 s after its start: still backing off
    assert backoff.next_delay() == 30
    backoff.started(now=200.0)
    backoff.died(now=260.0)  # up for a minute: calm again
    assert backoff.next_delay() == 0.5
