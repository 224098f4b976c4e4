"""The asyncpg connection pool each service opens on start."""

from __future__ import annotations

import asyncpg


async def open_pool(dsn: str, size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=size, command_timeout=30)
    assert pool is not None
    return pool
