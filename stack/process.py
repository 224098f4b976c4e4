"""Child processes the stack starts: logs to a file, dies with its parent, stops politely, and is started
again (with back-off) when it dies on its own."""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def primary_group(user: str | None) -> int | None:
    """Run a child under another user with that user's group alone (not root's groups)."""
    return pwd.getpwnam(user).pw_gid if user else None


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
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                user=self.user,
                group=primary_group(self.user),
                extra_groups=[] if self.user else None,
                preexec_fn=_die_with_parent,
                start_new_session=True,  # Ctrl-C reaches the supervisor, which stops children in order
            )

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
