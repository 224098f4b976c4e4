"""A request id from the edge through every gRPC call, bound into every structured log line.

Skeleton of issue 12: the hooks are wired into every gRPC server and channel, the edge and the portals."""

from __future__ import annotations

import grpc
from starlette.types import ASGIApp

METADATA_KEY = "x-request-id"  # gRPC metadata and HTTP header


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    return []


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    return []


def asgi(app: ASGIApp) -> ASGIApp:
    return app
