"""The one server interceptor: who is calling, may they call this method, and domain errors to status codes.

Every RPC of a service is listed in its ``POLICY`` (method name → ``Allow``); a method missing there is
refused, so a new RPC is closed until someone decides who may call it. Health and reflection answer any
peer that passed mutual TLS.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc

from core import logs
from core.callers import Allow, Caller, bind_caller, unbind_caller
from core.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Throttled,
    Unauthenticated,
)
from services.tls import caller_from_auth_context

log = logs.get("grpc")

OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

STATUS: tuple[tuple[type[DomainError], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (Throttled, grpc.StatusCode.RESOURCE_EXHAUSTED),
)


def status_for(error: DomainError) -> grpc.StatusCode:
    for kind, code in STATUS:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.FAILED_PRECONDITION


class CallerInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, policy: Mapping[str, Allow]) -> None:
        """``policy`` maps full method names (``/pkg.Service/Method``) to who may call them."""
        self._policy = dict(policy)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method: str = details.method  # type: ignore[attr-defined]
        if method.startswith(OPEN_SERVICES):
            return handler
        return _wrap(handler, method, self._policy.get(method))


async def _enter(context: grpc.aio.ServicerContext, method: str, allow: Allow | None) -> tuple[Caller, object]:
    caller = caller_from_auth_context(context.auth_context())
    try:
        if allow is None:
            raise PermissionDenied("this method is not open to any caller")
        allow.check(caller)
    except DomainError as error:
        log.warning("rpc.refused", method=method, caller=caller.label if caller else None, reason=error.message)
        await context.abort(status_for(error), error.message)
    assert caller is not None
    return caller, bind_caller(caller)


async def _fail(context: grpc.aio.ServicerContext, method: str, error: Exception) -> None:
    if isinstance(error, DomainError):
        if isinstance(error, Throttled):
            context.set_trailing_metadata((("retry-after", str(error.retry_after)),))
        await context.abort(status_for(error), error.message)
    log.exception("rpc.crashed", method=method, error_type=type(error).__name__)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


def _wrap(handler: grpc.RpcMethodHandler, method: str, allow: Allow | None) -> grpc.RpcMethodHandler:
    if handler.unary_unary or handler.stream_unary:
        inner = handler.unary_unary or handler.stream_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            _, token = await _enter(context, method, allow)
            try:
                return await inner(request, context)
            except Exception as error:
                if isinstance(error, grpc.aio.AbortError):
                    raise
                await _fail(context, method, error)
            finally:
                unbind_caller(token)

        make = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        return make(unary, handler.request_deserializer, handler.response_serializer)

    inner_stream = handler.unary_stream or handler.stream_stream

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        _, token = await _enter(context, method, allow)
        try:
            async for item in inner_stream(request, context):
                yield item
        except Exception as error:
            if isinstance(error, grpc.aio.AbortError):
                raise
            await _fail(context, method, error)
        finally:
            unbind_caller(token)

    make_stream = (
        grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
    )
    return make_stream(streaming, handler.request_deserializer, handler.response_serializer)
