"""Builds and runs one gRPC service: mutual TLS, the caller interceptor, health, reflection, clean stop.

Health (``grpc.health.v1``) follows the service's dependencies (services.health): PostgreSQL for every service
with a DSN, plus the probes the service adds (the vault: S3); ``SERVING`` only while they answer."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from core import logs, metrics, request_id, tracing
from core.callers import Allow
from core.settings import Settings
from services.bearer import TokenVerifier
from services.health import HealthWatch, PostgresProbe, Probe
from services.interceptor import CallerInterceptor
from services.tls import server_credentials

log = logs.get("server")

MAX_MESSAGE = 1024 * 1024  # unary services take small messages; streaming services raise this


@dataclass
class ServiceSpec:
    """What a service contributes: its servicers (added by ``register``), full names and policy."""

    name: str
    service_names: Sequence[str]
    register: Callable[[grpc.aio.Server], None]
    policy: Mapping[str, Allow]
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    max_message: int = MAX_MESSAGE
    verifier: TokenVerifier | None = None  # bearer tokens, for methods open to citizens or clients
    probes: Mapping[str, Probe] = field(default_factory=dict)  # dependencies besides PostgreSQL (health)


@dataclass
class Running:
    """A started server: its port and health, for ``stop``."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    watch: HealthWatch


async def start(spec: ServiceSpec, settings: Settings) -> Running:
    """Build and start the server of ``spec``: mutual TLS, the caller interceptor, health, reflection."""
    if spec.verifier is not None:
        await spec.verifier.start()
        spec.on_stop.insert(0, spec.verifier.stop)
    metrics.serve(settings.metrics_listen)
    observed = [*request_id.server_interceptors(), *tracing.server_interceptors(), *metrics.server_interceptors()]
    server = grpc.aio.server(
        interceptors=[*observed, CallerInterceptor(spec.policy, spec.verifier)],
        options=[
            ("grpc.max_receive_message_length", spec.max_message),
            ("grpc.so_reuseport", 0),
        ],
    )
    spec.register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*spec.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_secure_port(
        settings.listen, server_credentials(settings.tls_ca, settings.tls_cert, settings.tls_key)
    )
    if port == 0:
        raise SystemExit(f"{spec.name}: cannot listen on {settings.listen} (address in use?)")
    await server.start()
    probes = {"postgresql": PostgresProbe(settings.postgres_dsn)} if settings.postgres_dsn else {}
    watch = HealthWatch(health_servicer, (*spec.service_names, ""), {**probes, **spec.probes})
    await watch.check()
    watch.start()
    log.info("service.started", listen=settings.listen, port=port)
    return Running(server, port, health_servicer, watch)


async def stop(running: Running, spec: ServiceSpec) -> None:
    """Stop gracefully: health says so first, in-flight calls get 5 s, then the service's own hooks."""
    log.info("service.stopping")
    await running.watch.stop()
    await running.health.enter_graceful_shutdown()
    await running.server.stop(grace=5)
    for hook in spec.on_stop:
        await hook()
    log.info("service.stopped")


async def serve(spec: ServiceSpec, settings: Settings, ready: Callable[[int], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    running = await start(spec, settings)
    if ready:
        ready(running.port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await stop(running, spec)


def token_verifier(settings: Settings, service: str, pool: object) -> TokenVerifier | None:
    """The service's bearer-token check (audience ``urn:dinhdanh:service:<name>``), when an issuer is set."""
    if not settings.issuer:
        return None
    return TokenVerifier(settings.issuer, f"urn:dinhdanh:service:{service}", None, pool)  # type: ignore[arg-type]
