"""The one server interceptor: who is calling, may they call this method, and domain errors to status codes.

Every RPC of a service is listed in its ``POLICY`` (method name → ``Allow``); a method missing there is
refused, so a new RPC is closed until someone decides who may call it. Health and reflection answer any
peer that passed mutual TLS.

The caller is the peer of the mutual-TLS connection. For a method whose ``Allow`` admits citizens or
clients, the interceptor also reads the ``authorization: Bearer <jwt>`` metadata (once, at most 8 KiB),
verifies the token with the service's ``TokenVerifier`` and hands its subject to the handler as
``Caller.principal`` (``core.callers.current_principal()``); servicers never parse tokens. A bad token is
``UNAUTHENTICATED`` (details and a ``www-authenticate`` trailer in RFC 6750 form, never the token), a
valid one the policy does not admit ``PERMISSION_DENIED``, and ``UNAVAILABLE`` when revocations cannot be
checked. Methods open only to services and operators are decided by the peer alone, but a token sent with
one must still verify: a forged, expired or revoked token is ``UNAUTHENTICATED`` there too (on a service
that checks no tokens at all, any token is), never silently ignored.

Certificate-bound tokens (RFC 8705 §3): a token whose ``cnf`` names a certificate thumbprint (``x5t#S256``) is
accepted only over a connection whose peer certificate has that very thumbprint (``Caller.cert_sha256``), on
every method of every service, whether the method reads tokens or not; otherwise ``UNAUTHENTICATED`` with an
``invalid_token`` challenge, so a stolen bound token alone opens nothing.

DPoP-bound tokens (RFC 9449 §7): a token whose ``cnf`` names a key thumbprint (``jkt``) is accepted only as
``authorization: DPoP <token>`` with one proof by that key in the ``dpop`` metadata, for this call (``htm`` POST,
``htu`` ``https://<service>/<package.Service>/<Method>``, ``dpop.grpc_htu``), with the token's ``ath``, fresh and
never used before (``TokenVerifier.check_dpop``); otherwise ``UNAUTHENTICATED`` with a ``DPoP`` challenge. A consent
refusal
(``consent.fetch_policy.FetchDenied``) carries its reason code in the ``consent-denial-reason`` trailer.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import grpc

from consent.fetch_policy import FetchDenied
from core import deadline, logs
from core.callers import Allow, Caller, Principal, TokenRejected, bind_caller, unbind_caller
from core.errors import (
    Aborted,
    AlreadyExists,
    DataLoss,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Throttled,
    Unauthenticated,
    Unavailable,
)
from identity.oidc import dpop
from services.bearer import TokenCheckUnavailable, TokenVerifier, parse_authorization_scheme
from services.tls import caller_from_auth_context

log = logs.get("grpc")

DEADLINE_SLACK = 0.05  # a handler cancelled with less time left than this was cancelled by its deadline
OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

STATUS: tuple[tuple[type[DomainError], grpc.StatusCode], ...] = (
    (TokenCheckUnavailable, grpc.StatusCode.UNAVAILABLE),
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Aborted, grpc.StatusCode.ABORTED),
    (DataLoss, grpc.StatusCode.DATA_LOSS),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
)


def status_for(error: DomainError) -> grpc.StatusCode:
    for kind, code in STATUS:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.FAILED_PRECONDITION


class CallerInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, policy: Mapping[str, Allow], verifier: TokenVerifier | None = None) -> None:
        """``policy`` maps full method names (``/pkg.Service/Method``) to who may call them; ``verifier``
        checks bearer tokens for the methods open to citizens or clients (without one, such calls that
        carry a token are answered ``UNAVAILABLE``)."""
        self._policy = dict(policy)
        self._verifier = verifier
        if verifier is None and any(allow.accepts_tokens for allow in self._policy.values()):
            log.warning("bearer.no_verifier", reason="the policy admits tokens but no verifier is configured")

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
        return _wrap(handler, method, self._policy.get(method), self._verifier)


async def _enter(
    context: grpc.aio.ServicerContext, method: str, allow: Allow | None, verifier: TokenVerifier | None
) -> tuple[Caller, object]:
    caller = caller_from_auth_context(context.auth_context())
    try:
        if allow is None:
            raise PermissionDenied("this method is not open to any caller")
        if caller is not None:
            principal = await _principal(context, verifier, allow.accepts_tokens, caller, method)
            if principal is not None and allow.accepts_tokens:
                caller = replace(caller, principal=principal)
        allow.check(caller)
    except DomainError as error:
        log.warning(
            "rpc.refused",
            method=method,
            caller=caller.label if caller else None,
            principal=caller.principal.label if caller and caller.principal else None,
            reason=error.message,
        )
        await _abort(context, error)
    assert caller is not None
    return caller, bind_caller(caller)


async def _principal(
    context: grpc.aio.ServicerContext, verifier: TokenVerifier | None, expected: bool, caller: Caller | None = None,
    method: str = "",
) -> Principal | None:
    """The subject of the call's bearer token, ``None`` when it sends no ``authorization`` metadata. A token
    the method does not ``expected`` is still verified (and refused when it does not verify); a certificate-bound
    one only over the certificate it names (RFC 8705 §3)."""
    metadata = context.invocation_metadata() or ()
    values = [value for key, value in metadata if key.lower() == "authorization"]
    if not values:
        return None
    if len(values) > 1:
        raise TokenRejected("send one authorization metadata entry, not several", error="invalid_request")
    scheme, token = parse_authorization_scheme(values[0])
    if verifier is None and not expected:
        raise TokenRejected("this service takes no bearer tokens")
    if verifier is None:
        raise TokenCheckUnavailable("this service is not set up to check bearer tokens")
    principal = await verifier.verify(token)
    presented = caller.cert_sha256 if caller is not None else ""
    if principal.bound and not hmac.compare_digest(principal.cnf_x5t, presented):
        raise TokenRejected("the access token is bound to another certificate than this connection's")
    proofs = [_text(value) for key, value in metadata if key.lower() == dpop.GRPC_METADATA]
    await verifier.check_dpop(scheme, token, principal, proofs, method)
    return principal


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("ascii", "replace")


async def _abort(context: grpc.aio.ServicerContext, error: DomainError) -> None:
    trailers: tuple[tuple[str, str], ...] = ()
    if isinstance(error, Throttled):
        trailers = (("retry-after", str(error.retry_after)),)
    if isinstance(error, FetchDenied):
        trailers = (("consent-denial-reason", error.reason.value),)
    challenge = getattr(error, "challenge", None)
    if challenge:
        trailers = (("www-authenticate", challenge),)
    await context.abort(status_for(error), error.message, trailing_metadata=trailers)


def _bind_deadline(context: grpc.aio.ServicerContext) -> float | None:
    """The call's deadline, for every downstream call of the handler (core.deadline). Each call runs in its
    own task, so the binding ends with the call. Returns the caller's budget in seconds (``None``: none)."""
    budget = context.time_remaining()
    deadline.bind(budget)
    return budget


def _cancelled(context: grpc.aio.ServicerContext, method: str, budget: float | None) -> None:
    """The handler was cancelled: by its deadline (said), or because the caller went away."""
    left = context.time_remaining()
    if budget is not None and left is not None and left < DEADLINE_SLACK:
        log.info("rpc.deadline_exceeded", method=method, budget_ms=round(budget * 1000))


def _timed_out(error: Exception) -> bool:
    """A downstream call that ran out of time: PostgreSQL (asyncpg's ``TimeoutError``) or another service."""
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    return isinstance(error, TimeoutError)


async def _fail(context: grpc.aio.ServicerContext, method: str, error: Exception, budget: float | None) -> None:
    if isinstance(error, DomainError):
        await _abort(context, error)
    if _timed_out(error):
        log.info("rpc.deadline_exceeded", method=method, budget_ms=round((budget or 0) * 1000),
                 downstream=type(error).__name__)  # fmt: skip
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "a downstream call did not answer in time")
    log.exception("rpc.crashed", method=method, error_type=type(error).__name__)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


def _wrap(
    handler: grpc.RpcMethodHandler, method: str, allow: Allow | None, verifier: TokenVerifier | None
) -> grpc.RpcMethodHandler:
    if handler.unary_unary or handler.stream_unary:
        inner = handler.unary_unary or handler.stream_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            budget = _bind_deadline(context)
            _, token = await _enter(context, method, allow, verifier)
            try:
                return await inner(request, context)
            except asyncio.CancelledError:
                _cancelled(context, method, budget)
                raise
            except Exception as error:
                if isinstance(error, grpc.aio.AbortError):
                    raise
                await _fail(context, method, error, budget)
            finally:
                unbind_caller(token)

        make = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        return make(unary, handler.request_deserializer, handler.response_serializer)

    inner_stream = handler.unary_stream or handler.stream_stream

    async def streaming(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        budget = _bind_deadline(context)
        _, token = await _enter(context, method, allow, verifier)
        try:
            async for item in inner_stream(request, context):
                yield item
        except asyncio.CancelledError:
            _cancelled(context, method, budget)
            raise
        except Exception as error:
            if isinstance(error, grpc.aio.AbortError):
                raise
            await _fail(context, method, error, budget)
        finally:
            unbind_caller(token)

    make_stream = (
        grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
    )
    return make_stream(streaming, handler.request_deserializer, handler.response_serializer)
