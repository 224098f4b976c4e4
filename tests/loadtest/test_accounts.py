"""The accounts' hand-out of the load test (loadtest/accounts.py, loadtest/steps.py): a TOTP code is never used
twice — one sign-in per account per 30-second step, disjoint shares per worker process, steps kept between runs.
Pure logic, no stack."""

from __future__ import annotations

import os
import time
from pathlib import Path

from identity import totp
from loadtest import steps
from loadtest.accounts import Account, AccountPool, share_of

SECRET = totp.new_secret()
T0 = 63_333_333 * 30.0  # the start of a step


def pool(count: int, last_step: int = 0) -> AccountPool:
    return AccountPool([Account(f"0790000000{i:02d}", "pw", SECRET, last_step) for i in range(count)])


def test_each_account_signs_in_once_a_step_with_the_next_steps_code() -> None:
    accounts = pool(2)
    step = totp.current_step(T0)
    first, second = accounts.take(T0), accounts.take(T0 + 5)
    assert first is not None
    assert second is not None
    assert {first[0].id_number, second[0].id_number} == {"079000000000", "079000000001"}
    assert first[1] == totp.code_at(SECRET, (step + 1) * totp.STEP)
    assert accounts.take(T0 + 29) is None  # both signed in during this step
    again = accounts.take(T0 + totp.STEP)
    assert again is not None
    assert again[0] is first[0]
    assert again[1] == totp.code_at(SECRET, (step + 2) * totp.STEP)  # a later step than the one it used
    assert totp.matching_step(SECRET, again[1], first[0].last_step - 1, T0 + totp.STEP) == step + 2


def test_an_account_that_used_a_later_step_waits_for_it() -> None:
    step = totp.current_step(T0)
    assert pool(1, last_step=step + 1).take(T0) is None
    assert pool(1, last_step=step).take(T0) is not None


def test_worker_processes_get_disjoint_shares() -> None:
    rows = list(range(10))
    shares = [share_of(rows, index, 3) for index in range(3)]
    assert sorted(x for share in shares for x in share) == rows
    assert not set(shares[0]) & set(shares[1])


def test_steps_are_remembered_between_runs_and_stale_files_dropped(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.json"
    steps.save(accounts, {"079000000000": 10, "079000000001": 12}, name="a")
    steps.save(accounts, {"079000000000": 11}, name="b")
    assert steps.remembered(accounts) == {"079000000000": 11, "079000000001": 12}
    old = steps.folder(accounts) / "a.json"
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert steps.remembered(accounts) == {"079000000000": 11}
    assert not old.exists()
    assert oct((steps.folder(accounts) / "b.json").stat().st_mode & 0o777) == "0o600"
