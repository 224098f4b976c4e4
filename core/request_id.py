"""A request id from the edge through every gRPC call, bound into every structured log line (issue 12, item 3).

The edge and the portals (``asgi``) take the caller's ``X-Request-Id`` when it is a short, well-formed token
(1 to 64 characters of ``[A-Za-z0-9._-]``) and mint one otherwise (32 hex digits); they answer it in the response
header of the same name. While the request runs, the id is bound to this task's context: structlog's contextvars
write it as ``request_id`` on every log line (core/logs.py merges them), and every gRPC call made meanwhile carries
it as ``x-request-id`` metadata (``client_interceptors``, on every channel of services/tls.py). Every gRPC server
(``server_interceptors``) binds the incoming id, or a fresh one when it is absent or malformed, for the call only,
so a service's own downstream calls pass it on by themselves.

The binding lives in a ``ContextVar``: each request and each RPC runs in its own asyncio task (its own copy of the
context), and the binding is undone when the request or call ends, so nothing passes from one to the next. The id
is a correlation handle, never an authority: nothing is decided by it, and a caller's id is only echoed once it
passed the format check (no header or log injection).
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METADATA_KEY = "x-request-id"  # gRPC metadata and HTTP header
LOG_KEY = "request_id"  # the field of every log line
MAX_LENGTH = 64
_HEADER = METADATA_KEY.encode()
_WELL_FORMED = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_LENGTH}}}")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("dinhdanh_request_id", default=None)


def mint() -> str:
    """A fresh request id: 32 hex digits (a random UUID's)."""
    return uuid.uuid4().hex


def accept(offered: str | bytes | None) -> str:
    """``offered`` when it is a well-formed id, otherwise a fresh one."""
    if isinstance(offered, bytes):
        try:
            offered = offered.decode("ascii")
        except UnicodeDecodeError:
            offered = None
    if offered is not None and _WELL_FORMED.fullmatch(offered):
        return offered
    return mint()


def current() -> str | None:
    """The id of the request or call this task serves, ``None`` outside any."""
    return _current.get()


@contextlib.contextmanager
def bound(request_id: str) -> Iterator[str]:
    """``request_id`` is this context's id (and every log line's ``request_id``) until the block ends."""
    token = _current.set(request_id)
    log_tokens = structlog.contextvars.bind_contextvars(**{LOG_KEY: request_id})
    try:
        yield request_id
    finally:
        try:
            structlog.contextvars.reset_contextvars(**log_tokens)
            _current.reset(token)
        except ValueError:  # an async generator finalised from another context: that context never had it
            pass


# --- gRPC servers ---------------------------------------------------------------------------------------------------


def _incoming(metadata: Any) -> str | None:
    """The call's one ``x-request-id`` value (``None`` when there are none or several)."""
    values = [value for key, value in metadata or () if key.lower() == METADATA_KEY]
    return values[0] if len(values) == 1 else None


class _ServerInterceptor(grpc.aio.ServerInterceptor):
    """Binds the caller's request id (or a fresh one) for the duration of each call."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        offered = _incoming(getattr(details, "invocation_metadata", None))
        return _wrap(handler, offered)


def _wrap(handler: grpc.RpcMethodHandler, offered: str | bytes | None) -> grpc.RpcMethodHandler:
    if handler.request_streaming and handler.response_streaming:
        behavior, make = handler.stream_stream, grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        behavior, make = handler.stream_unary, grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        behavior, make = handler.unary_stream, grpc.unary_stream_rpc_method_handler
    else:
        behavior, make = handler.unary_unary, grpc.unary_unary_rpc_method_handler
    wrapped: Callable[..., Any]
    if handler.response_streaming and inspect.isasyncgenfunction(behavior):

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            with bound(accept(offered)):
                async for item in behavior(request, context):
                    yield item

        wrapped = streaming
    else:  # a unary answer, or a streaming one written with context.write

        async def called(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with bound(accept(offered)):
                return await behavior(request, context)

        wrapped = called
    return make(wrapped, handler.request_deserializer, handler.response_serializer)


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """The interceptor binding each call's request id; first of a server's interceptors (services/server.py)."""
    return [_ServerInterceptor()]


# --- gRPC clients ---------------------------------------------------------------------------------------------------


def _with_id(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    request_id = _current.get()
    if request_id is None:
        return details
    metadata = grpc.aio.Metadata(*tuple(details.metadata or ()))
    if METADATA_KEY in metadata:  # the caller chose one itself
        return details
    metadata.add(METADATA_KEY, request_id)
    return details._replace(metadata=metadata)  # type: ignore[attr-defined]


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        return await continuation(_with_id(details), request)


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        return await continuation(_with_id(details), request)


class _StreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self, continuation: Any, details: grpc.aio.ClientCallDetails, requests: Any
    ) -> Any:
        return await continuation(_with_id(details), requests)


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self, continuation: Any, details: grpc.aio.ClientCallDetails, requests: Any
    ) -> Any:
        return await continuation(_with_id(details), requests)


_CLIENT: list[grpc.aio.ClientInterceptor] = [_UnaryUnary(), _UnaryStream(), _StreamUnary(), _StreamStream()]


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Interceptors adding the bound request id as ``x-request-id`` metadata to every kind of call."""
    return list(_CLIENT)


# --- HTTP (the edge, the portals) -----------------------------------------------------------------------------------


def asgi(app: ASGIApp) -> ASGIApp:
    """``app`` with each request's id taken or minted, bound while it runs, and answered in ``X-Request-Id``."""

    async def with_request_id(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        offered = [value for key, value in scope.get("headers", ()) if key.lower() == _HEADER]
        request_id = accept(offered[0] if len(offered) == 1 else None)
        answered = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER]
                message = {**message, "headers": [*headers, (_HEADER, answered)]}
            await send(message)

        with bound(request_id):
            await app(scope, receive, send_with_id)

    return with_request_id
