"""A connection pool whose one-statement calls end at the caller's deadline (core.deadline).

``fetch``, ``fetchrow``, ``fetchval``, ``execute`` and ``executemany`` get ``timeout=deadline.remaining(...)``:
when it passes, asyncpg sends PostgreSQL a cancel request (the statement stops in the server, not only in the
client) and raises ``TimeoutError``. Everything else (``acquire``, ``close``, transactions on an acquired
connection) is the plain pool's: a transaction spans several statements and its end must not be cut short by a
caller who stopped waiting, so it keeps the pool's ``command_timeout``.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from core import deadline

DEFAULT_TIMEOUT = 30.0  # db.pool's command_timeout


class BoundedPool:
    def __init__(self, pool: asyncpg.Pool, default: float = DEFAULT_TIMEOUT) -> None:
        self._pool = pool
        self._default = default

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self._pool.fetch(query, *args, timeout=deadline.remaining(self._default))  # type: ignore[no-any-return]

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self._pool.fetchrow(query, *args, timeout=deadline.remaining(self._default))

    async def fetchval(self, query: str, *args: Any, column: int = 0) -> Any:
        return await self._pool.fetchval(query, *args, column=column, timeout=deadline.remaining(self._default))

    async def execute(self, query: str, *args: Any) -> str:
        return await self._pool.execute(query, *args, timeout=deadline.remaining(self._default))  # type: ignore[no-any-return]

    async def executemany(self, command: str, args: Any) -> None:
        await self._pool.executemany(command, args, timeout=deadline.remaining(self._default))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)
