"""A PostgreSQL outage as the domain's ``Unavailable``: one rule for every store.

An outage is a connection lost, refused or shut down by the server (the same request may succeed later:
gRPC ``UNAVAILABLE``). The caller's deadline or a statement timeout is not one (``TimeoutError`` passes
unchanged, as do domain errors and everything else).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg

from core.errors import DomainError, Unavailable


def is_outage(error: BaseException) -> bool:
    """Does ``error`` say that PostgreSQL cannot be reached now?"""
    if isinstance(error, TimeoutError):
        return False
    if isinstance(error, (asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, OSError)):
        return True
    if isinstance(error, (asyncpg.AdminShutdownError, asyncpg.CrashShutdownError)):
        return True
    return isinstance(error, asyncpg.InterfaceError) and "closed" in str(error)


@contextlib.asynccontextmanager
async def reachable(unavailable: type[Unavailable], message: str) -> AsyncIterator[None]:
    """Within the block, an outage raises ``unavailable(message)``; anything else passes unchanged."""
    try:
        yield
    except DomainError:
        raise
    except Exception as error:
        if is_outage(error):
            raise unavailable(message) from None
        raise
