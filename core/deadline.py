"""The caller's deadline, carried through a call: downstream calls get only the time that is left.

gRPC sends a deadline with every call (``grpc-timeout``, the gRPC over HTTP/2 protocol); a server that calls
further services, PostgreSQL or S3 must not give them longer than its own caller waits, or their work goes on
after nobody wants the answer. The one server interceptor binds the call's deadline here
(``bind(context.time_remaining())``); outbound calls ask ``remaining(default)`` for their timeout.

The deadline is a point on ``time.monotonic()``, in a context variable: each request (task) has its own, and
tasks it starts inherit it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar, Token

SPENT = 0.001  # what ``remaining`` answers once the deadline has passed: the downstream call fails at once

_deadline: ContextVar[float | None] = ContextVar("deadline", default=None)


def remaining(default: float) -> float:
    """Seconds a downstream call may take: ``default``, or less when the caller's deadline is nearer."""
    deadline = _deadline.get()
    if deadline is None:
        return default
    return max(SPENT, min(default, deadline - time.monotonic()))


def expired() -> bool:
    deadline = _deadline.get()
    return deadline is not None and deadline <= time.monotonic()


def bind(timeout: float | None) -> Token[float | None]:
    """Bound the current context to ``timeout`` seconds from now (``None``: no new bound); a deadline already
    bound and nearer stays. Returns the token for ``unbind``."""
    current = _deadline.get()
    if timeout is None:
        return _deadline.set(current)
    deadline = time.monotonic() + timeout
    return _deadline.set(deadline if current is None else min(current, deadline))


def unbind(token: Token[float | None]) -> None:
    _deadline.reset(token)


@contextlib.contextmanager
def bounded(timeout: float | None) -> Iterator[None]:
    """``with bounded(2.0):`` everything inside gets at most 2 s more (or less, if the caller's is nearer)."""
    token = bind(timeout)
    try:
        yield
    finally:
        unbind(token)
