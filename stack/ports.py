"""The ports the local stack listens on (all on 127.0.0.1)."""

from __future__ import annotations

import itertools
import os
import random
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

HOST = "127.0.0.1"
FREE_FLOOR = 20000  # Ports.free() picks from here up to the kernel's ephemeral range


def _ephemeral_floor() -> int:
    """The lowest port the kernel hands out to ``bind(0)`` and outgoing connections."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _slice() -> range:
    """This process's share of the free-port range: under pytest-xdist each worker has a slice of its own, so two
    stacks starting at once on two workers never pick the same port."""
    low, high = FREE_FLOOR, max(FREE_FLOOR + 1000, _ephemeral_floor())
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    size = (high - low) // max(workers, 1)
    return range(low + worker * size, low + (worker + 1) * size)


def _candidates() -> Iterator[int]:
    share = _slice()
    start = random.randrange(len(share))  # noqa: S311 - spreads unrelated processes, no secret
    return (share[(start + i) % len(share)] for i in itertools.count())


_NEXT = _candidates()


def _listenable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Ports:
    postgres: int = 15432
    s3: int = 18333
    s3_grpc: int = 18334
    weed_master: int = 19333
    weed_master_grpc: int = 19334
    weed_volume: int = 18080
    weed_volume_grpc: int = 18081
    weed_filer: int = 18888
    weed_filer_grpc: int = 18889
    registry: int = 50051
    identity: int = 50052
    vault: int = 50053
    consent: int = 50054
    log: int = 50055
    judicial: int = 50056
    issuance: int = 50057
    health: int = 50058
    edge: int = 18000
    edge_mtls: int = 18443
    portal: int = 18001
    portal_2: int = 18002
    # Prometheus /metrics of each process (core/metrics.py), on a port of its own, never the service's
    metrics_registry: int = 19100
    metrics_identity: int = 19101
    metrics_vault: int = 19102
    metrics_consent: int = 19103
    metrics_log: int = 19104
    metrics_judicial: int = 19105
    metrics_issuance: int = 19106
    metrics_health: int = 19107
    metrics_edge: int = 19108
    metrics_portal: int = 19109
    metrics_portal_2: int = 19110

    @classmethod
    def free(cls) -> Ports:
        """Ports free now (for tests and parallel stacks), never handed out twice by one process.

        Not ``bind(0)``: the kernel takes those from its ephemeral range, where another stack's ``bind(0)`` or any
        outgoing connection may take the same port between this choice and the service's own bind. These come
        from below that range, from this process's slice (one per pytest-xdist worker), in turn."""
        chosen = (port for port in _NEXT if _listenable(port))
        return cls(*(next(chosen) for _ in fields(cls)))

    @staticmethod
    def one() -> int:
        """One port free now, chosen as ``free`` chooses (for an extra process beside a stack, e.g. a second edge)."""
        return next(port for port in _NEXT if _listenable(port))

    def metrics(self, process: str) -> int:
        """The port of ``process``'s Prometheus endpoint (``registry`` … ``edge``, ``portal``, ``portal_2``)."""
        return int(getattr(self, f"metrics_{process}"))

    def taken(self) -> list[tuple[str, int]]:
        """Ports someone else listens on already."""
        busy = []
        for name, port in asdict(self).items():
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((HOST, port))
                except OSError:
                    busy.append((name, port))
        return busy
