"""Argon2id password hashing (RFC 9106) at OWASP parameters, off the event loop.

m = 7 MiB, t = 5, p = 1 (OWASP Password Storage Cheat Sheet; Keycloak's default). One hash costs
about 30 ms of one core, so hashes run in a process pool with one worker per core: the event loop
never waits on them, and the pool size is the login ceiling.

The queue in front of the pool is bounded (``queue`` hashes waiting or running, 16 per worker by
default): when it is full a new hash is refused at once with ``Throttled`` and the time the queue needs
to drain, so an anonymous client cannot pile up CPU work for later (back-pressure, not a backlog).

Metrics (core.metrics, issue 12 item 3): ``dinhdanh_argon2_queue_length`` (hashes waiting or running, the count
the bound applies to), ``dinhdanh_argon2_wait_seconds`` (submission to a worker starting it) and
``dinhdanh_argon2_busy_total`` (hashes refused as busy).
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core import metrics
from core.errors import Throttled

T = TypeVar("T")
QUEUE_PER_WORKER = 16


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    time_cost: int = 5
    memory_cost: int = 7 * 1024  # KiB
    parallelism: int = 1

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_cost,
            parallelism=self.parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )


OWASP = Argon2Parameters()

_hashers: dict[Argon2Parameters, PasswordHasher] = {}


def _hasher(params: Argon2Parameters) -> PasswordHasher:
    if params not in _hashers:
        _hashers[params] = params.hasher()
    return _hashers[params]


def hash_password(params: Argon2Parameters, password: str) -> str:
    return _hasher(params).hash(password)


def verify_password(params: Argon2Parameters, encoded: str, password: str) -> tuple[bool, bool]:
    """(matches, needs rehash at ``params``); runs in a worker process."""
    hasher = _hasher(params)
    try:
        hasher.verify(encoded, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, hasher.check_needs_rehash(encoded)


def _timed(work: Callable[..., T], *args: Any) -> tuple[float, T]:
    """``work(*args)`` in a worker, with the time it started (``time.monotonic`` is one clock for the host)."""
    return time.monotonic(), work(*args)


def _load(hashing: PasswordHashing) -> float:
    return hashing._load


class PasswordHashing:
    """Async facade over a process pool of Argon2id workers."""

    def __init__(self, params: Argon2Parameters = OWASP, workers: int = 0, queue: int = 0) -> None:
        self.params = params
        self.workers = workers or os.cpu_count() or 1
        self.queue = queue or self.workers * QUEUE_PER_WORKER
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("forkserver"))
        self._dummy: str | None = None
        self._load = 0  # hashes submitted and not finished
        self._seconds = 0.05  # a running mean of a hash's time from submission to result (its wait included)
        self._wait, self._busy = metrics.argon2_metrics()
        metrics.summed("dinhdanh_argon2_queue_length", "Password hashes waiting or running.", self, _load)

    async def hash(self, password: str) -> str:
        return await self._run(hash_password, self.params, password)

    async def verify(self, encoded: str, password: str) -> tuple[bool, bool]:
        return await self._run(verify_password, self.params, encoded, password)

    def retry_after(self) -> int:
        """Seconds a hash submitted now would take, at the recent pace: about the time a full queue drains."""
        return max(1, math.ceil(self._seconds))

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        if self._load >= self.queue:
            wait = self.retry_after()
            self._busy.inc()
            raise Throttled(f"sign-in is busy; retry in {wait} s", wait)
        self._load += 1
        started = time.monotonic()
        try:
            began, result = await asyncio.get_running_loop().run_in_executor(self._pool, _timed, work, *args)
            self._wait.observe(max(0.0, began - started))
            return result
        finally:
            self._load -= 1
            self._seconds = 0.8 * self._seconds + 0.2 * (time.monotonic() - started)

    async def verify_nothing(self, password: str) -> None:
        """Spend one verification on no account, so an unknown ID answers as slowly as a known one."""
        if self._dummy is None:
            self._dummy = await self.hash(os.urandom(16).hex())
        await self.verify(self._dummy, password)

    async def warm_up(self) -> None:
        await asyncio.gather(*(self.verify_nothing("warm-up") for _ in range(self.workers)))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
