"""core.aio.uninterrupted: cleanup that a cancelled task cannot cut short."""

from __future__ import annotations

import asyncio

import pytest

from core.aio import uninterrupted


async def test_the_result_when_nothing_cancels() -> None:
    async def work() -> int:
        await asyncio.sleep(0)
        return 7

    assert await uninterrupted(work()) == 7


async def test_work_ends_even_when_the_caller_is_cancelled_twice() -> None:
    finished = asyncio.Event()
    release = asyncio.Event()

    async def cleanup() -> None:
        await release.wait()
        finished.set()

    caller = asyncio.ensure_future(uninterrupted(cleanup()))
    await asyncio.sleep(0)
    caller.cancel()
    await asyncio.sleep(0)
    caller.cancel()
    await asyncio.sleep(0)
    assert not caller.done(), "still waiting for its cleanup"
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert finished.is_set()


async def test_an_error_of_the_work_is_raised() -> None:
    async def failing() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await uninterrupted(failing())
