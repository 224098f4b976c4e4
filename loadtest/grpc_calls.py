"""One timed gRPC call reported to Locust (issue 12 item 1): what every gRPC user of ``loadtest/scenarios/`` shares.

Locust measures HTTP by itself; a gRPC call is timed here and reported through ``environment.events.request``
(request type ``gRPC``, the name of the contract such as ``vault.Download``, ``response`` the status code's name).
A call is a Locust *failure* only for what a server must not answer — ``SERVER_FAULTS`` (UNAVAILABLE, INTERNAL,
UNKNOWN, DEADLINE_EXCEEDED, DATA_LOSS, RESOURCE_EXHAUSTED) — or for a result the scenario finds wrong
(:class:`WrongResult`, or a status code the scenario did not expect); a refusal the scenario expects (``expected``)
is a success of the check it makes.

The stubs are the synchronous ones under gevent: :func:`channel` calls ``grpc.experimental.gevent.init_gevent()``
before the first channel of the process (grpc's own poller would otherwise block the gevent hub), and keeps one
channel per (address, certificate) for the process — a sync channel serves every greenlet of it.

Imported only inside Locust's processes (gevent monkey-patches what it is imported into), never by pytest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc

from services.tls import CHANNEL_OPTIONS, channel_credentials

REQUEST_TYPE = "gRPC"
SERVER_FAULTS = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
                           grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.DATA_LOSS,
                           grpc.StatusCode.RESOURCE_EXHAUSTED})  # fmt: skip
TIMEOUT = 30.0  # seconds one call may take (a slower answer is DEADLINE_EXCEEDED: a failure)
T = TypeVar("T")

_lock = threading.Lock()
_gevent_ready = False
_channels: dict[tuple[str, str, str, str], grpc.Channel] = {}


class WrongResult(Exception):
    """The server answered OK with something the scenario's check refuses (a short download, another id)."""


class Refused(Exception):
    """A status code the scenario did not expect (PERMISSION_DENIED for its own document …): a wrong result."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code


def init_gevent() -> None:
    """``grpc.experimental.gevent.init_gevent()`` once per process, before any channel."""
    global _gevent_ready
    with _lock:
        if not _gevent_ready:
            from grpc.experimental import gevent as grpc_gevent

            grpc_gevent.init_gevent()
            _gevent_ready = True


def channel(address: str, ca: Path | str, cert: Path | str, key: Path | str, server: str) -> grpc.Channel:
    """The process's mutual-TLS channel to ``server`` at ``address`` with this certificate (made once)."""
    init_gevent()
    wanted = (address, str(cert), str(key), server)
    with _lock:
        found = _channels.get(wanted)
        if found is None:
            options = (*CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", server))
            credentials = channel_credentials(Path(ca), Path(cert), Path(key))
            found = _channels[wanted] = grpc.secure_channel(address, credentials, options=options)
        return found


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@dataclass
class Outcome(Generic[T]):
    """What one reported call gave: its result (None unless OK), its status code, and the refusal if any."""

    result: T | None
    code: grpc.StatusCode
    error: grpc.RpcError | None = None


def timed(
    environment: Any,
    name: str,
    call: Callable[[], T],
    *,
    expected: Iterable[grpc.StatusCode] = (),
    accept: Callable[[grpc.RpcError], bool] | None = None,
    size: Callable[[T], int] | None = None,
) -> Outcome[T]:
    """Run ``call`` (a whole RPC: a unary call, or a stream read to its end), report it as ``gRPC``/``name`` with
    its status code, and return its :class:`Outcome`. A refusal is a success of the scenario's check when its code
    is ``expected`` or ``accept(error)`` says so — never one of ``SERVER_FAULTS``, failures whatever the scenario
    says."""
    accepted = frozenset(expected) - SERVER_FAULTS
    started_at, started = time.time(), time.perf_counter()
    result: T | None = None
    code = grpc.StatusCode.OK
    refusal: grpc.RpcError | None = None
    exception: Exception | None = None
    try:
        result = call()
    except grpc.RpcError as error:
        refusal = error
        code = _code(error)
        allowed = code in accepted or (accept is not None and code not in SERVER_FAULTS and accept(error))
        if not allowed:
            exception = Refused(code, _details(error))
    except WrongResult as error:
        exception = error
    elapsed_ms = (time.perf_counter() - started) * 1000
    length = size(result) if size is not None and result is not None else 0
    environment.events.request.fire(
        request_type=REQUEST_TYPE, name=name, response_time=elapsed_ms, response_length=length,
        response=code.name, exception=exception, context={}, start_time=started_at, url=None,
    )  # fmt: skip
    return Outcome(result, code, refusal)


def _code(error: grpc.RpcError) -> grpc.StatusCode:
    code = getattr(error, "code", None)
    found = code() if callable(code) else None
    return found if isinstance(found, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _details(error: grpc.RpcError) -> str:
    details = getattr(error, "details", None)
    return str((details() if callable(details) else "") or "")


def trailer(error: grpc.RpcError, key: str) -> str:
    """One trailing-metadata value of a refused call ('' when absent)."""
    read = getattr(error, "trailing_metadata", None)
    for name, value in (read() if callable(read) else None) or ():
        if name == key:
            return str(value)
    return ""
