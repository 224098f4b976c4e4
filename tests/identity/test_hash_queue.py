"""The Argon2 queue is bounded: past ``queue`` hashes waiting or running, a hash is refused at once with a
retry time (RESOURCE_EXHAUSTED through the interceptor), never queued (issue 9, item 2). A real process pool."""

from __future__ import annotations

import asyncio

from core.errors import Throttled
from identity.passwords.hashing import PasswordHashing


async def test_a_full_queue_refuses_at_once_with_a_retry_time() -> None:
    hashing = PasswordHashing(workers=1, queue=3)
    try:
        encoded = await hashing.hash("a long enough passphrase")
        results = await asyncio.gather(
            *(hashing.verify(encoded, "a wrong passphrase") for _ in range(20)), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, Throttled)]
        checked = [r for r in results if r == (False, False)]
        assert len(checked) == 3, results
        assert len(refused) == 17, results
        assert all(r.retry_after >= 1 and "busy" in str(r) for r in refused)
        assert await hashing.verify(encoded, "a long enough passphrase") == (True, False)  # drained: open again
    finally:
        hashing.close()
