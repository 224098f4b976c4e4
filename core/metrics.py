"""Prometheus metrics of one process, served on a port of its own (``DINHDANH_METRICS_LISTEN``), issue 12 item 3.

``serve`` starts ``GET /metrics`` (Prometheus text exposition 0.0.4, prometheus-client) in a daemon thread: it
answers while the event loop is busy, and scrapes never run on the loop. Every process exposes
``dinhdanh_build_info`` and prometheus-client's ``process_*`` and ``python_*`` series; the rest appear in the
processes that have them (a series is made by the code that feeds it, so a portal shows no gRPC series):

- ``grpc_server_handled_total{grpc_service,grpc_method,grpc_code}`` and
  ``grpc_server_handling_seconds{grpc_service,grpc_method}``: every RPC of every gRPC server
  (``server_interceptors``), with the status code the server actually sent;
- ``http_server_requests_total{route,method,status}`` and ``http_server_request_duration_seconds{route,method}``:
  the edge and the portals (``asgi``), ``route`` the Starlette route's path template or ``unmatched``;
- ``dinhdanh_db_pool_connections{state}``, ``dinhdanh_db_pool_max`` (db/pool.py);
- ``dinhdanh_argon2_queue_length``, ``dinhdanh_argon2_wait_seconds``, ``dinhdanh_argon2_busy_total``
  (identity/passwords/hashing.py);
- ``dinhdanh_consent_decisions_total{decision}`` (consent/service.py; the fetch decisions in vault/sharing.py);
- ``dinhdanh_log_append_lag_seconds``, ``dinhdanh_log_unsequenced_events`` (services/log_server.py).

Label values are bounded: method names only of registered handlers, route templates never raw paths, status
codes and fixed words; never an id, a token or a citizen's data.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import socket
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import grpc
import structlog
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Seconds; 0.1 and 0.25 are the SLO thresholds (vault and consent fetch p99 < 100 ms, sign-in p99 < 250 ms).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DECISIONS = ("granted", "denied", "paused", "resumed", "revoked", "expired", "fetch_allowed", "fetch_refused")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"

_lock = threading.Lock()
_made: dict[str, Any] = {}
_served: dict[str, int] = {}


def _metric(kind: type[Any], name: str, documentation: str, labels: Iterable[str] = (), **options: Any) -> Any:
    """The process's one ``kind`` metric called ``name``, made on first use (so a series exists only where it is
    fed, and a second server or app in one process shares it)."""
    with _lock:
        if name not in _made:
            _made[name] = kind(name, documentation, tuple(labels), registry=REGISTRY, **options)
        return _made[name]


def register(collector: Collector) -> None:
    """Add a custom collector (read on every scrape, in the server's thread) to the process's registry. It must
    have ``describe`` (the registry calls ``collect`` at once otherwise)."""
    REGISTRY.register(collector)


class _Summed(Collector):
    """A gauge: ``read(owner)`` summed over the live owners (held weakly: a forgotten owner drops out)."""

    def __init__(self, name: str, documentation: str, read: Callable[[Any], float]) -> None:
        self._name, self._documentation, self._read = name, documentation, read
        self.owners: weakref.WeakSet[Any] = weakref.WeakSet()

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(self._name, self._documentation)]

    def collect(self) -> list[GaugeMetricFamily]:
        total = sum(self._read(owner) for owner in list(self.owners))
        return [GaugeMetricFamily(self._name, self._documentation, value=total)]


def summed(name: str, documentation: str, owner: object, read: Callable[[Any], float]) -> None:
    """Gauge ``name``: ``read(o)`` summed over ``owner`` and the other live owners given for it, read on scrape
    (``read`` must be cheap and safe from another thread: it runs in the scrape's)."""
    with _lock:
        if name not in _made:
            _made[name] = _Summed(name, documentation, read)
            REGISTRY.register(_made[name])
        _made[name].owners.add(owner)


# --- the endpoint ------------------------------------------------------------------------------------------


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: scrapes every few seconds are noise."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _metrics_only(app: Callable[..., Any]) -> Callable[..., Any]:
    def only(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"not found: the metrics are at /metrics\n"]
        return app(environ, start_response)

    return only


def _process_name() -> str:
    """This process's service name as logging knows it (core.logs.configure binds it first thing)."""
    return str(structlog.contextvars.get_contextvars().get("service") or "unknown")


def _version() -> str:
    try:
        return importlib.metadata.version("dinhdanh")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_info(process: str) -> None:
    """``dinhdanh_build_info{process,version} 1``."""
    gauge = _metric(Gauge, "dinhdanh_build_info", "The program and version of this process (always 1).",
                    ("process", "version"))  # fmt: skip
    gauge.labels(process, _version()).set(1)


def serve(listen: str, process: str | None = None) -> int | None:
    """Start the ``/metrics`` endpoint on ``host:port`` (``""``: none) in a daemon thread; the port it listens on.

    A port that cannot be bound ends the start (``SystemExit`` naming the address), like the service's own."""
    name = process or _process_name()
    build_info(name)
    if not listen:
        return None
    with _lock:
        if listen in _served:
            return _served[listen]
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise SystemExit(f"{name}: the metrics address must be host:port, not {listen!r}")
    host = host.strip("[]")
    try:
        family = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0][0]
        server_class = type("MetricsServer", (_Server,), {"address_family": family})
        server = make_server(host, int(port), _metrics_only(make_wsgi_app(REGISTRY)), server_class, _Quiet)
    except OSError as error:
        raise SystemExit(f"{name}: cannot serve metrics on {listen}: {error.strerror or error}") from None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    bound = int(server.server_port)
    with _lock:
        _served[listen] = bound
    return bound


# --- gRPC --------------------------------------------------------------------------------------------------


def _grpc_metrics() -> tuple[Counter, Histogram]:
    handled = _metric(Counter, "grpc_server_handled_total", "RPCs completed on the server, by status code sent.",
                      ("grpc_service", "grpc_method", "grpc_code"))  # fmt: skip
    seconds = _metric(Histogram, "grpc_server_handling_seconds", "Time from an RPC's start to its status.",
                      ("grpc_service", "grpc_method"), buckets=BUCKETS)  # fmt: skip
    return handled, seconds


def _code_after(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    """The status the server sends for a handler that returned (``error`` None) or raised ``error``."""
    if error is None or isinstance(error, grpc.aio.AbortError):
        code = context.code()
        if isinstance(code, grpc.StatusCode):
            return code.name
        if isinstance(code, int):
            return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
        return "OK" if error is None else "UNKNOWN"
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        left = context.time_remaining()
        return "DEADLINE_EXCEEDED" if left is not None and left <= 0 else "CANCELLED"
    return "UNKNOWN"  # grpc answers an exception that escapes every handler with UNKNOWN


class _Observe(grpc.aio.ServerInterceptor):
    """Counts and times every RPC. Runs before the caller interceptor, so its refusals (``context.abort``) and
    the domain errors it maps to status codes are counted with the code sent."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:  # UNIMPLEMENTED: not counted (its method name is the caller's, unbounded)
            return handler
        service, _, method = str(details.method).lstrip("/").rpartition("/")  # type: ignore[attr-defined]
        return _observed(handler, service or "unknown", method or "unknown")


def _observed(handler: grpc.RpcMethodHandler, service: str, method: str) -> grpc.RpcMethodHandler:
    handled, seconds = _grpc_metrics()
    timer = seconds.labels(service, method)

    def done(context: grpc.aio.ServicerContext, started: float, error: BaseException | None) -> None:
        timer.observe(time.perf_counter() - started)
        handled.labels(service, method, _code_after(context, error)).inc()

    if handler.unary_unary or handler.stream_unary:
        inner = handler.unary_unary or handler.stream_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started, error = time.perf_counter(), None
            try:
                answer = inner(request, context)
                return await answer if inspect.isawaitable(answer) else answer
            except BaseException as raised:
                error = raised
                raise
            finally:
                done(context, started, error)

        make = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        return make(unary, handler.request_deserializer, handler.response_serializer)

    inner_stream = handler.unary_stream or handler.stream_stream

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        started, error = time.perf_counter(), None
        try:
            answer = inner_stream(request, context)
            if hasattr(answer, "__aiter__"):
                async for item in answer:
                    yield item
            elif inspect.isawaitable(answer):  # a handler that writes with context.write
                await answer
            else:
                for item in answer:
                    yield item
        except BaseException as raised:
            error = raised
            raise
        finally:
            done(context, started, error)

    make_stream = (
        grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
    )
    return make_stream(streaming, handler.request_deserializer, handler.response_serializer)


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """Interceptors counting and timing every RPC by service, method and status code."""
    _grpc_metrics()
    return [_Observe()]


# --- HTTP (ASGI) -------------------------------------------------------------------------------------------


def _http_metrics() -> tuple[Counter, Histogram]:
    requests = _metric(Counter, "http_server_requests_total", "HTTP requests answered, by route template.",
                       ("route", "method", "status"))  # fmt: skip
    seconds = _metric(Histogram, "http_server_request_duration_seconds", "Time from a request to its last byte.",
                      ("route", "method"), buckets=BUCKETS)  # fmt: skip
    return requests, seconds


class _RouteScope(dict):  # type: ignore[type-arg]
    """The request's scope, remembering every route Starlette's routers match (``scope["route"] = …``, a Mount
    then the route inside it), so the template is the whole path: ``/log`` + ``/tile/{rest:path}``."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(scope)
        self.routes: list[Any] = []

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "route":
            self.routes.append(value)
        super().__setitem__(key, value)


def route_template(routes: list[Any]) -> str:
    """The path template of the routes matched, outermost first; ``unmatched`` when no route took the request (a
    Mount whose inner routes all missed counts as none)."""
    if not routes:
        return UNMATCHED
    last = routes[-1]
    if getattr(last, "routes", None) and not hasattr(last, "endpoint"):  # a Mount of routes, none matched inside
        return UNMATCHED
    template = "".join(str(getattr(route, "path", "")) for route in routes)
    if not hasattr(last, "endpoint") and hasattr(last, "app"):  # a Mount of a plain ASGI app: all below it
        template += "/{path:path}"
    return template or UNMATCHED


class _HttpMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests, self.seconds = _http_metrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        observed = _RouteScope(scope)
        status = 500  # what uvicorn sends for an app that fails before it answers

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(observed, receive, sending)
        finally:
            method = str(scope.get("method", "")).upper()
            method = method if method in HTTP_METHODS else "other"
            route = route_template(observed.routes)
            self.seconds.labels(route, method).observe(time.perf_counter() - started)
            self.requests.labels(route, method, str(status)).inc()


def asgi(app: ASGIApp, process: str) -> ASGIApp:
    """``app`` with its requests counted and timed by route, method and status (``process``: the listener's
    program, for ``dinhdanh_build_info``; the edge's mutual-TLS listener shares the edge's series)."""
    build_info(process.split("-")[0])
    return _HttpMetrics(app)


# --- the platform's own series -----------------------------------------------------------------------------


def consent_decisions() -> Counter:
    """``dinhdanh_consent_decisions_total{decision}``, every decision at 0 from the start."""
    counter = _metric(Counter, "dinhdanh_consent_decisions_total", "Consent decisions taken, by decision.",
                      ("decision",))  # fmt: skip
    for decision in DECISIONS:
        counter.labels(decision)
    return counter


def consent_decided(decision: str, count: int = 1) -> None:
    """Count ``count`` decisions of one of ``DECISIONS``."""
    if decision not in DECISIONS:
        raise ValueError(f"not a consent decision: {decision}")
    if count:
        consent_decisions().labels(decision).inc(count)


def argon2_metrics() -> tuple[Histogram, Counter]:
    """The Argon2 pool's wait histogram and busy counter (its queue gauge is ``summed`` over the pools)."""
    wait = _metric(Histogram, "dinhdanh_argon2_wait_seconds", "Time a password hash waited for a worker.",
                   buckets=BUCKETS)  # fmt: skip
    busy = _metric(Counter, "dinhdanh_argon2_busy_total", "Password hashes refused because the queue was full.")
    return wait, busy


class Cached:
    """The last answer of an async ``read`` run on ``loop`` from the scrape's thread, at most every ``ttl``
    seconds; ``None`` when it failed or did not answer in ``timeout`` seconds (the series are then left out)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, read: Callable[[], Awaitable[Any]], ttl: float = 1.0,
        timeout: float = 2.0,
    ) -> None:  # fmt: skip
        self._loop, self._read, self._ttl, self._timeout = loop, read, ttl, timeout
        self._lock = threading.Lock()
        self._at = -float("inf")
        self._value: Any = None

    def get(self) -> Any:
        with self._lock:
            if time.monotonic() - self._at < self._ttl:
                return self._value
            self._value = None
            future = None
            try:
                future = asyncio.run_coroutine_threadsafe(self._run(), self._loop)
                self._value = future.result(self._timeout)
            except Exception:  # a database that does not answer (or a loop gone): no value rather than a stale one
                if future is not None:
                    future.cancel()
                self._value = None
            self._at = time.monotonic()
            return self._value

    async def _run(self) -> Any:
        return await self._read()


class _LogBacklog(Collector):
    """The log's ``dinhdanh_log_unsequenced_events`` and ``dinhdanh_log_append_lag_seconds``, asked of PostgreSQL
    on scrape (at most once a second); left out while the database does not answer."""

    def __init__(self) -> None:
        self.cached: Cached | None = None

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("dinhdanh_log_append_lag_seconds",
                              "Age of the oldest audit event not yet in a signed checkpoint (0: none)."),
            GaugeMetricFamily("dinhdanh_log_unsequenced_events", "Audit events not yet sequenced into the log."),
        )  # fmt: skip

    def describe(self) -> list[GaugeMetricFamily]:
        return list(self._families())

    def collect(self) -> list[GaugeMetricFamily]:
        value = self.cached.get() if self.cached is not None else None
        if value is None:
            return []
        unsequenced, lag = value
        lagging, waiting = self._families()
        lagging.add_metric([], lag)
        waiting.add_metric([], unsequenced)
        return [lagging, waiting]


def log_backlog(read: Callable[[], Awaitable[tuple[int, float]]]) -> None:
    """The log's backlog gauges from ``read`` (events not sequenced, lag in seconds), run on the running loop."""
    with _lock:
        if "dinhdanh_log_append_lag_seconds" not in _made:
            _made["dinhdanh_log_append_lag_seconds"] = _LogBacklog()
            REGISTRY.register(_made["dinhdanh_log_append_lag_seconds"])
        _made["dinhdanh_log_append_lag_seconds"].cached = Cached(asyncio.get_running_loop(), read)
