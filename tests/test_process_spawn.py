"""How ``ManagedProcess`` starts a child: no Python of the supervisor runs between fork and exec (so a fork while
gRPC channels are busy cannot abort the child), and a killed supervisor still leaves no child behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from stack.info import StackInfo
from stack.process import LAUNCHER, ManagedProcess
from stack.supervisor import SERVICES

ROOT = Path(__file__).resolve().parent.parent
AS_ROOT = os.geteuid() == 0


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    """Not running any more (a zombie waiting for init to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _status(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return line.split(":", 1)[1].strip()
    return ""


# Python code in a forked child: CPython runs os.register_at_fork(after_in_child=...) handlers only when it forks
# for real to run Python there (a preexec_fn); with vfork + exec, none run. The handler tells through a pipe.
_forked_into_python: list[int] = []  # the write end while a test watches, else empty
_told, _tell = os.pipe()
os.set_blocking(_told, False)
os.register_at_fork(after_in_child=lambda: _forked_into_python and os.write(_forked_into_python[0], b"!"))


@contextlib.contextmanager
def _python_in_children() -> Iterator[list[int]]:
    """The number of children that ran Python of this process between fork and exec while the block ran."""
    with contextlib.suppress(BlockingIOError):
        os.read(_told, 4096)
    counted: list[int] = []
    _forked_into_python.append(_tell)
    try:
        yield counted
    finally:
        _forked_into_python.clear()
        with contextlib.suppress(BlockingIOError):
            counted.append(len(os.read(_told, 4096)))
        if not counted:
            counted.append(0)


@pytest.mark.parametrize("user", [None, "nobody"] if AS_ROOT else [None])
def test_no_python_of_the_supervisor_runs_in_a_new_child(tmp_path: Path, user: str | None) -> None:
    child = ManagedProcess("marker", ["/bin/sh", "-c", "echo reached exec"], tmp_path / "child.log", user=user)
    with _python_in_children() as counted:
        child.start()
    assert child.process is not None
    assert child.process.wait(30) == 0, child.tail()
    assert child.tail() == "reached exec"
    assert counted == [0], "the child was forked to run Python before exec (preexec_fn)"
    assert child.process.args[:4] == [sys.executable, "-I", "-S", str(LAUNCHER)]  # it switches users, not Popen


PARENT = """
import sys, time
from pathlib import Path
from stack.process import LAUNCHER, ManagedProcess
child = ManagedProcess("sleeper", ["sleep", "300"], Path(sys.argv[1]), user=sys.argv[2] or None)
child.start()
print(child.pid, flush=True)
time.sleep(300)
"""


@pytest.mark.parametrize("user", [None, "nobody"] if AS_ROOT else [None])
def test_a_killed_supervisor_leaves_no_child_behind(tmp_path: Path, user: str | None) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "child.log"), user or ""], cwd=ROOT, stdout=subprocess.PIPE
    )
    assert parent.stdout is not None
    with parent.stdout:
        child = int(parent.stdout.readline())
    try:
        _wait(lambda: Path(f"/proc/{child}/cmdline").read_bytes() == b"sleep\x00300\x00", "the child executes sleep")
        if user:  # that user alone, with its group alone: not root's
            entry = pwd.getpwnam(user)
            assert _status(child, "Uid").split() == [str(entry.pw_uid)] * 4
            assert _status(child, "Gid").split() == [str(entry.pw_gid)] * 4
            assert _status(child, "Groups") == ""
        parent.kill()
        parent.wait()
        _wait(lambda: _gone(child), f"the child (pid {child}) dies with its killed supervisor")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
        parent.kill()
        parent.wait()


def test_a_child_starts_with_the_signals_a_direct_child_has(tmp_path: Path) -> None:
    """Nothing ignored that exec would carry over (Python, the launcher, ignores SIGPIPE for itself)."""
    show = ["grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"]
    child = ManagedProcess("signals", show, tmp_path / "child.log")
    child.start()
    assert child.process is not None
    assert child.process.wait(30) == 0
    direct = subprocess.run(show, capture_output=True, text=True, check=True).stdout.strip()
    assert child.tail() == direct


def test_the_launcher_starts_nothing_once_its_supervisor_is_gone(tmp_path: Path) -> None:
    """The supervisor may die between fork and the launcher's prctl: then no signal would ever come."""
    marker = tmp_path / "ran"
    not_my_parent = "1"
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(ROOT / "stack" / "launcher.py"), not_my_parent, "-", "-", "--",
         "touch", str(marker)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 125
    assert "is gone" in result.stderr
    assert not marker.exists()


async def _keep_checking(info: StackInfo, service: str, stop: asyncio.Event, busy: asyncio.Event) -> None:
    async with info.channel(service) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while not stop.is_set():
            await asyncio.gather(*(stub.Check(health_pb2.HealthCheckRequest(), timeout=5) for _ in range(4)))
            busy.set()


async def test_restarts_while_grpc_channels_are_busy_all_reach_exec(info: StackInfo, tmp_path: Path) -> None:
    """The supervisor restarts a process while its own health checks are in flight: every restart must execute
    the command (a fork that ran Python in the child sometimes died there of SIGABRT, exit -6)."""
    restarts = 30
    child = ManagedProcess("marker", ["/bin/sh", "-c", "echo reached exec"], tmp_path / "child.log")
    stop, busy = asyncio.Event(), asyncio.Event()
    checks = [asyncio.create_task(_keep_checking(info, s, stop, busy)) for s in (*SERVICES, *SERVICES)]
    endings: list[int] = []
    try:
        await asyncio.wait_for(busy.wait(), 60)  # the checks answer before the first restart
        for _ in range(restarts):
            child.start()  # here, on the event loop's thread, as the supervisor restarts
            assert child.process is not None
            endings.append(await asyncio.to_thread(child.process.wait))
    finally:
        stop.set()
        await asyncio.gather(*checks)
    log = child.log.read_text(errors="replace")
    assert endings == [0] * restarts, f"exit codes {endings}; log:\n{log[-3000:]}"
    assert log.count("reached exec") == restarts


def test_a_command_that_does_not_exist_fails_at_start(tmp_path: Path) -> None:
    """As Popen would: the supervisor's restart loop says it and backs off (it catches OSError)."""
    child = ManagedProcess("missing", ["no-such-command-dinhdanh"], tmp_path / "child.log")
    with pytest.raises(FileNotFoundError):
        child.start()
    assert child.process is None
