"""``python -m services.edge``: the HTTP edge under uvicorn, settings from ``DINHDANH_*``."""

from __future__ import annotations

import uvicorn

from core import logs
from core.settings import Settings
from services.edge.app import create_app


def main() -> None:
    settings = Settings()
    logs.configure("edge", settings.log_level)
    host, port = settings.listen.rsplit(":", 1)
    uvicorn.run(
        create_app(settings), host=host, port=int(port), loop="uvloop", http="httptools", access_log=False,
        log_level="warning", server_header=False, proxy_headers=False, lifespan="on",
    )  # fmt: skip


if __name__ == "__main__":
    main()
