"""OpenTelemetry traces across edge → services → PostgreSQL/S3, off unless ``DINHDANH_TRACING`` is set.

Skeleton of issue 12: the hooks are wired into every gRPC server and channel, the edge and the portals."""

from __future__ import annotations

import grpc
from starlette.types import ASGIApp


def setup(service: str, setting: str) -> None:
    """Turn tracing on for this process when ``setting`` (``DINHDANH_TRACING``) says where spans go."""


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    return []


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    return []


def asgi(app: ASGIApp) -> ASGIApp:
    return app
