"""Small asyncio helpers the standard library lacks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def uninterrupted(work: Awaitable[T]) -> T:
    """Run ``work`` to its end even if the calling task is cancelled meanwhile (once or many times), then
    re-raise the cancellation. For bounded cleanup that must not be cut short: a cancelled gRPC handler can
    be cancelled again while it cleans up."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():  # the work itself was cancelled
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result
