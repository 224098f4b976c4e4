"""The load's schedule over wall-clock time, and the Locust ``LoadTestShape`` that follows it (issue 12, item 2).

**Speedup compresses the clock, not the rate.** With ``speedup`` N the day's curve runs in 24 h / N of wall
time, and at every moment the offered rate is the real-world rate of that time of day: ``--speedup 48`` runs a
whole national day in 30 minutes with the 09:30 peak offered at exactly the national peak rate. The daily
totals are therefore divided by N, the rates are not.

- ``day`` mode: the day's curve (:func:`loadtest.model.curve`, its ``peak``). ``minutes`` bounds the wall time:
  when the compressed day is longer, the run covers the window of the day of that length centred on the peak
  (clamped to the day), so a short run still meets the peak.
- ``search`` mode (a step search): each step offers a multiple of the profile's peak rate (the sum of every
  actor's rate at the curve's peak) for ``step_seconds``, the multiples rising step by step; the shape judges
  each step live when it ends (:func:`loadtest.slo.judge`) and stops after the first step not held. The
  verdict itself is computed afterwards from the CSV files (:func:`loadtest.slo.search_verdict`).

Users are offered iterations a second (``PACE`` 1 s), capped at ``max_users``; ``max_requests`` stops the run
once Locust has counted that many requests. This module imports Locust only inside :func:`shape_class` (Locust
monkey-patches with gevent whatever imports it): the schedule is plain arithmetic, tested in pytest.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadtest import model

PLAN_ENV = "DINHDANH_LOADTEST_PLAN"
"""The environment variable carrying the plan (JSON) from ``loadtest/run.py`` to the master's shape."""

DEFAULT_STEPS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0)


@dataclass(frozen=True)
class Plan:
    mode: str = "day"  # day | search
    profile: str = "national-day"
    speedup: float = 48.0
    peak: float = model.NORMAL_PEAK
    minutes: float | None = None
    steps: tuple[float, ...] = DEFAULT_STEPS
    step_seconds: float = 60.0
    max_users: int = 20_000
    max_requests: int = 20_000_000
    phases_path: str = ""  # where the shape writes the phases it ran (JSON), "" none

    def __post_init__(self) -> None:
        if self.mode not in ("day", "search"):
            raise ValueError(f"mode must be day or search, got {self.mode!r}")
        if self.profile not in model.PROFILES:
            raise ValueError(f"unknown profile {self.profile!r} (known: {', '.join(model.PROFILES)})")
        if not self.speedup >= 1.0:
            raise ValueError(f"speedup must be at least 1, got {self.speedup}")
        model.exponent(self.peak)  # peak ≥ 1
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"minutes must be positive, got {self.minutes}")
        if not self.steps or any(not m > 0 for m in self.steps) or list(self.steps) != sorted(self.steps):
            raise ValueError("steps must be positive multiples in rising order")
        if not self.step_seconds >= 1.0:
            raise ValueError(f"step_seconds must be at least 1, got {self.step_seconds}")
        if self.max_users < 1 or self.max_requests < 1:
            raise ValueError("max_users and max_requests must be positive")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data: dict[str, Any] = json.loads(text)
        data["steps"] = tuple(data.get("steps", DEFAULT_STEPS))
        return cls(**data)


@dataclass(frozen=True)
class Step:
    index: int
    multiple: float
    start: float  # seconds since the run began
    end: float
    users: int


class Schedule:
    """Users at each second of the run, for one plan."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.peak_rate = sum(model.peak_rates(plan.peak).values())
        full = model.SECONDS_PER_DAY / plan.speedup
        self.day_seconds = min(full, plan.minutes * 60.0) if plan.minutes else full
        window_hours = self.day_seconds * plan.speedup / 3600.0
        centred = min(max(model.PEAK_HOUR - window_hours / 2, 0.0), 24.0 - window_hours)
        self.start_hour = 0.0 if window_hours >= 24.0 else centred

    @property
    def duration(self) -> float:
        """Wall seconds the schedule runs (a search stops earlier at the first step not held)."""
        if self.plan.mode == "day":
            return self.day_seconds
        return len(self.plan.steps) * self.plan.step_seconds  # --minutes bounds the day, not the search

    def hour_at(self, elapsed: float) -> float:
        """The time of day (hours) the day mode offers at ``elapsed`` wall seconds."""
        return self.start_hour + elapsed * self.plan.speedup / 3600.0

    def rate_at(self, elapsed: float) -> float:
        """Offered iterations a second, all actors, at ``elapsed`` (real-world rates; None after the end)."""
        if self.plan.mode == "day":
            return sum(model.rates_at(self.hour_at(elapsed), self.plan.peak).values())
        step = self.step_at(elapsed)
        return step.multiple * self.peak_rate if step else 0.0

    def users_at(self, elapsed: float) -> int | None:
        """The user count at ``elapsed`` wall seconds, or None when the schedule is over."""
        if elapsed >= self.duration:
            return None
        return min(self.plan.max_users, round(self.rate_at(elapsed) * model.PACE))

    def step_at(self, elapsed: float) -> Step | None:
        if self.plan.mode != "search" or elapsed >= self.duration or elapsed < 0:
            return None
        index = int(elapsed // self.plan.step_seconds)
        multiple = self.plan.steps[index]
        start = index * self.plan.step_seconds
        users = min(self.plan.max_users, round(multiple * self.peak_rate * model.PACE))
        return Step(index, multiple, start, min(start + self.plan.step_seconds, self.duration), users)

    def steps(self) -> list[Step]:
        out, elapsed = [], 0.0
        while (step := self.step_at(elapsed)) is not None:
            out.append(step)
            elapsed = step.end
        return out


def spawn_rate(users: int) -> float:
    """Users started (or stopped) a second on the way to a new count: the whole change within about a second."""
    return float(max(users, 10))


def shape_class() -> type:
    """The ``LoadTestShape`` for the plan in ``$DINHDANH_LOADTEST_PLAN`` (built here: it imports Locust)."""
    from locust import LoadTestShape

    from loadtest import slo

    class NationalDay(LoadTestShape):
        """Follows :class:`Schedule` for the plan in the environment; writes the phases it ran to
        ``plan.phases_path``; in a search judges each step when it ends and stops after one not held."""

        def __init__(self) -> None:
            super().__init__()
            self.plan = Plan.from_json(os.environ.get(PLAN_ENV) or Plan().to_json())
            self.schedule = Schedule(self.plan)
            self.phases: list[dict[str, Any]] = []
            self.current: Step | None = None
            self.snapshot: dict[str, tuple[int, int]] = {}
            self.settled: dict[str, int] | None = None
            self.settled_at = 0.0
            self.stopped = False

        def _counts(self) -> dict[str, tuple[int, int]]:
            stats = self.runner.stats if self.runner else None
            if stats is None:
                return {}
            return {e.name: (e.num_requests, e.num_failures) for e in stats.entries.values()}

        def _write(self) -> None:
            if self.plan.phases_path:
                tmp = Path(self.plan.phases_path + ".tmp")
                tmp.write_text(json.dumps({"plan": asdict(self.plan), "phases": self.phases}, indent=1))
                tmp.replace(self.plan.phases_path)

        def _open(self, kind: str, multiple: float, offered: float) -> None:
            now = time.time()
            self.phases.append({"kind": kind, "multiple": multiple, "start": now, "end": now, "offered": offered})
            self.snapshot, self.settled = self._counts(), None
            self._write()

        def _close(self) -> list[str]:
            """Ends the open phase; in a search returns the checks it failed live."""
            if not self.phases:
                return []
            phase = self.phases[-1]
            phase["end"] = time.time()
            failed: list[str] = []
            if phase["kind"] == "step" and self.runner is not None:
                failed = self._judge(phase)
                phase["live"] = failed
            self._write()
            return failed

        def _judge(self, phase: dict[str, Any]) -> list[str]:
            counts = self._counts()
            figures = {}
            for entry in self.runner.stats.entries.values():
                requests0, failures0 = self.snapshot.get(entry.name, (0, 0))
                p99 = entry.get_current_response_time_percentile(0.99) if entry.num_requests else None
                figures[entry.name] = slo.Figures(
                    entry.num_requests - requests0, entry.num_failures - failures0, float(p99) if p99 else None
                )
            achieved = None
            if self.settled is not None and time.time() > self.settled_at:
                done = sum(counts.get(m, (0, 0))[0] - self.settled.get(m, 0) for m in slo.MARKERS.values())
                achieved = done / (time.time() - self.settled_at)
            checks = slo.judge(figures, phase["offered"], achieved)
            return [f"{c.slo}: {c.shown()}" for c in checks if not c.passed]

        def tick(self) -> tuple[int, float] | None:
            if self.stopped:
                return None
            elapsed = self.get_run_time()
            total = self.runner.stats.total.num_requests if self.runner else 0
            users = self.schedule.users_at(elapsed)
            if users is None or total >= self.plan.max_requests:
                self._close()
                self.stopped = True
                return None
            if self.plan.mode == "day":
                if not self.phases:
                    self._open("day", self.plan.peak, self.schedule.rate_at(elapsed))
                else:
                    self.phases[-1]["end"] = time.time()
                return users, spawn_rate(users)
            step = self.schedule.step_at(elapsed)
            assert step is not None
            if self.current is None or step.index != self.current.index:
                if self.current is not None and self._close():
                    self.stopped = True  # the previous step was not held: the search is over
                    return None
                self.current = step
                self._open("step", step.multiple, step.users / model.PACE)
            elif self.settled is None and elapsed - step.start >= slo.settle_seconds(step.end - step.start):
                self.settled, self.settled_at = {n: c[0] for n, c in self._counts().items()}, time.time()
            return step.users, spawn_rate(step.users)

    return NationalDay
