"""Child processes the stack starts: logs to a file, dies with its parent, stops politely, and is started
again (with back-off) when it dies on its own.

Every child, first start or restart, is started the same way: through ``stack/launcher.py``, which switches to
the child's user, ties the child to this process (``PR_SET_PDEATHSIG``) and executes the command. No Python of
this process runs between fork and exec (no ``preexec_fn``, no ``user=``), so CPython starts it with ``vfork``:
a fork while this process's gRPC channels are busy cannot abort the child before it executes."""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LAUNCHER = Path(__file__).with_name("launcher.py")


def primary_group(user: str | None) -> int | None:
    """Run a child under another user with that user's group alone (not root's groups)."""
    return pwd.getpwnam(user).pw_gid if user else None


def launched(argv: Sequence[str], user: str | None) -> list[str]:
    """``argv`` behind the launcher: as ``user`` (with its group alone), killed (SIGTERM) when this process dies.
    The launcher runs isolated (``-I -S``): it needs the standard library only."""
    uid, gid = ("-", "-")
    if user:
        entry = pwd.getpwnam(user)
        uid, gid = str(entry.pw_uid), str(entry.pw_gid)
    return [sys.executable, "-I", "-S", str(LAUNCHER), str(os.getpid()), uid, gid, "--", *argv]


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.env = dict(env) if env is not None else None
        self.user = user
        self.stop_signal = stop_signal
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or start again) the command; the same path for the first start and every restart."""
        self._check_executable()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                launched(self.argv, self.user),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # Ctrl-C reaches the supervisor, which stops children in order
            )

    def _check_executable(self) -> None:
        """A command that cannot be found fails here, as Popen would (the launcher would only log it)."""
        path = (self.env if self.env is not None else os.environ).get("PATH", os.defpath)
        if shutil.which(self.argv[0], path=path) is None:
            raise FileNotFoundError(errno.ENOENT, "no such executable", self.argv[0])

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def how_it_ended(self) -> str:
        """``exit code 1`` or ``killed by SIGKILL`` (for a process that is no longer alive)."""
        code = self.process.poll() if self.process else None
        if code is None:
            return "still running"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()


@dataclass
class Backoff:
    """Delays between restarts of one process: ``first``, doubling up to ``cap``; a process that stayed up
    for ``calm`` seconds since its last start begins again at ``first``."""

    first: float = 0.5
    cap: float = 30.0
    calm: float = 60.0
    failures: int = 0
    started_at: float = 0.0

    def died(self, now: float) -> None:
        if now - self.started_at >= self.calm:
            self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        return min(self.cap, self.first * 2 ** (self.failures - 1))

    def started(self, now: float) -> None:
        self.started_at = now
