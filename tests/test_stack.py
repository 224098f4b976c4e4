"""The embedded stack: stack.json, real PostgreSQL and S3, restarts, and clear start-up errors."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import asyncpg
import pytest

from db.migrate import current_head
from stack.info import StackInfo
from stack.ports import Ports
from stack.postgres import StackError
from stack.seaweed import SeaweedS3
from stack.supervisor import Stack

KEYS = {"services", "tls", "postgres_dsn", "s3_endpoint", "demo_citizen"}


def test_stack_json_says_where_everything_is(stack: Stack) -> None:
    data = json.loads(stack.info_path.read_text())
    assert set(data) >= KEYS
    assert set(data["services"]) == {"registry", "identity", "vault"}
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
