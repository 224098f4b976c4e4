"""``python -m services NAME``: run one gRPC service with settings from ``DINHDANH_*`` variables.

``DINHDANH_PROFILE=path`` runs the service under cProfile and writes ``path.NAME.prof`` on stop.
"""

from __future__ import annotations

import cProfile
import os
import sys
from collections.abc import Awaitable, Callable

import uvloop

from core import logs, tracing
from core.settings import Settings
from services import (
    consent_server,
    health_server,
    identity_server,
    issuance_server,
    judicial_server,
    log_server,
    registry_server,
    vault_server,
)
from services.server import ServiceSpec, serve

BUILDERS: dict[str, Callable[[Settings], Awaitable[ServiceSpec]]] = {
    "registry": registry_server.build,
    "identity": identity_server.build,
    "vault": vault_server.build,
    "consent": consent_server.build,
    "log": log_server.build,
    "judicial": judicial_server.build,
    "issuance": issuance_server.build,
    "health": health_server.build,
}


async def main(name: str) -> None:
    settings = Settings()
    logs.configure(name, settings.log_level)
    tracing.setup(name, settings.tracing)  # before build: the channels it opens take the tracing interceptors
    spec = await BUILDERS[name](settings)
    await serve(spec, settings)


def run(name: str) -> None:
    profile_to = os.environ.get("DINHDANH_PROFILE")
    if not profile_to:
        uvloop.run(main(name))
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        uvloop.run(main(name))
    finally:
        profiler.disable()
        profiler.dump_stats(f"{profile_to}.{name}.prof")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in BUILDERS:
        raise SystemExit(f"usage: python -m services {{{','.join(BUILDERS)}}}")
    run(sys.argv[1])
