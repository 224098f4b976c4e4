"""Throttling through the identity service: waits with the retry time, separation, lock and unlock."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest

from identity import totp
from protos.identity.v1 import identity_pb2 as pb
from registry.citizen import Citizen
from stack.info import StackInfo
from tests.identity_calls import enrolled, password_step, refused, stub, totp_step

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


@pytest.fixture
async def db(info: StackInfo) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(info.postgres_dsn)
    yield conn
    await conn.close()


async def test_a_source_that_keeps_failing_waits_and_is_told_how_long(edge_identity, fresh_citizen, source) -> None:
    home = source + "-home"
    secret = await enrolled(edge_identity, fresh_citizen, home)
    attacker = source + "-attacker"
    for _ in range(5):
        await refused(password_step(edge_identity, fresh_citizen.id_number, attacker, "guess guess 1"), UNAUTHENTICATED)
    error = await refused(password_step(edge_identity, fresh_citizen.id_number, attacker), EXHAUSTED)
    assert "retry in" in (error.details() or "")
    retry_after = dict(error.trailing_metadata() or ())["retry-after"]
    assert int(retry_after) >= 1
    # The citizen's own device is not slowed down by the attacker's failures.
    step = await password_step(edge_identity, fresh_citizen.id_number, home)
    result = await totp_step(edge_identity, step.ticket, totp.code_at(secret, time.time() + totp.STEP), home)
    assert result.id_number == fresh_citizen.id_number


async def test_totp_failures_have_their_own_counter(edge_identity, fresh_citizen: Citizen, source: str) -> None:
    await enrolled(edge_identity, fresh_citizen, source)
    step = await password_step(edge_identity, fresh_citizen.id_number, source)
    for _ in range(5):
        await refused(totp_step(edge_identity, step.ticket, "000000", source), UNAUTHENTICATED)
    await refused(totp_step(edge_identity, step.ticket, "000000", source), EXHAUSTED)
    again = await password_step(edge_identity, fresh_citizen.id_number, source)  # passwords still flow
    assert again.next_step == pb.NEXT_STEP_TOTP


async def test_hundred_failures_lock_until_an_operator_unlocks(
    edge_identity, operator_identity, fresh_citizen: Citizen, source: str, db: asyncpg.Connection
) -> None:
    await enrolled(edge_identity, fresh_citizen, source)
    await db.execute(
        "INSERT INTO identity.throttle VALUES ($1, '*all', '*', 100, now())", fresh_citizen.id_number
    )  # as if 100 consecutive failures had happened
    error = await refused(password_step(edge_identity, fresh_citizen.id_number, source), EXHAUSTED)
    assert "locked" in (error.details() or "")
    account = await stub(operator_identity).GetAccount(pb.GetAccountRequest(id_number=fresh_citizen.id_number))
    assert account.locked
    unlocked = await stub(operator_identity).UnlockAccount(pb.UnlockAccountRequest(id_number=fresh_citizen.id_number))
    assert not unlocked.locked
    assert (await password_step(edge_identity, fresh_citizen.id_number, source)).ticket


async def test_strangers_are_paused_but_the_usual_device_gets_in(
    edge_identity, fresh_citizen: Citizen, source: str, db: asyncpg.Connection
) -> None:
    await enrolled(edge_identity, fresh_citizen, source)
    await db.execute(
        "INSERT INTO identity.throttle VALUES ($1, '*unfamiliar', '*', 50, now()), ($1, '*all', '*', 50, now())",
        fresh_citizen.id_number,
    )
    error = await refused(password_step(edge_identity, fresh_citizen.id_number, source + "-new-phone"), EXHAUSTED)
    assert "new devices" in (error.details() or "")
    assert (await password_step(edge_identity, fresh_citizen.id_number, source)).ticket


async def test_successful_sign_in_clears_the_account_counters(
    edge_identity, fresh_citizen: Citizen, source: str, db: asyncpg.Connection
) -> None:
    secret = await enrolled(edge_identity, fresh_citizen, source)
    for _ in range(3):
        await refused(password_step(edge_identity, fresh_citizen.id_number, source, "wrong wrong 123"), UNAUTHENTICATED)
    step = await password_step(edge_identity, fresh_citizen.id_number, source)
    await totp_step(edge_identity, step.ticket, totp.code_at(secret, time.time() + totp.STEP), source)
    left = await db.fetchval("SELECT count(*) FROM identity.throttle WHERE account = $1", fresh_citizen.id_number)
    assert left == 0
    await stub(edge_identity).GetAccount(pb.GetAccountRequest(id_number=fresh_citizen.id_number))
