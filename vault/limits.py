"""Limits on a citizen's uploads: a few open at once, and a stream that goes idle is cut off.

An open upload holds a worker thread, an S3 multipart upload and up to ~19 MiB of buffers (vault.objects) until
it ends, so one citizen (or one stolen token) must not hold many: ``OpenUploads`` admits ``limit`` at once per
owner and refuses the next with ``RESOURCE_EXHAUSTED`` until one ends. The count lives in the vault process
(one asyncio loop: no lost update); with N replicas a citizen may hold up to N × ``limit``.

``paced`` ends a request stream that sends nothing for ``idle`` seconds with ``ABORTED``: nothing is stored
(the upload's usual clean-up runs: S3 aborts, the object is deleted), and the client may send it again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import contextmanager
from typing import TypeVar

from core.errors import Aborted, ResourceExhausted

T = TypeVar("T")


class TooManyUploads(ResourceExhausted):
    """The citizen has as many uploads open as allowed (``RESOURCE_EXHAUSTED``)."""


class IdleUpload(Aborted):
    """The upload stream sent nothing for too long (``ABORTED``): nothing is stored."""


class OpenUploads:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    @contextmanager
    def hold(self, owner: str) -> Iterator[None]:
        """One of ``owner``'s open uploads, for the duration of the block."""
        if self._open[owner] >= self.limit:
            raise TooManyUploads(f"at most {self.limit} uploads may be open at once: wait for one to finish")
        self._open[owner] += 1
        try:
            yield
        finally:
            self._open[owner] -= 1
            if not self._open[owner]:
                del self._open[owner]


async def paced(messages: AsyncIterable[T], idle: float) -> AsyncIterator[T]:
    """``messages``, as long as each arrives within ``idle`` seconds of the previous one."""
    iterator = aiter(messages)
    while True:
        try:
            async with asyncio.timeout(idle):
                message = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise IdleUpload(f"the upload sent nothing for {idle:g} s and was cut off: nothing is stored") from None
        yield message
