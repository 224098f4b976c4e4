"""Waiting for something to happen in a real process, and reading what its JSON-lines log said.

A wait's bound only keeps a hang finite: nothing here measures speed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


async def until(condition: Callable[[], Any], what: str, timeout: float = 30.0, every: float = 0.1) -> Any:
    """The first truthy value of ``condition`` (a plain or an async callable), polled every ``every`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert loop.time() < end, f"never happened: {what}"
        await asyncio.sleep(every)


def log_events(log: Path, skip: int, event: str, **fields: Any) -> list[dict[str, Any]]:
    """The entries named ``event`` (with these ``fields``) that ``log`` gained after its first ``skip`` lines."""
    found = []
    for line in log.read_text(errors="replace").splitlines()[skip:]:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == event and all(entry.get(k) == v for k, v in fields.items()):
            found.append(entry)
    return found
