"""OpenTelemetry traces across edge → services → PostgreSQL/S3, off unless ``DINHDANH_TRACING`` is set (issue 12,
item 3).

The setting (``DINHDANH_TRACING``; the portals also read ``DINHDANH_PORTAL_TRACING``):

- ``""`` (the default): off. No SDK is imported or set up, the interceptor lists are empty and ``asgi`` returns the
  application itself: nothing runs per request.
- ``otlp``: spans go to an OpenTelemetry collector over OTLP/gRPC, at the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``
  (``OTEL_EXPORTER_OTLP_*`` configure it further), batched.
- ``file:<dir>``: every finished span is one JSON line in ``<dir>/<process>-<pid>.jsonl`` (the local stack, tests).

When on: the HTTP edge and portals get a server span per request (OpenTelemetryMiddleware; the query string is
left out, it may carry an authorization code), every gRPC server a server span per call and every channel a client
span per call (opentelemetry-instrumentation-grpc; health checks and reflection are not traced), with the W3C
``traceparent`` carried in the gRPC metadata; asyncpg queries (statements, never parameters) and urllib3 requests
(minio's S3 calls) are client spans under them. Only requests start traces: a span with no parent that is not a
server span (a background sweep's query, a health probe's) is not recorded. The resource's ``service.name`` is the
process's name (``registry`` … ``health``, ``edge``, ``portal``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

ENV = "DINHDANH_TRACING"
_QUERY = "dinhdanh.query_string"  # the request's query string, kept from the tracing middleware
_provider: TracerProvider | None = None
_lock = threading.Lock()


def parse(setting: str) -> tuple[str, Path | None]:
    """``("", None)`` off, ``("otlp", None)`` or ``("file", folder)``; anything else stops the start with one line."""
    setting = setting.strip()
    if setting in ("", "otlp"):
        return setting, None
    if setting.startswith("file:") and setting[len("file:") :].strip():
        return "file", Path(setting[len("file:") :].strip())
    raise SystemExit(f"{ENV}={setting!r}: expected nothing (off), 'otlp' or 'file:<folder>'")


def enabled() -> bool:
    return _provider is not None


def setup(service: str, setting: str) -> None:
    """Turn tracing on for this process when ``setting`` (``DINHDANH_TRACING``; empty: that variable itself, so one
    setting turns on every process) says where spans go. Once per process: later calls change nothing."""
    global _provider
    kind, folder = parse(setting or os.environ.get(ENV, ""))
    with _lock:
        if not kind or _provider is not None:
            return
        from opentelemetry import trace
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
        from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}), sampler=_sampler())
        if folder is not None:
            provider.add_span_processor(SimpleSpanProcessor(_file_exporter(folder, service)))
        else:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        AsyncPGInstrumentor().instrument(tracer_provider=provider)
        URLLib3Instrumentor().instrument(tracer_provider=provider)
        _provider = provider


def _sampler() -> Any:
    """Parent-based, always on for a request; a root span that is no request's (``SERVER``) is dropped."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult

    class RequestsOnly(Sampler):
        def __init__(self) -> None:
            self._inner = ParentBased(ALWAYS_ON)

        def should_sample(
            self, parent_context: Any, trace_id: int, name: str, kind: Any = None, *args: Any, **kwargs: Any
        ) -> SamplingResult:
            parent = trace.get_current_span(parent_context).get_span_context()
            if not parent.is_valid and kind != trace.SpanKind.SERVER:
                return SamplingResult(Decision.DROP)
            return self._inner.should_sample(parent_context, trace_id, name, kind, *args, **kwargs)

        def get_description(self) -> str:
            return "RequestsOnly{ParentBased{AlwaysOn}}"

    return RequestsOnly()


def _file_exporter(folder: Path, service: str) -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class JsonLinesExporter(SpanExporter):
        """Finished spans, one JSON object a line, in one file of this process (flushed at every span)."""

        def __init__(self) -> None:
            folder.mkdir(parents=True, exist_ok=True)
            self.path = folder / f"{service}-{os.getpid()}.jsonl"
            self._out = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - open for the process's life
            self._write = threading.Lock()

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            lines = "".join(json.dumps(span_record(span), ensure_ascii=False, default=str) + "\n" for span in spans)
            with self._write:
                if self._out.closed:
                    return SpanExportResult.FAILURE
                self._out.write(lines)
                self._out.flush()
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            with self._write:
                self._out.close()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    return JsonLinesExporter()


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """One span as a line of the ``file:`` exporter: ids in hex as W3C trace context writes them."""
    context = span.context
    assert context is not None
    return {
        "service": span.resource.attributes.get("service.name"),
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent is not None else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
    }


def _untraced() -> Any:
    """gRPC calls left out of traces: health checks (the supervisor's and Kubernetes' probes) and reflection."""
    from opentelemetry.instrumentation.grpc import filters

    return filters.negate(
        filters.any_of(filters.health_check(), filters.service_prefix("grpc.reflection."))  # type: ignore[arg-type]
    )


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """A server span per call, continuing the caller's trace (``traceparent`` metadata); none when off."""
    if _provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor(tracer_provider=_provider, filter_=_untraced())]


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """A client span per call, its context sent as ``traceparent`` metadata; none when off."""
    if _provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors(tracer_provider=_provider, filter_=_untraced()))


def asgi(app: ASGIApp) -> ASGIApp:
    """``app`` with a server span per request (the caller's ``traceparent`` continued); ``app`` itself when off.
    The span never sees the query string (an authorization code, a state), only the path."""
    if _provider is None:
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    async def restored(scope: Scope, receive: Receive, send: Send) -> None:
        if _QUERY in scope:
            scope["query_string"] = scope.pop(_QUERY)
        await app(scope, receive, send)

    traced = OpenTelemetryMiddleware(restored, tracer_provider=_provider, exclude_spans=["receive", "send"])

    async def without_query(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        # The same scope travels on (Starlette writes the matched route into it for the middleware around this one).
        scope[_QUERY], scope["query_string"] = scope.get("query_string", b""), b""
        await traced(scope, receive, send)

    return without_query


def log_ids(_logger: object, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: while tracing is on, the current span's ``trace_id`` and ``span_id`` on each log line,
    so that a line leads to its trace (and a trace to its lines). Nothing when off."""
    if _provider is not None:
        from opentelemetry import trace

        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            event.setdefault("trace_id", f"{context.trace_id:032x}")
            event.setdefault("span_id", f"{context.span_id:016x}")
    return event
