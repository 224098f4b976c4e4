"""The ``grpc.health.v1`` status of a service follows the servers it depends on (PostgreSQL, S3).

Every ``INTERVAL`` seconds each probe runs (at most ``TIMEOUT`` seconds); the service is ``SERVING`` while all of
them pass and ``NOT_SERVING`` while any fails, back to ``SERVING`` by itself once they pass again. A change is
logged once (``service.degraded`` with the failing dependencies, ``service.recovered``). Load balancers and
``dinhdanh up`` read this status; a frozen or dead dependency thus takes the replica out of rotation instead of
letting its calls hang or fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

import asyncpg
from grpc_health.v1 import health, health_pb2

from core import logs

log = logs.get("health")

Probe = Callable[[], Awaitable[None]]  # returns when the dependency answers, raises otherwise
INTERVAL = 1.0
TIMEOUT = 2.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class PostgresProbe:
    """``SELECT 1`` on a connection of its own, not the pool's: a stalled server must not hold the connections
    calls need, and a fresh connection is tried after any failure."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._connection: asyncpg.Connection | None = None

    async def __call__(self) -> None:
        try:
            if self._connection is None or self._connection.is_closed():
                self._connection = await asyncpg.connect(self._dsn)
            await self._connection.fetchval("SELECT 1")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._connection is not None:
            self._connection.terminate()
            self._connection = None


async def failing(probes: Mapping[str, Probe], timeout: float = TIMEOUT) -> list[str]:
    """The names of the probes that fail (or take longer than ``timeout``) now."""

    async def passes(probe: Probe) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await probe()
        except Exception:
            return False
        return True

    results = await asyncio.gather(*(passes(probe) for probe in probes.values()))
    return [name for name, ok in zip(probes, results, strict=True) if not ok]


class HealthWatch:
    """Keeps the health status of ``names`` (the service's full names and "") in line with ``probes``."""

    def __init__(self, servicer: health.aio.HealthServicer, names: Sequence[str], probes: Mapping[str, Probe]) -> None:
        self._servicer = servicer
        self._names = names
        self._probes = probes
        self._status: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> None:
        """One round: probe, and set the status if it changed."""
        down = await failing(self._probes) if self._probes else []
        status = NOT_SERVING if down else SERVING
        if status == self._status:
            return
        if down:
            log.warning("service.degraded", unreachable=down)
        elif self._status is not None:
            log.info("service.recovered")
        self._status = status
        for name in self._names:
            await self._servicer.set(name, status)

    def start(self, interval: float = INTERVAL) -> None:
        if self._probes:
            self._task = asyncio.create_task(self._forever(interval))

    async def _forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except Exception as error:  # the watch must outlive a bad round
                log.warning("health.check_failed", error_type=type(error).__name__)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for probe in self._probes.values():
            close = getattr(probe, "close", None)
            if close is not None:
                close()
