"""Deadlines travel: a service gives its downstream calls (gRPC, PostgreSQL) only the time its caller has left.

The downstream call is made slower than the deadline for real: a transaction holds an ACCESS EXCLUSIVE lock on
``registry.citizens``, so every registry lookup waits in PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import pytest

from core import deadline
from db.bounded import BoundedPool
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.waiting import log_events, until

GET_CITIZEN = "/dinhdanh.registry.v1.PopulationRegistry/GetCitizen"
ACTIVATE = "/dinhdanh.identity.v1.Identity/ActivateAccount"


def test_remaining_is_the_nearer_of_the_default_and_the_callers_deadline() -> None:
    assert deadline.remaining(5.0) == 5.0  # no caller deadline
    with deadline.bounded(0.5):
        assert 0 < deadline.remaining(5.0) <= 0.5
        assert deadline.remaining(0.1) == 0.1
        with deadline.bounded(60):  # an inner, longer bound does not extend the caller's
            assert deadline.remaining(5.0) <= 0.5
        with deadline.bounded(0):
            assert deadline.remaining(5.0) == deadline.SPENT
            assert deadline.expired()
    assert deadline.remaining(5.0) == 5.0


@pytest.fixture
async def registry_locked(info: StackInfo) -> AsyncIterator[asyncpg.Connection]:
    """Every registry lookup waits behind this transaction's lock until the test ends."""
    conn = await asyncpg.connect(info.postgres_dsn)
    tx = conn.transaction()
    await tx.start()
    await conn.execute("LOCK TABLE registry.citizens IN ACCESS EXCLUSIVE MODE")
    try:
        yield conn
    finally:
        await tx.rollback()
        await conn.close()


async def _waiting_on_the_lock(info: StackInfo, holder: asyncpg.Connection) -> int:
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        holder_pid = holder.get_server_pid()
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> $1"
                " AND query LIKE '%registry.citizens%'",
                holder_pid,
            )
        )
    finally:
        await conn.close()


async def test_identity_gives_the_registry_only_its_callers_time(
    stack: Stack,
    info: StackInfo,
    operator_identity: grpc.aio.Channel,
    fresh_citizen: Citizen,
    registry_locked: asyncpg.Connection,
) -> None:
    """A 300 ms deadline on identity.ActivateAccount: identity's lookup in the registry carries what is left of
    those 300 ms (not its own 5 s), so the registry gives up at the caller's deadline, on its own, and its
    statement waiting behind the lock is cancelled in PostgreSQL."""
    registry_log, identity_log = stack.var / "logs" / "registry.log", stack.var / "logs" / "identity.log"
    skip_registry = len(registry_log.read_text(errors="replace").splitlines())
    skip_identity = len(identity_log.read_text(errors="replace").splitlines())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await igrpc.IdentityStub(operator_identity).ActivateAccount(
            ipb.ActivateAccountRequest(
                id_number=fresh_citizen.id_number,
                phone=fresh_citizen.phone,
                password="a long enough passphrase 42",
                source="deadline-test",
            ),
            timeout=0.3,
        )
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    seen = await until(
        lambda: log_events(registry_log, skip_registry, "rpc.deadline_exceeded", method=GET_CITIZEN),
        "the registry gave up on the caller's deadline",
    )
    assert all(0 < entry["budget_ms"] <= 300 for entry in seen), seen  # what identity passed on
    mine = await until(
        lambda: log_events(identity_log, skip_identity, "rpc.deadline_exceeded", method=ACTIVATE),
        "identity gave up too",
    )
    assert all(0 < entry["budget_ms"] <= 300 for entry in mine), mine
    assert not log_events(identity_log, skip_identity, "rpc.crashed", method=ACTIVATE)
    await until(
        lambda: _is_zero(_waiting_on_the_lock(info, registry_locked)),
        "the registry's statement no longer waits in PostgreSQL",
    )


async def test_a_statement_gets_only_the_time_the_caller_has_left(info: StackInfo) -> None:
    """``BoundedPool``: a statement inside a 300 ms deadline is cancelled in PostgreSQL at the deadline."""
    raw = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=1)
    assert raw is not None
    pool = BoundedPool(raw)
    try:
        with deadline.bounded(0.3), pytest.raises(TimeoutError):
            await pool.fetchval("SELECT pg_sleep(30) -- deadline test")

        async def sleeping() -> int:
            return int(
                await raw.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                    " AND query = 'SELECT pg_sleep(30) -- deadline test'"
                )
            )

        await until(lambda: _is_zero(sleeping()), "the statement was cancelled in PostgreSQL")
        assert await pool.fetchval("SELECT 1") == 1  # no deadline: the default applies
    finally:
        await raw.close()


async def _is_zero(value: Any) -> bool:
    return bool(await value == 0)
