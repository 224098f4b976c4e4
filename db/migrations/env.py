"""Alembic environment: online migrations through SQLAlchemy's asyncpg dialect."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def _engine_arguments(dsn: str) -> tuple[str, dict[str, str]]:
    """SQLAlchemy URL and asyncpg connect arguments for a libpq-style DSN.

    asyncpg takes ``sslmode`` from a DSN, but SQLAlchemy's asyncpg dialect passes query parameters
    as keywords, so ``sslmode`` travels as asyncpg's ``ssl`` argument instead.
    """
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    connect: dict[str, str] = {}
    if "sslmode" in query:
        connect["ssl"] = query.pop("sslmode")
    url = urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, urlencode(query), parts.fragment))
    return url, connect


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    url, connect = _engine_arguments(context.config.attributes["dsn"])
    engine = create_async_engine(url, connect_args=connect)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


asyncio.run(_main())
