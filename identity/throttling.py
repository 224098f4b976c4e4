"""Throttling of failed authentication, per NIST SP 800-63B-4 §3.2.2 (rate limiting).

Pure policy: counters in, a verdict out; the store keeps the counters. Four counters watch one attempt
at factor F (``password`` or ``totp``) on account A from source S (a device id, or an IP address):

1. ``(A, S, F)`` — this source on this account, this factor. After 5 free failures each further one
   doubles the wait: 1 s, 2 s, 4 s … up to 15 min. Password and TOTP failures are counted apart.
2. ``(*, S, F)`` — this source on any account (password spraying). 20 free failures, then doubling
   waits up to 60 s; forgotten after an hour without failures.
3. ``(A, *unfamiliar)`` — all sources that never completed a sign-in on A, together. 10 free
   failures, then doubling waits up to 15 min; at 50 such failures unfamiliar sources are refused
   until A signs in successfully (from a familiar source) or an operator unlocks it.
4. ``(A, *all)`` — every failure on A. At 100 consecutive failures the account locks (§3.2.2: "no
   more than 100 consecutive failed attempts on a single subscriber account") until an operator
   unlocks it.

Why an attacker who only knows the ID number cannot keep the citizen out: the attacker's sources
are unfamiliar, so together they can spend at most 50 of the 100 failures, and their waits never
touch the citizen's own device, whose counter (1) is separate and which is familiar because it signed
in before. A success from any source clears (1) for that source and (3) and (4) for the account.

Only a device can become familiar, never an address: a source ``ip:<address>`` (what the edge sends
when the browser has no sealed device id) is always a stranger, so whoever shares a citizen's NAT or
ingress cannot spend the account's 100 failures (``familiar_eligible``).

Attempts are charged before they are checked (``admit``): the store locks the counters, asks ``judge``,
and writes ``charge`` in one transaction, so concurrent attempts can never read the same count. The
charge is taken back when the attempt succeeds or ran no check at all; a failure keeps it. Counter (1)
also holds a lease while its attempt is being checked: at most one check runs at a time per account,
source and factor, and a second one is told to retry in a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

ALL = "*all"
UNFAMILIAR = "*unfamiliar"
ANY_ACCOUNT = "*"
ANY_FACTOR = "*"
ADDRESS_PREFIX = "ip:"
LEASE = 30.0  # seconds an admitted attempt holds its source's lease, at most (if its process dies)


class Factor(StrEnum):
    PASSWORD = "password"  # noqa: S105 - a factor name, not a secret
    TOTP = "totp"
    ACTIVATION = "activation"


@dataclass(frozen=True, slots=True)
class Schedule:
    free: int  # failures before any wait
    base: float  # first wait, seconds
    cap: float  # longest wait, seconds
    hard_limit: int | None = None  # failures at which the counter refuses outright
    forget_after: float | None = None  # seconds without failures after which it starts over
    one_at_a_time: bool = False  # an attempt charged here holds a lease until it is settled

    def wait(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return min(self.base * 2 ** (failures - self.free), self.cap)


PER_SOURCE = Schedule(free=5, base=1, cap=15 * 60, one_at_a_time=True)
SOURCE_WIDE = Schedule(free=20, base=1, cap=60, forget_after=3600)
UNFAMILIAR_POOL = Schedule(free=10, base=1, cap=15 * 60, hard_limit=50)
ACCOUNT = Schedule(free=10**9, base=0, cap=0, hard_limit=100)


@dataclass(frozen=True, slots=True)
class Counter:
    failures: int = 0
    last_failure: float = 0.0  # seconds since the epoch
    pending_until: float = 0.0  # an attempt is being checked until then (seconds since the epoch)


@dataclass(frozen=True, slots=True)
class Key:
    account: str
    source: str
    factor: str


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # seconds; 0 with ``allowed`` False means "until unlocked"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: Verdict
    charged: dict[Key, Counter]  # the counters as the admitted attempt leaves them; empty when refused


def familiar_eligible(source: str) -> bool:
    """May a sign-in from ``source`` make it familiar? A device may; an address never."""
    return not source.startswith(ADDRESS_PREFIX)


def keys(account: str, source: str, factor: Factor, familiar: bool) -> dict[Key, Schedule]:
    """The counters an attempt is checked against and charged to."""
    familiar = familiar and familiar_eligible(source)
    counted = {
        Key(account, source, factor): PER_SOURCE,
        Key(ANY_ACCOUNT, source, factor): SOURCE_WIDE,
        Key(account, ALL, ANY_FACTOR): ACCOUNT,
    }
    if not familiar:
        counted[Key(account, UNFAMILIAR, ANY_FACTOR)] = UNFAMILIAR_POOL
    return counted


def effective(counter: Counter, schedule: Schedule, now: float) -> Counter:
    if schedule.forget_after is not None and now - counter.last_failure > schedule.forget_after:
        return Counter()
    return counter


def own(account: str, source: str, factor: Factor) -> Key:
    """The counter of this source on this account and factor (the one that holds the lease)."""
    return Key(account, source, factor)


def judge(counters: dict[Key, Counter], schedules: dict[Key, Schedule], now: float) -> Verdict:
    """May an attempt go ahead now? The most restrictive counter decides."""
    longest = 0.0
    busy = False
    for key, schedule in schedules.items():
        counter = effective(counters.get(key, Counter()), schedule, now)
        busy = busy or (schedule.one_at_a_time and counter.pending_until > now)
        if schedule.hard_limit is not None and counter.failures >= schedule.hard_limit:
            if key.source == ALL:
                return Verdict(False, 0, "account locked after 100 failed attempts; an operator must unlock it")
            return Verdict(
                False,
                0,
                "sign-in from new devices is paused for this account after repeated failures; "
                "sign in from a device you used before, or ask an operator to unlock",
            )
        wait = schedule.wait(counter.failures)
        if wait > 0:  # no wait is no wait: a parallel attempt's charge may carry a ``now`` a moment after ours
            longest = max(longest, counter.last_failure + wait - now)
    if busy:
        return Verdict(False, max(1, math.ceil(longest)), "another attempt from this device is being checked")
    if longest > 0:
        return Verdict(False, math.ceil(longest), "too many failed attempts")
    return Verdict(True)


def after_failure(counters: dict[Key, Counter], schedules: dict[Key, Schedule], now: float) -> dict[Key, Counter]:
    """The counters after one more failure."""
    return {
        key: Counter(effective(counters.get(key, Counter()), schedule, now).failures + 1, now)
        for key, schedule in schedules.items()
    }


def charge(counters: dict[Key, Counter], schedules: dict[Key, Schedule], now: float) -> dict[Key, Counter]:
    """The counters while an admitted attempt is checked: one more failure each, and the lease taken."""
    failed = after_failure(counters, schedules, now)
    return {
        key: Counter(counter.failures, counter.last_failure, now + LEASE if schedules[key].one_at_a_time else 0.0)
        for key, counter in failed.items()
    }


def admit(
    account: str, source: str, factor: Factor, familiar: bool, counters: dict[Key, Counter], now: float
) -> Admission:
    """Judge an attempt on the locked ``counters`` and, when it may go ahead, charge it in advance."""
    schedules = keys(account, source, factor, familiar)
    verdict = judge(counters, schedules, now)
    return Admission(verdict, charge(counters, schedules, now) if verdict.allowed else {})
