"""Argon2id password hashing (RFC 9106) at OWASP parameters, off the event loop.

m = 7 MiB, t = 5, p = 1 (OWASP Password Storage Cheat Sheet; Keycloak's default). One hash costs
about 30 ms of one core, so hashes run in a process pool with one worker per core: the event loop
never waits on them, and the pool size is the login ceiling.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


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


class PasswordHashing:
    """Async facade over a process pool of Argon2id workers."""

    def __init__(self, params: Argon2Parameters = OWASP, workers: int = 0) -> None:
        self.params = params
        self.workers = workers or os.cpu_count() or 1
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("forkserver"))
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, hash_password, self.params, password)

    async def verify(self, encoded: str, password: str) -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, verify_password, self.params, encoded, password)

    async def verify_nothing(self, password: str) -> None:
        """Spend one verification on no account, so an unknown ID answers as slowly as a known one."""
        if self._dummy is None:
            self._dummy = await self.hash(os.urandom(16).hex())
        await self.verify(self._dummy, password)

    async def warm_up(self) -> None:
        await asyncio.gather(*(self.verify_nothing("warm-up") for _ in range(self.workers)))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
