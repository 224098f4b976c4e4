"""The prepared accounts as Locust's processes use them: loaded once per process, handed out so that a TOTP code is
never used twice (issue 12 item 1: "TOTP codes are never reused within a step"). No Locust or gevent here.

``DINHDANH_LOADTEST_ACCOUNTS`` names ``accounts.json`` (``loadtest/prepare.py``), ``DINHDANH_LOADTEST_STACK`` the
stack's ``stack.json``. Both are read once per process.

**TOTP.** The identity service accepts a code of the step before, the current one or the next, and only for a step
after the last one the account used (``identity.totp.matching_step``, replay resistance of SP 800-63B-4 §3.1.4.2).
An account signs in at most once per 30-second step: :class:`AccountPool` hands out an account at step ``t`` only
when the last step it used is at most ``t`` and gives it the code of step ``t + 1`` (accepted now, and never used
before), then puts it at the back of the queue. When every account of the process signed in during this step the
user waits for the next step (a warning is logged once: prepare more citizens) — the sign-in rate a run can
sustain is ``citizens / 30`` per second over all processes.

**Processes.** Each Locust process uses its own share of the accounts: the ``i``-th account goes to worker
``i % workers`` (``workers`` from ``DINHDANH_LOADTEST_WORKERS``, the number of worker processes, default 1; the
index is ``environment.runner.worker_index``), so two processes never hold the same account. Every user class of
a process draws from the same pool.

**Between runs.** The last step each account used is written at the end of a run to ``<accounts>.steps/<pid>.json``
and read when a process starts (loadtest/steps.py), so a run started right after another never replays a code.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from identity import totp
from loadtest.steps import remembered, save
from stack.info import StackInfo

ACCOUNTS_ENV = "DINHDANH_LOADTEST_ACCOUNTS"
STACK_ENV = "DINHDANH_LOADTEST_STACK"
WORKERS_ENV = "DINHDANH_LOADTEST_WORKERS"
log = logging.getLogger("loadtest")


class NotPrepared(RuntimeError):
    """The env variables do not name a prepared accounts file and a stack."""


@dataclass
class Account:
    id_number: str
    password: str
    totp_secret: str
    last_step: int = 0
    device_cookie: str = ""  # the edge's sealed device id cookie, kept as a returning citizen's browser keeps it


@dataclass
class Prepared:
    data: dict[str, Any]
    info: StackInfo
    path: Path

    @property
    def client(self) -> dict[str, Any]:
        return dict(self.data["client"])

    def share(self, key: str, index: int, workers: int) -> list[Any]:
        """This process's share of the list ``key`` (every ``workers``-th item from ``index``; all when fewer)."""
        items = list(self.data.get(key) or [])
        mine = items[index::workers] if workers > 1 else items
        return mine or items  # fewer items than processes: share rather than starve (not for accounts)


def _path(env: str) -> Path:
    value = os.environ.get(env, "")
    if not value:
        raise NotPrepared(f"{env} is not set: run `dinhdanh loadtest prepare` and point {env} at its file")
    path = Path(value)
    if not path.is_file():
        raise NotPrepared(f"{env}: {path} does not exist")
    return path


@lru_cache(maxsize=1)
def prepared() -> Prepared:
    """``accounts.json`` and ``stack.json``, once per process."""
    path = _path(ACCOUNTS_ENV)
    data = json.loads(path.read_text())
    return Prepared(data, StackInfo.load(_path(STACK_ENV)), path)


def process_slot(environment: Any) -> tuple[int, int]:
    """(this process's worker index, the number of worker processes)."""
    try:
        workers = max(1, int(os.environ.get(WORKERS_ENV, "1") or "1"))
    except ValueError:
        raise NotPrepared(f"{WORKERS_ENV} must be a whole number of worker processes") from None
    runner = getattr(environment, "runner", None)
    index = max(0, int(getattr(runner, "worker_index", 0) or 0))
    return index % workers, workers


def share_of(rows: list[Any], index: int, workers: int) -> list[Any]:
    """The accounts of worker ``index`` of ``workers``: every ``workers``-th from ``index`` (disjoint shares)."""
    return rows[index::workers]


@dataclass
class AccountPool:
    """This process's accounts, each signing in at most once per TOTP step (see the module docstring)."""

    accounts: list[Account]
    queue: collections.deque[Account] = field(default_factory=collections.deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    warned: bool = False

    def __post_init__(self) -> None:
        self.queue.extend(sorted(self.accounts, key=lambda a: a.last_step))

    def take(self, now: float | None = None) -> tuple[Account, str] | None:
        """An account free in this step and the code it signs in with (the next step's), or None (all used)."""
        step = totp.current_step(now)
        with self.lock:
            if not self.queue or self.queue[0].last_step > step:
                if not self.warned:
                    self.warned = True
                    log.warning("every prepared account of this process signed in during this TOTP step; "
                                "prepare more citizens for this rate (one sign-in per account per 30 s)")  # fmt: skip
                return None
            account = self.queue.popleft()
            account.last_step = step + 1
            self.queue.append(account)
        return account, totp.code_at(account.totp_secret, (step + 1) * totp.STEP)

    def wait_take(self, give_up: float = 35.0) -> tuple[Account, str]:
        """:meth:`take`, sleeping (a gevent sleep under Locust) until the next step when every account is used."""
        deadline = time.time() + give_up
        while True:
            taken = self.take()
            if taken is not None:
                return taken
            if time.time() > deadline:
                raise NotPrepared("no prepared account is free to sign in: prepare more citizens")
            time.sleep(min(1.0, max(0.05, totp.STEP - time.time() % totp.STEP)))

    def used_steps(self) -> dict[str, int]:
        return {a.id_number: a.last_step for a in self.accounts if a.last_step}


_pool_lock = threading.Lock()
_pools: dict[tuple[int, int], AccountPool] = {}


def account_pool(environment: Any) -> AccountPool:
    """This process's pool (made on first use, once the worker knows its index)."""
    slot = process_slot(environment)
    with _pool_lock:
        pool = _pools.get(slot)
        if pool is None:
            ready = prepared()
            steps = remembered(ready.path)
            rows = list(ready.data.get("citizens") or [])
            mine = share_of(rows, *slot)
            if not mine:
                raise NotPrepared(f"{len(rows)} prepared citizens for {slot[1]} worker processes: prepare more")
            accounts = [
                Account(
                    r["id_number"],
                    r["password"],
                    r["totp_secret"],
                    max(int(r.get("last_step", 0)), steps.get(r["id_number"], 0)),
                )
                for r in mine
            ]
            pool = _pools[slot] = AccountPool(accounts)
        return pool


def save_all_steps() -> None:
    """At the end of a run: every pool of this process writes the steps it used."""
    with _pool_lock:
        pools = list(_pools.values())
    if pools:
        used: dict[str, int] = {}
        for pool in pools:
            used.update(pool.used_steps())
        save(prepared().path, used)
