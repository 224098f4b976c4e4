"""The asyncpg connection pool each service opens on start."""

from __future__ import annotations

import asyncpg


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """Skip asyncpg's default reset on release (``RESET ALL; UNLISTEN *; …``: one more round trip
    for every query). Safe because the platform never changes session state: no SET, LISTEN,
    advisory locks or cursors outlive a query or transaction."""


async def open_pool(dsn: str, size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=size, command_timeout=30, reset=_keep_session)
    assert pool is not None
    return pool
