"""The PostgreSQL stores and the identity use cases in-process, against the real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from audit.events import PostgresAuditLog
from core.callers import Caller, bind_caller, unbind_caller
from core.keys.memory import KeyMap
from core.keys.purposes import AUDIT_PSEUDONYM, LOGIN_TICKET, TOTP_SECRET
from db.pool import open_pool
from identity.directory import CitizenFacts
from identity.passwords.hashing import Argon2Parameters, PasswordHashing, hash_password
from identity.service import IdentityService
from identity.store import PostgresAccountStore, PostgresAttemptStore, PostgresThrottleStore
from registry.citizen import Citizen
from stack.info import StackInfo

CHEAP = Argon2Parameters(time_cost=1, memory_cost=1024, parallelism=1)


class Directory:
    """The registry as the identity logic sees it, answered from the seeded citizens."""

    def __init__(self, citizens: list[Citizen]) -> None:
        self._by_id = {c.id_number: c for c in citizens}

    async def lookup(self, id_number: str) -> CitizenFacts | None:
        c = self._by_id.get(id_number)
        return CitizenFacts(c.id_number, c.full_name, c.phone) if c else None


@pytest.fixture
async def pool(info: StackInfo) -> AsyncIterator[asyncpg.Pool]:
    opened = await open_pool(info.postgres_dsn, 4)
    yield opened
    await opened.close()


@pytest.fixture
def as_operator() -> Iterator[None]:
    token = bind_caller(Caller("operator", "test"))
    yield None
    unbind_caller(token)


def service(pool: asyncpg.Pool, citizens: list[Citizen], hashing: PasswordHashing) -> IdentityService:
    return IdentityService(
        accounts=PostgresAccountStore(pool),
        attempts=PostgresAttemptStore(pool),
        throttle=PostgresThrottleStore(pool),
        directory=Directory(citizens),
        hashing=hashing,
        audit=PostgresAuditLog(pool),
        keys=KeyMap({TOTP_SECRET: b"t" * 32, LOGIN_TICKET: b"l" * 32, AUDIT_PSEUDONYM: b"a" * 32}),
    )


async def test_a_totp_step_is_accepted_once_even_under_concurrency(pool, fresh_citizen: Citizen) -> None:
    accounts = PostgresAccountStore(pool)
    await accounts.create(fresh_citizen.id_number, "hash")
    attempts = PostgresAttemptStore(pool)
    results = await asyncio.gather(*(attempts.totp_accepted(fresh_citizen.id_number, "s", 1000) for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]
    assert not await attempts.totp_accepted(fresh_citizen.id_number, "s", 999)
    assert await attempts.totp_accepted(fresh_citizen.id_number, "s", 1001)


async def test_create_twice_returns_none(pool, fresh_citizen: Citizen) -> None:
    accounts = PostgresAccountStore(pool)
    assert await accounts.create(fresh_citizen.id_number, "hash") is not None
    assert await accounts.create(fresh_citizen.id_number, "other") is None
    assert (await accounts.get(fresh_citizen.id_number)).password_hash == "hash"  # type: ignore[union-attr]


@pytest.mark.usefixtures("as_operator")
async def test_sign_in_rehashes_when_the_parameters_change(pool, citizens, fresh_citizen: Citizen) -> None:
    """A hash made at older (cheaper) parameters is replaced at sign-in (argon2 check_needs_rehash)."""
    hashing = PasswordHashing(workers=1)
    try:
        identity = service(pool, citizens, hashing)
        accounts = PostgresAccountStore(pool)
        await accounts.create(fresh_citizen.id_number, hash_password(CHEAP, "an old but fine passphrase"))
        await identity.verify_password(fresh_citizen.id_number, "an old but fine passphrase", "device")
        stored = (await accounts.get(fresh_citizen.id_number)).password_hash  # type: ignore[union-attr]
        assert stored.startswith("$argon2id$v=19$m=7168,t=5,p=1$")
    finally:
        hashing.close()
