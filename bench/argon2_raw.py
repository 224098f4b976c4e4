"""The physical limit of sign-ins: Argon2id verifications per second on all cores, nothing else."""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor

from identity.passwords.hashing import OWASP, hash_password, verify_password


def _verify_for(seconds: float, encoded: str) -> int:
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        verify_password(OWASP, encoded, "correct horse battery staple")
        done += 1
    return done


def raw_verify_rate(seconds: float = 5.0, workers: int | None = None) -> tuple[float, int]:
    """(verifications per second, workers): one busy process per core for ``seconds``."""
    workers = workers or os.cpu_count() or 1
    encoded = hash_password(OWASP, "correct horse battery staple")
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_verify_for, [0.2] * workers, [encoded] * workers))  # warm up every worker
        started = time.perf_counter()
        counts = list(pool.map(_verify_for, [seconds] * workers, [encoded] * workers))
        elapsed = time.perf_counter() - started
    return sum(counts) / elapsed, workers
