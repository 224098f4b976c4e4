"""The ports the local stack listens on (all on 127.0.0.1)."""

from __future__ import annotations

import socket
from dataclasses import asdict, dataclass, fields

HOST = "127.0.0.1"


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
        """Ports the kernel says are free now (for tests and parallel stacks)."""
        sockets = []
        try:
            for _ in fields(cls):
                s = socket.socket()
                s.bind((HOST, 0))
                sockets.append(s)
            return cls(*(s.getsockname()[1] for s in sockets))
        finally:
            for s in sockets:
                s.close()

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
