"""The throttling policy alone: pure functions, a fake clock (SP 800-63B-4 §3.2.2)."""

from __future__ import annotations

from identity import throttling as t
from identity.throttling import Counter, Factor, Key

ACCOUNT = "001099000001"


def fail(times: int, source: str, familiar: bool, counters: dict | None = None, start: float = 1000.0) -> dict:
    counters = dict(counters or {})
    now = start
    for _ in range(times):
        schedules = t.keys(ACCOUNT, source, Factor.PASSWORD, familiar)
        counters.update(t.after_failure(counters, schedules, now))
        now += 10_000  # far apart: waits never block the next failure here
    return counters


def test_waits_double_after_the_free_failures() -> None:
    schedule = t.PER_SOURCE
    assert [schedule.wait(n) for n in range(4, 10)] == [0, 1, 2, 4, 8, 16]
    assert schedule.wait(40) == 15 * 60


def test_sixth_failure_from_a_source_must_wait_and_says_how_long() -> None:
    schedules = t.keys(ACCOUNT, "attacker", Factor.PASSWORD, familiar=False)
    counters: dict[Key, Counter] = {}
    for _ in range(5):
        assert t.judge(counters, schedules, 1000.0).allowed
        counters.update(t.after_failure(counters, schedules, 1000.0))
    verdict = t.judge(counters, schedules, 1000.0)
    assert not verdict.allowed
    assert verdict.retry_after == 1
    assert t.judge(counters, schedules, 1001.5).allowed


def test_password_and_totp_failures_are_counted_apart() -> None:
    counters = fail(8, "device", familiar=True)
    totp_schedules = t.keys(ACCOUNT, "device", Factor.TOTP, familiar=True)
    assert Key(ACCOUNT, "device", Factor.TOTP) not in counters
    assert t.judge(counters, totp_schedules, 80_000.0 + 1).allowed


def test_unfamiliar_sources_share_a_pool_that_stops_at_50() -> None:
    counters: dict = {}
    for i in range(50):
        counters = fail(1, f"bot-{i}", familiar=False, counters=counters, start=1000.0 + i * 10_000)
    now = 10_000_000.0
    stranger = t.judge(counters, t.keys(ACCOUNT, "bot-new", Factor.PASSWORD, familiar=False), now)
    assert not stranger.allowed
    assert "new devices" in stranger.reason
    citizen = t.judge(counters, t.keys(ACCOUNT, "home-phone", Factor.PASSWORD, familiar=True), now)
    assert citizen.allowed, "an attacker who knows only the ID number must not lock the citizen out"


def test_account_locks_at_100_consecutive_failures() -> None:
    counters = fail(100, "home-phone", familiar=True)
    verdict = t.judge(counters, t.keys(ACCOUNT, "home-phone", Factor.PASSWORD, familiar=True), 10**9)
    assert not verdict.allowed
    assert verdict.retry_after == 0
    assert "locked" in verdict.reason


def test_attackers_alone_cannot_reach_the_account_lock() -> None:
    counters: dict = {}
    now = 1000.0
    for i in range(500):
        schedules = t.keys(ACCOUNT, f"bot-{i}", Factor.PASSWORD, familiar=False)
        if t.judge(counters, schedules, now).allowed:
            counters.update(t.after_failure(counters, schedules, now))
        now += 3600
    assert counters[Key(ACCOUNT, t.ALL, t.ANY_FACTOR)].failures == 50


def test_source_wide_counter_is_forgotten_after_an_hour() -> None:
    counters = {Key(t.ANY_ACCOUNT, "nat", Factor.PASSWORD): Counter(40, 1000.0)}
    schedules = {Key(t.ANY_ACCOUNT, "nat", Factor.PASSWORD): t.SOURCE_WIDE}
    assert not t.judge(counters, schedules, 1030.0).allowed
    assert t.judge(counters, schedules, 1000.0 + 3601).allowed
    after = t.after_failure(counters, schedules, 1000.0 + 3601)
    assert after[Key(t.ANY_ACCOUNT, "nat", Factor.PASSWORD)].failures == 1


def test_an_address_is_never_familiar() -> None:
    """Only a device may skip the strangers' pool; ``ip:`` sources are strangers even after a sign-in."""
    assert t.familiar_eligible("device:abc")
    assert not t.familiar_eligible("ip:198.51.100.7")
    assert Key(ACCOUNT, t.UNFAMILIAR, t.ANY_FACTOR) in t.keys(ACCOUNT, "ip:198.51.100.7", Factor.PASSWORD, True)
    assert Key(ACCOUNT, t.UNFAMILIAR, t.ANY_FACTOR) not in t.keys(ACCOUNT, "device:abc", Factor.PASSWORD, True)


def test_an_admitted_attempt_is_charged_before_it_is_checked_and_holds_the_lease() -> None:
    first = t.admit(ACCOUNT, "device:abc", Factor.PASSWORD, True, {}, 1000.0)
    assert first.verdict.allowed
    own = Key(ACCOUNT, "device:abc", Factor.PASSWORD)
    assert first.charged[own] == Counter(1, 1000.0, 1000.0 + t.LEASE)
    assert first.charged[Key(ACCOUNT, t.ALL, t.ANY_FACTOR)].failures == 1
    second = t.admit(ACCOUNT, "device:abc", Factor.PASSWORD, True, first.charged, 1000.5)
    assert not second.verdict.allowed  # one check at a time per account, source and factor
    assert second.verdict.retry_after == 1
    assert "being checked" in second.verdict.reason
    assert second.charged == {}
    other_factor = t.admit(ACCOUNT, "device:abc", Factor.TOTP, True, first.charged, 1000.5)
    assert other_factor.verdict.allowed
    settled = {**first.charged, own: Counter(1, 1000.0)}  # the failure stays, the lease ended
    assert t.admit(ACCOUNT, "device:abc", Factor.PASSWORD, True, settled, 1000.5).verdict.allowed
    expired = t.admit(ACCOUNT, "device:abc", Factor.PASSWORD, True, first.charged, 1000.0 + t.LEASE + 1)
    assert expired.verdict.allowed  # a lease whose process died ends by itself


def test_a_parallel_attempt_charged_a_moment_later_does_not_make_this_one_wait() -> None:
    """Two attempts from one source in parallel: the one that read the clock first takes the counters' lock
    second, and finds their last failure (the other's charge) a moment after its own ``now``. Below the free
    failures there is no wait, so that must not refuse it ("retry in 1 s" with no failure at all)."""
    schedules = t.keys(ACCOUNT, "office-nat", Factor.PASSWORD, familiar=True)
    other = t.charge({}, t.keys("001099000002", "office-nat", Factor.PASSWORD, True), 1000.2)
    shared = {k: v for k, v in other.items() if k.account == t.ANY_ACCOUNT}
    assert shared
    assert all(c.failures == 1 for c in shared.values())
    assert t.judge(shared, schedules, 1000.0).allowed
