"""``python -m portal``: run the demo portal with settings from ``DINHDANH_PORTAL_*`` variables."""

from __future__ import annotations

import logging

import uvicorn

from core import logs, metrics, request_id, tracing
from portal.app import create_app
from portal.settings import PortalSettings


def main() -> None:
    settings = PortalSettings()
    logs.configure("portal", settings.log_level)
    for chatty in ("httpx", "httpcore"):  # a line per call to the OP: the request log is enough
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        app = create_app(settings)
    except ValueError as exc:
        raise SystemExit(f"portal: {exc}") from None
    tracing.setup("portal", settings.tracing)
    metrics.serve(settings.metrics_listen)
    observed = metrics.asgi(request_id.asgi(tracing.asgi(app)), "portal")
    host, port = settings.host_port
    # One worker (sessions live in this process); our own request log, which leaves out the query
    # string: uvicorn's access log would write the authorization code of every /callback.
    uvicorn.run(
        observed, host=host, port=port, workers=1, lifespan="on", log_config=None, access_log=False, server_header=False
    )


if __name__ == "__main__":
    main()
