"""``python -m services NAME``: run one gRPC service with settings from ``DINHDANH_*`` variables."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

import uvloop

from core import logs
from core.settings import Settings
from services import identity_server, registry_server
from services.server import ServiceSpec, serve

BUILDERS: dict[str, Callable[[Settings], Awaitable[ServiceSpec]]] = {
    "registry": registry_server.build,
    "identity": identity_server.build,
}


async def main(name: str) -> None:
    settings = Settings()
    logs.configure(name, settings.log_level)
    spec = await BUILDERS[name](settings)
    await serve(spec, settings)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in BUILDERS:
        raise SystemExit(f"usage: python -m services {{{','.join(BUILDERS)}}}")
    uvloop.run(main(sys.argv[1]))
