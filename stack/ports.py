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
