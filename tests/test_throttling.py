"""Throttling through the identity service: waits with the retry time, separation, lock and unlock."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest

from identity import totp
from protos.identity.v1 import identity_pb2 as pb
from registry.citizen import Citizen
from stack.info import StackInfo
from tests.identity_calls import activate, enrolled, password_step, refused, stub, totp_step

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED


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


# -- concurrency: every attempt is accounted for (issue 9, item 2) ---------------------------------------------
#
# Invariant: of N concurrent wrong passwords, each one either ran a hash and answered UNAUTHENTICATED, or ran no
# hash and answered RESOURCE_EXHAUSTED; every counter the attempt is charged to (this source on this account, this
# source on any account, the account, the strangers' pool) holds exactly the number that ran a hash (no lost
# update); and that number is no more than the schedule admits in the time the burst took.

CONCURRENT = 200
_hosts = itertools.count(1)


async def _counter(db: asyncpg.Connection, account: str, source: str, factor: str) -> int:
    found = await db.fetchval(
        "SELECT failures FROM identity.throttle WHERE account = $1 AND source = $2 AND factor = $3",
        account,
        source,
        factor,
    )
    return found or 0


def _admitted_at_most(free: int, seconds: float) -> int:
    """Failures a schedule with ``free`` free failures and waits 1 s, 2 s, 4 s … admits within ``seconds``."""
    extra, waited, wait = 0, 0.0, 1.0
    while waited + wait <= seconds + 1:
        extra, waited, wait = extra + 1, waited + wait, wait * 2
    return free + extra + 1


async def _burst(calls: list, failed: grpc.StatusCode = UNAUTHENTICATED) -> tuple[list[grpc.aio.AioRpcError], float]:
    started = time.monotonic()
    results = await asyncio.gather(*calls, return_exceptions=True)
    elapsed = time.monotonic() - started
    errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(errors) == len(results), [r for r in results if not isinstance(r, grpc.aio.AioRpcError)][:3]
    assert {e.code() for e in errors} <= {failed, EXHAUSTED}, {(e.code(), e.details()) for e in errors}
    return errors, elapsed


async def test_200_concurrent_wrong_passwords_from_one_source_are_all_accounted_for(
    edge_identity, fresh_citizen: Citizen, source: str, db: asyncpg.Connection
) -> None:
    await activate(edge_identity, fresh_citizen, source + "-home")
    account = fresh_citizen.id_number
    errors, elapsed = await _burst(
        [password_step(edge_identity, account, source, "wrong guess 123") for _ in range(CONCURRENT)]
    )
    ran = sum(e.code() == UNAUTHENTICATED for e in errors)
    throttled = sum(e.code() == EXHAUSTED for e in errors)
    assert ran + throttled == CONCURRENT
    assert await _counter(db, account, source, "password") == ran
    assert await _counter(db, "*", source, "password") == ran
    assert await _counter(db, account, "*all", "*") == ran
    assert await _counter(db, account, "*unfamiliar", "*") == ran
    assert 1 <= ran <= _admitted_at_most(5, elapsed), (ran, elapsed)
    assert throttled > CONCURRENT // 2
    refusals = [e for e in errors if e.code() == EXHAUSTED]
    assert all(int(dict(e.trailing_metadata() or ())["retry-after"]) >= 1 for e in refusals)
    assert any("being checked" in (e.details() or "") for e in refusals)  # one check at a time per source


async def test_200_concurrent_wrong_passwords_from_200_sources_are_all_counted_on_the_account(
    edge_identity, fresh_citizen: Citizen, source: str, db: asyncpg.Connection
) -> None:
    await activate(edge_identity, fresh_citizen, source + "-home")
    account = fresh_citizen.id_number
    errors, elapsed = await _burst(
        [password_step(edge_identity, account, f"{source}-bot-{i}", "wrong guess 123") for i in range(CONCURRENT)]
    )
    ran = sum(e.code() == UNAUTHENTICATED for e in errors)
    assert await _counter(db, account, "*all", "*") == ran
    assert await _counter(db, account, "*unfamiliar", "*") == ran
    assert 1 <= ran <= _admitted_at_most(10, elapsed), (ran, elapsed)
    assert CONCURRENT - ran > CONCURRENT // 2


async def test_concurrent_wrong_totp_codes_are_all_accounted_for(
    edge_identity, fresh_citizen: Citizen, source: str, db: asyncpg.Connection
) -> None:
    await enrolled(edge_identity, fresh_citizen, source)
    step = await password_step(edge_identity, fresh_citizen.id_number, source)
    errors, elapsed = await _burst([totp_step(edge_identity, step.ticket, "000000", source) for _ in range(50)])
    ran = sum(e.code() == UNAUTHENTICATED for e in errors)
    assert await _counter(db, fresh_citizen.id_number, source, "totp") == ran
    assert await _counter(db, fresh_citizen.id_number, "*all", "*") == ran
    assert 1 <= ran <= _admitted_at_most(5, elapsed), (ran, elapsed)


async def test_concurrent_wrong_phones_at_activation_are_all_accounted_for(
    edge_identity, fresh_citizen: Citizen, source: str, db: asyncpg.Connection
) -> None:
    wrong = dataclasses.replace(fresh_citizen, phone="0999999999")
    errors, elapsed = await _burst([activate(edge_identity, wrong, source) for _ in range(50)], DENIED)
    ran = sum(e.code() == DENIED for e in errors)
    assert await _counter(db, fresh_citizen.id_number, source, "activation") == ran
    assert 1 <= ran <= _admitted_at_most(5, elapsed), (ran, elapsed)


async def test_a_sign_in_from_an_address_never_makes_it_familiar(
    edge_identity, fresh_citizen: Citizen, source: str, db: asyncpg.Connection
) -> None:
    """Only a device becomes familiar (issue 9, item 3): whoever shares the address stays in the strangers' pool."""
    address = f"ip:203.0.113.{next(_hosts)}"
    device = f"device:{source}"
    secret = await enrolled(edge_identity, fresh_citizen, address)  # signs in (enrollment) from the address
    step = await password_step(edge_identity, fresh_citizen.id_number, device)
    await totp_step(edge_identity, step.ticket, totp.code_at(secret, time.time() + totp.STEP), device)
    known = await db.fetch("SELECT source FROM identity.known_sources WHERE account = $1", fresh_citizen.id_number)
    assert {r["source"] for r in known} == {device}
    await db.execute(
        "INSERT INTO identity.throttle VALUES ($1, '*unfamiliar', '*', 50, now()), ($1, '*all', '*', 50, now())",
        fresh_citizen.id_number,
    )
    error = await refused(password_step(edge_identity, fresh_citizen.id_number, address), EXHAUSTED)
    assert "new devices" in (error.details() or "")
    assert (await password_step(edge_identity, fresh_citizen.id_number, device)).ticket


async def test_a_source_may_not_take_the_name_of_an_aggregate_counter(edge_identity, fresh_citizen: Citizen) -> None:
    for name in ("*all", "*unfamiliar", "*"):
        await refused(password_step(edge_identity, fresh_citizen.id_number, name), grpc.StatusCode.INVALID_ARGUMENT)
