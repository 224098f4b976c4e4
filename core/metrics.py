"""Prometheus metrics of one process, served on a port of its own (``DINHDANH_METRICS_LISTEN``).

Skeleton of issue 12: the hooks below are wired into every gRPC server (services/server.py), the edge and the
portals; their bodies arrive with the metrics work. Series names are fixed in docs/observability.md."""

from __future__ import annotations

import grpc
from starlette.types import ASGIApp


def serve(listen: str) -> int | None:
    """Start the ``/metrics`` endpoint on ``host:port`` (``""``: none); the port it listens on."""
    return None


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """Interceptors counting and timing every RPC by service, method and status code."""
    return []


def asgi(app: ASGIApp, process: str) -> ASGIApp:
    """``app`` with its requests counted and timed by route, method and status."""
    return app
