"""Runs Locust's own master/worker mode against the running stack and judges the run (issue 12, item 2).

One run is up to two Locust runs in ``var/loadtest/<stamp>/``: ``day`` (the national day's curve, compressed
by the speedup) and, with the search, ``search`` (the step search). Each is
``locust -f loadtest/locustfile.py --headless --master --expect-workers N`` plus N
``locust -f … --worker`` processes on this machine (one per core by default), with ``--csv <phase>
--csv-full-history --html <phase>.html --run-time …``; for a distributed run (``distributed``) only the master
starts here, bound to ``master_bind`` (port 5557 unless given), and the workers run elsewhere with the command
line :func:`worker_command` gives; they quit when a run ends, so for the search they must come back (a Kubernetes
Deployment restarts them; elsewhere run them in a loop). Then the verdict (``loadtest/slo.py``) and the PNG
(``loadtest/report.py``).

Traffic goes to loopback only: every address in ``stack.json`` the scenarios dial, and the host, must resolve
to a loopback address, unless ``allow_remote`` says otherwise. Each Locust run is bounded by ``--run-time``
(the schedule plus a margin) and the plan's ``max_requests``; every child process is stopped when the run
ends, fails or is interrupted.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadtest import slo
from loadtest.shape import PLAN_ENV, Plan, Schedule

REPO = Path(__file__).resolve().parent.parent
LOCUSTFILE = REPO / "loadtest" / "locustfile.py"
STACK_ENV = "DINHDANH_LOADTEST_STACK"
ACCOUNTS_ENV = "DINHDANH_LOADTEST_ACCOUNTS"
WORKERS_ENV = "DINHDANH_LOADTEST_WORKERS"  # the scenarios split the prepared accounts between the workers
DISTRIBUTED_PORT = 5557  # Locust's own default, for workers elsewhere when no --master-port is given
MARGIN_S = 30.0
"""--run-time beyond the schedule: the shape stops the run first; this only bounds a run whose shape hangs."""


class RunError(RuntimeError):
    """A load test that cannot start or did not produce its files: one clear line for the operator."""


@dataclass
class Options:
    var: Path
    plan: Plan
    search: bool = True
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    locustfile: Path = LOCUSTFILE
    host: str = ""  # default: the stack's edge (its OIDC issuer)
    allow_remote: bool = False
    distributed: bool = False  # workers run elsewhere: start only the master here
    master_bind: str = "127.0.0.1"
    master_port: int = 0  # 0: a free port
    expect_workers_wait: int = 60
    out: Path | None = None  # default var/loadtest/<stamp>
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class PhaseRun:
    name: str
    prefix: Path
    exit_code: int | None
    seconds: float
    pids: list[int] = field(default_factory=list)  # the processes it started (all ended when it returns)


@dataclass
class Result:
    out: Path
    runs: list[PhaseRun]
    day: slo.DayVerdict | None
    search: slo.SearchVerdict | None
    png: Path | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "runs": [
                {"phase": r.name, "csv": f"{r.prefix}_stats.csv", "html": f"{r.prefix}.html", "exit_code": r.exit_code}
                for r in self.runs
            ],
            "day": slo.as_dict(self.day) if self.day else None,
            "search": slo.as_dict(self.search) if self.search else None,
            "png": str(self.png) if self.png else None,
            "passed": bool(self.day and self.day.passed),
        }


# --- loopback only ------------------------------------------------------------------------------------------
def _host_of(address: str) -> str:
    if "://" in address:
        return urlsplit(address).hostname or ""
    if address.startswith("["):
        return address[1:].split("]")[0]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address (a name is resolved)."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def targets(stack: dict[str, Any], host: str) -> list[str]:
    """Every address the load goes to: the host, the services, the edge and the portals of ``stack.json``."""
    out = [host, *stack.get("services", {}).values()]
    out += [stack.get(k, "") for k in ("oidc_issuer", "demo_portal", "demo_portal_2")]
    return [a for a in out if a]


def check_loopback(addresses: Iterable[str]) -> None:
    remote = sorted({a for a in addresses if not is_loopback(_host_of(a))})
    if remote:
        raise RunError(
            f"refusing to load non-loopback targets {', '.join(remote)} (pass --allow-remote-target to load them)"
        )


# --- processes ----------------------------------------------------------------------------------------------
def locust_binary() -> str:
    beside = Path(sys.executable).parent / "locust"
    found = str(beside) if beside.exists() else shutil.which("locust")
    if not found:
        raise RunError("the locust command is not installed (pip install locust)")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def master_command(options: Options, prefix: Path, run_time: float, host: str, port: int, workers: int) -> list[str]:
    return [
        locust_binary(), "-f", str(options.locustfile), "--headless", "--master",
        "--master-bind-host", options.master_bind, "--master-bind-port", str(port),
        "--expect-workers", str(workers), "--expect-workers-max-wait", str(options.expect_workers_wait),
        "--csv", str(prefix), "--csv-full-history", "--html", f"{prefix}.html",
        "--run-time", f"{max(1, round(run_time))}s", "--stop-timeout", "5", "--host", host,
        "--only-summary", "--exit-code-on-error", "0", "--loglevel", "INFO", "--logfile", f"{prefix}-master.log",
    ]  # fmt: skip


def worker_command(locustfile: Path, master_host: str, port: int, logfile: Path | None = None) -> list[str]:
    """A worker's command line (run it on each load machine of a distributed run, with the same environment)."""
    command = [locust_binary(), "-f", str(locustfile), "--worker", "--master-host", master_host]
    command += ["--master-port", str(port), "--loglevel", "WARNING"]
    return command + (["--logfile", str(logfile)] if logfile else [])


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Ends every child still running: SIGTERM, then SIGKILL after 5 s."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 5.0
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_phase(options: Options, plan: Plan, name: str, out: Path, host: str, env: dict[str, str]) -> PhaseRun:
    """One Locust run (master + workers) of ``plan``; returns when the master has ended and no child is left."""
    prefix = out / name
    schedule = Schedule(plan)
    port = options.master_port or (DISTRIBUTED_PORT if options.distributed else free_port())
    workers = max(1, options.workers)
    run_time = schedule.duration + MARGIN_S
    phase_env = {**env, PLAN_ENV: replace(plan, phases_path=str(out / f"{name}_phases.json")).to_json()}
    processes: list[subprocess.Popen[bytes]] = []
    code: int | None = None
    started = time.monotonic()
    try:
        with open(f"{prefix}-master.out", "wb") as log:
            master = subprocess.Popen(
                master_command(options, prefix, run_time, host, port, workers),
                cwd=REPO,
                env=phase_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(master)
        if not options.distributed:
            for index in range(workers):
                with open(f"{prefix}-worker-{index}.out", "wb") as log:
                    processes.append(
                        subprocess.Popen(
                            worker_command(options.locustfile, "127.0.0.1", port),
                            cwd=REPO,
                            env=phase_env,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
        limit = run_time + options.expect_workers_wait + 30.0
        try:
            code = master.wait(limit)
        except subprocess.TimeoutExpired:
            code = None  # stopped below
        for worker in processes[1:]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(10.0)  # the master tells its workers to quit
    finally:
        _stop(processes)
    if not Path(f"{prefix}_stats.csv").exists():
        tail = _tail(Path(f"{prefix}-master.out"))
        raise RunError(f"Locust wrote no {prefix}_stats.csv (exit {code}): {tail}")
    return PhaseRun(name, prefix, code, time.monotonic() - started, [p.pid for p in processes])


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no output"
    return " | ".join(text[-lines:]) or "no output"


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def environment(options: Options) -> dict[str, str]:
    var = options.var.resolve()
    env = {**os.environ, **options.env}
    env.setdefault(STACK_ENV, str(var / "stack.json"))
    env.setdefault(ACCOUNTS_ENV, str(var / "loadtest" / "accounts.json"))
    env[WORKERS_ENV] = str(max(1, options.workers))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def run(options: Options) -> Result:
    """The day, then (``search``) the step search; the verdicts and the PNG. Raises :class:`RunError`."""
    env = environment(options)
    stack_path = Path(env[STACK_ENV])
    try:
        stack = json.loads(stack_path.read_text())
    except FileNotFoundError as error:
        raise RunError(f"{stack_path} not found: start the platform with `make up` first") from error
    host = options.host or stack.get("oidc_issuer", "")
    if not host:
        raise RunError(f"{stack_path} names no edge (oidc_issuer): pass a host")
    if not options.allow_remote:
        check_loopback(targets(stack, host))
    out = options.out or options.var / "loadtest" / stamp()
    out.mkdir(parents=True, exist_ok=True)
    runs = [run_phase(options, replace(options.plan, mode="day"), "day", out, host, env)]
    if options.search:
        runs.append(run_phase(options, replace(options.plan, mode="search"), "search", out, host, env))
    day = slo.day_verdict(Path(f"{runs[0].prefix}_stats.csv"))
    search = None
    if options.search:
        search = slo.search_verdict(Path(f"{runs[1].prefix}_stats_history.csv"), out / "search_phases.json")
    from loadtest import report  # matplotlib: only once there is something to draw

    png = report.draw([Path(f"{r.prefix}_stats_history.csv") for r in runs], out / "report.png")
    result = Result(out, runs, day, search, png)
    (out / "verdict.json").write_text(json.dumps(result.as_dict(), indent=1, default=str))
    return result
