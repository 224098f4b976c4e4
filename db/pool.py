"""The asyncpg connection pool each service opens on start, and its Prometheus gauges (issue 12 item 3).

Every pool ``open_pool`` opens is watched until it is closed (asyncpg pools take no weak references) for
``dinhdanh_db_pool_connections{state="in_use"|"idle"}`` and ``dinhdanh_db_pool_max``, summed over the process's
open pools and read on each scrape (core.metrics)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import asyncpg
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core import metrics


class PoolCollector(Collector):
    """Connections of the process's open pools: in use, idle, and the pools' maximum."""

    def __init__(self) -> None:
        self._pools: list[asyncpg.Pool] = []
        self._lock = threading.Lock()

    def watch(self, pool: asyncpg.Pool) -> None:
        """Watch ``pool`` from now until it is closed (closed pools are let go here and on each scrape)."""
        with self._lock:
            self._pools = [*self._open(), pool]

    def _open(self) -> list[asyncpg.Pool]:
        return [pool for pool in self._pools if not pool.is_closing()]

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(self._families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            self._pools = pools = self._open()
        size = idle = top = 0
        for pool in pools:
            size, idle, top = size + pool.get_size(), idle + pool.get_idle_size(), top + pool.get_max_size()
        connections, most = self._families()
        connections.add_metric(["in_use"], max(0, size - idle))
        connections.add_metric(["idle"], idle)
        most.add_metric([], top)
        return iter((connections, most))

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("dinhdanh_db_pool_connections", "PostgreSQL connections of this process's pools.",
                              labels=["state"]),
            GaugeMetricFamily("dinhdanh_db_pool_max", "The most connections this process's pools may open."),
        )  # fmt: skip


_collector: PoolCollector | None = None
_registering = threading.Lock()


def _watched(pool: asyncpg.Pool) -> None:
    global _collector
    with _registering:
        if _collector is None:
            _collector = PoolCollector()
            metrics.register(_collector)
    _collector.watch(pool)


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """Skip asyncpg's default reset on release (``RESET ALL; UNLISTEN *; …``: one more round trip
    for every query). Safe because the platform never changes session state: no SET, LISTEN,
    advisory locks or cursors outlive a query or transaction."""


async def open_pool(dsn: str, size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=size, command_timeout=30, reset=_keep_session)
    assert pool is not None
    _watched(pool)
    return pool
