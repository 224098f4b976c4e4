"""The TOTP steps prepared accounts used in recent runs, kept beside ``accounts.json`` (no Locust, no gevent here:
``loadtest/prepare.py`` reads them too).

A code works once, for a step after the last one the account used (identity/totp.py ``matching_step``). Each
Locust process writes, at the end of its run, the last step of every account it signed in with to
``<accounts>.steps/<pid>.json`` (0600); whoever hands accounts out next reads the highest step per account, so a
run started right after another never replays a code. A file older than :data:`KEPT` seconds only holds steps no
code can use any more: it is ignored and removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

KEPT = 120.0


def folder(accounts: Path) -> Path:
    return accounts.with_name(accounts.name + ".steps")


def remembered(accounts: Path, now: float | None = None) -> dict[str, int]:
    """The highest step each account used in recent runs."""
    found: dict[str, int] = {}
    where = folder(accounts)
    now = time.time() if now is None else now
    for file in where.glob("*.json") if where.is_dir() else ():
        try:
            if now - file.stat().st_mtime > KEPT:
                file.unlink()
                continue
            for id_number, step in json.loads(file.read_text()).items():
                found[str(id_number)] = max(found.get(str(id_number), 0), int(step))
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    return found


def save(accounts: Path, used: dict[str, int], name: str | None = None) -> None:
    """Write ``used`` (ID number → last step) as this process's file (best effort: a failure only costs a wait)."""
    where = folder(accounts)
    with contextlib.suppress(OSError):
        where.mkdir(mode=0o700, exist_ok=True)
        target = where / f"{name or os.getpid()}.json"
        tmp = target.with_name(target.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(used, out)
        tmp.replace(target)
