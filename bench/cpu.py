"""Where the CPU goes during a benchmark: seconds per process group, from /proc (psutil)."""

from __future__ import annotations

import os
from collections.abc import Callable

import psutil

Classifier = Callable[[psutil.Process], str | None]


def platform_groups(proc: psutil.Process) -> str | None:
    """Name the platform's processes: each service, its hash workers, PostgreSQL, SeaweedFS, this client."""
    if proc.pid == os.getpid():
        return "load generator (this process)"
    try:
        cmd = proc.cmdline()
        name = proc.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    if name == "postgres":
        return "postgresql"
    if name == "weed":
        return "seaweedfs"
    module = cmd[cmd.index("-m") + 1] if "-m" in cmd[:-1] else ""
    if module == "services":
        return f"service {cmd[-1]}"
    if module == "services.edge":
        return "edge (HTTP)"
    if module == "portal":
        return "demo portal"
    if any("multiprocessing" in part for part in cmd):
        parent = proc.parent()
        if parent is not None and parent.pid != os.getpid():
            owner = platform_groups(parent)
            return f"{owner}: worker pool" if owner else None
    return None


class CpuMeter:
    """Snapshots CPU times before and after; reports seconds per group."""

    def __init__(self, classify: Classifier = platform_groups) -> None:
        self._classify = classify
        self._start = self._snapshot()

    def _snapshot(self) -> dict[int, tuple[str, float]]:
        seen: dict[int, tuple[str, float]] = {}
        for proc in psutil.process_iter():
            group = self._classify(proc)
            if group is None:
                continue
            try:
                times = proc.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            seen[proc.pid] = (group, times.user + times.system)
        return seen

    def seconds(self) -> dict[str, float]:
        end = self._snapshot()
        totals: dict[str, float] = {}
        for pid, (group, cpu) in end.items():
            before = self._start.get(pid, (group, 0.0))[1]
            totals[group] = totals.get(group, 0.0) + max(0.0, cpu - before)
        return {group: round(value, 2) for group, value in sorted(totals.items(), key=lambda kv: -kv[1])}
