"""Every Locust scenario runs for a few seconds against a stack with zero failures (issue 12 item 6).

The stack is this module's own, started as the benchmark's is (``DINHDANH_TRUSTED_PROXIES=127.0.0.1/32``: each
virtual citizen's ``X-Forwarded-For`` is its address): on the session stack the other tests' deliberate failures
from 127.0.0.1 had spent that address's device ids and its source-wide failure budget, and a load-test sign-in
from it was rightly throttled (429) in a clean-clone run.

``loadtest.prepare.prepare`` makes a few accounts, consents, a certificate; then the real ``locust`` runs headless in
a subprocess (gevent must never be imported into pytest) with one user of every class, and its CSV must show
every request name of the contract with a count above zero and no failure at all.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from loadtest.prepare import PrepareError, prepare
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import own_stack

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {
    ("flow", "sign-in"),
    ("HTTP", "sso.authorize"),
    ("HTTP", "sso.login"),
    ("HTTP", "sso.totp"),
    ("HTTP", "sso.token"),
    ("HTTP", "sso.userinfo"),
    ("gRPC", "vault.List"),
    ("gRPC", "vault.Download"),
    ("gRPC", "vault.Upload"),
    ("gRPC", "consent.RequestConsent"),
    ("gRPC", "vault.DownloadShared"),
    ("gRPC", "issuance.Apply"),
    ("gRPC", "health.PushVisit"),
    ("HTTP", "verify.qr"),
}
LOCUSTFILE = "from loadtest.scenarios import USERS  # noqa: F401\nfrom loadtest.scenarios import *  # noqa: F403\n"
RUN_SECONDS = 8
SEEDED = 60
TRUSTED = "DINHDANH_TRUSTED_PROXIES"


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """A stack of this module's own whose edge believes the load generator's forwarded addresses."""
    before = os.environ.get(TRUSTED)
    os.environ[TRUSTED] = "127.0.0.1/32"
    try:
        async with own_stack(tmp_path_factory.mktemp("loadtest-var"), SEEDED) as running:
            _restore(before)  # every process has it by now; stacks started later must not
            yield running
    finally:
        _restore(before)


@pytest.fixture(scope="module")
def info(stack: Stack) -> StackInfo:
    return StackInfo.load(stack.info_path)


def _restore(before: str | None) -> None:
    if before is None:
        os.environ.pop(TRUSTED, None)
    else:
        os.environ[TRUSTED] = before


def stats(prefix: Path) -> dict[tuple[str, str], dict[str, str]]:
    """Locust's ``<prefix>_stats.csv`` by (request type, name), without the Aggregated row."""
    with open(f"{prefix}_stats.csv", newline="") as f:
        return {(r["Type"], r["Name"]): r for r in csv.DictReader(f) if r["Name"] != "Aggregated"}


def failures(prefix: Path) -> str:
    path = Path(f"{prefix}_failures.csv")
    return path.read_text() if path.exists() else ""


async def test_prepare_then_every_scenario_runs_with_zero_failures(stack: Stack, info: StackInfo,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    accounts = await prepare(info, tmp_path / "accounts.json", citizens=14, consents=3, certificates=1, patients=20,
                             var=stack.var)  # fmt: skip
    assert stat.S_IMODE(accounts.stat().st_mode) == 0o600
    data = json.loads(accounts.read_text())
    assert len(data["citizens"]) == 14
    assert all(c["totp_secret"] and c["password"] for c in data["citizens"])
    assert len(data["consents"]) == 3
    assert len(data["certificates"]) == 1
    assert data["certificates"][0]["qr_text"].startswith("VN1:")
    assert "access_token" not in accounts.read_text()  # a user signs in when it starts

    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    prefix = tmp_path / "run"
    env = {**os.environ, "DINHDANH_LOADTEST_ACCOUNTS": str(accounts), "DINHDANH_LOADTEST_STACK": str(stack.info_path),
           "DINHDANH_LOADTEST_WORKERS": "1", "PYTHONPATH": str(ROOT)}  # fmt: skip
    command = [str(Path(sys.executable).with_name("locust")), "-f", str(locustfile), "--headless", "--users", "6",
               "--spawn-rate", "6", "--run-time", f"{RUN_SECONDS}s", "--stop-timeout", "10", "--csv", str(prefix),
               "--only-summary", "--loglevel", "WARNING"]  # fmt: skip
    process = await asyncio.create_subprocess_exec(*command, cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)  # fmt: skip
    output = (await asyncio.wait_for(process.communicate(), timeout=120))[0].decode(errors="replace")
    rows = stats(prefix)
    counts = {key: int(row["Request Count"]) for key, row in rows.items()}
    missing = sorted(f"{t}/{n}" for t, n in EXPECTED if counts.get((t, n), 0) == 0)
    assert not missing, f"no requests for {missing}\n{output[-4000:]}"
    failed = {f"{t}/{n}": row["Failure Count"] for (t, n), row in rows.items() if int(row["Failure Count"])}
    assert not failed, f"failures {failed}\n{failures(prefix)}\n{output[-4000:]}"
    assert process.returncode == 0, output[-4000:]
    steps = accounts.with_name(accounts.name + ".steps")
    assert list(steps.glob("*.json")), "the run remembers the TOTP steps it used"


async def test_prepare_says_when_the_registry_has_too_few_citizens(stack: Stack, info: StackInfo,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    with pytest.raises(PrepareError, match="registry seed"):
        await prepare(info, tmp_path / "accounts.json", citizens=100_000, consents=0, certificates=0, var=stack.var)
    assert not (tmp_path / "accounts.json").exists()
