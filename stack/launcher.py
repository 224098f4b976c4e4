"""The first program every child of the stack runs: it becomes the child's user (if asked), arranges to die with
the supervisor, and then executes the real command in place of itself (same pid).

Why a program, not ``preexec_fn``: Python code between ``fork`` and ``exec`` makes CPython fork for real (and
run its fork handlers, and gRPC's) in a process whose gRPC threads may be busy, which sometimes aborts the child
before it executes (SIGABRT, ``ev_epoll1_linux.cc: Check failed``). Started with no ``preexec_fn`` and no
``user=``, ``subprocess`` uses ``vfork`` + ``exec``: nothing of the supervisor runs in the child; this program
then starts afresh.

Usage: ``python -I -S launcher.py PARENT_PID UID GID -- COMMAND...`` (UID and GID ``-`` to keep them). It only
imports the standard library, so it runs isolated (``-I -S``) from any file path.

Order matters (prctl(2)): the parent-death signal is cleared when the credentials change, so the user is switched
first, then ``PR_SET_PDEATHSIG``, then the parent is checked (it may have died before the prctl: then no signal
would ever come).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import warnings  # noqa: F401 - os.execvp imports it; after the switch the user may not read the standard library

PR_SET_PDEATHSIG = 1
PARENT_GONE = 125  # the supervisor died before the child could tie itself to it: nothing was executed
CANNOT_EXECUTE = 127  # as a shell says for a command it cannot run


def become(uid: int, gid: int) -> None:
    """That user, with its group alone (not the supervisor's groups)."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def die_with(parent: int) -> bool:
    """SIGTERM when ``parent`` dies; ``False`` if it has died already (the child was handed to another)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    return os.getppid() == parent


def restore_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ; an ignored signal stays ignored across exec, so give them back."""
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


def main(args: list[str]) -> int:
    parent, uid, gid, separator, *command = args
    if separator != "--" or not command:
        print("usage: launcher.py PARENT_PID UID GID -- COMMAND...", file=sys.stderr)
        return 2
    if uid != "-":
        become(int(uid), int(gid))
    if not die_with(int(parent)):
        print(f"launcher: the supervisor (pid {parent}) is gone; not starting {command[0]}", file=sys.stderr)
        return PARENT_GONE
    restore_signals()
    try:
        os.execvp(command[0], command)  # noqa: S606 - executing the given command is the launcher's purpose
    except OSError as error:
        print(f"launcher: cannot execute {command[0]}: {error.strerror}", file=sys.stderr)
    return CANNOT_EXECUTE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
