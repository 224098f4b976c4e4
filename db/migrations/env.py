"""Alembic environment: online migrations through SQLAlchemy's asyncpg dialect."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def _sqlalchemy_url(dsn: str) -> str:
    return "postgresql+asyncpg://" + dsn.split("://", 1)[1]


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(_sqlalchemy_url(context.config.attributes["dsn"]))
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


asyncio.run(_main())
