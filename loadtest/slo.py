"""Service-level objectives and the verdict of a load test, from Locust's own CSV files (issue 12, item 2).

The objectives: p99 of a sign-in (the whole SSO flow, request ``sign-in``) under 250 ms; p99 of a vault fetch
(``vault.Download``, ``vault.List``) and of a consent fetch (``vault.DownloadShared``) under 100 ms; server
errors (Locust failures: a scenario reports a failure only for what a server must not answer, or a wrong
result) under 0.1 % of all requests.

Two verdicts:

- :func:`day_verdict` reads ``<prefix>_stats.csv`` (cumulative over the run): per SLO class the p99, per
  scenario (actor) its requests, failures and pass/fail. A class's p99 is the largest p99 of its request names:
  an upper bound of the p99 of their union (if at most 1 % of each name is above x, at most 1 % of all is).
- :func:`search_verdict` reads ``<prefix>_stats_history.csv`` (``--csv-full-history``: one row per request
  name and second) and the phases the shape wrote (each step's multiple and wall-clock start and end). A
  step's p99 is the largest of Locust's *current* p99 (its 10-second window) over the rows whose window lies
  inside the step; its errors are the growth of the cumulative counts over the step; its
  achieved rate is the growth of the actors' marker requests (one per iteration, :data:`MARKERS`) over the
  settled window. A step is held when every SLO is met and the achieved rate is at least
  :data:`MIN_ACHIEVED` of the offered one (otherwise the stack, or the load generator, did not keep up), both
  in the CSV and as the shape judged it live when the step ended (the shape stops the search there). The
  search's result is the highest multiple held before the first step that was not, and that step's first
  failing check.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadtest.model import PACE


@dataclass(frozen=True)
class SloClass:
    name: str
    names: tuple[str, ...]
    p99_ms: float


SLO_CLASSES = (
    SloClass("sign-in", ("sign-in",), 250.0),
    SloClass("vault fetch", ("vault.Download", "vault.List"), 100.0),
    SloClass("consent fetch", ("vault.DownloadShared",), 100.0),
)
MAX_ERROR_RATIO = 0.001
"""Server errors: Locust failures over all requests, under 0.1 %."""
SERVER_ERRORS = "server errors"
THROUGHPUT = "offered rate achieved"
MIN_ACHIEVED = 0.8

SCENARIOS: dict[str, tuple[str, ...]] = {
    "sign-in": ("sign-in", "sso.authorize", "sso.login", "sso.totp", "sso.token", "sso.userinfo"),
    "vault": ("vault.List", "vault.Download", "vault.Upload"),
    "agency": ("consent.RequestConsent", "vault.DownloadShared", "agency.token"),
    "applicant": ("issuance.Apply",),
    "facility": ("health.PushVisit",),
    "verifier": ("verify.qr", "verify.page"),
}
"""Request names each scenario (actor) reports; any other name is counted under ``other``."""

MARKERS: dict[str, str] = {
    "sign-in": "sign-in",
    "vault": "vault.List",
    "agency": "vault.DownloadShared",
    "applicant": "issuance.Apply",
    "facility": "health.PushVisit",
    "verifier": "verify.qr",
}
"""The request an actor's scenario reports once per iteration (loadtest/scenarios/: a sign-in, a vault visit's
list, an agency's fetch, an application, a visit, a QR check): its achieved rate. The gRPC users also sign in
once when they start, which adds a few sign-ins at each ramp."""

WINDOW_S = 10.0
"""Locust's current-percentile window (stats.CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW)."""


class VerdictError(ValueError):
    """The CSV files are missing or not Locust's."""


def scenario_of(name: str) -> str:
    for scenario, names in SCENARIOS.items():
        if name in names:
            return scenario
    return "other"


@dataclass(frozen=True)
class Figures:
    """One request name over a span: requests, failures, and its p99 in milliseconds (None: no sample)."""

    requests: int
    failures: int
    p99_ms: float | None


@dataclass(frozen=True)
class Check:
    slo: str
    value: float | None
    threshold: float
    unit: str
    passed: bool

    def shown(self) -> str:
        if self.value is None:
            return "no requests"
        if self.unit == "ratio":
            return f"{self.value:.3%} (< {self.threshold:.1%})"
        if self.unit == "fraction":
            return f"{self.value:.0%} of offered (≥ {self.threshold:.0%})"
        return f"p99 {self.value:.0f} ms (< {self.threshold:.0f} ms)"


def _p99(figures: Mapping[str, Figures], names: Iterable[str]) -> float | None:
    values = [figures[n].p99_ms for n in names if n in figures and figures[n].requests and figures[n].p99_ms]
    present = [n for n in names if n in figures and figures[n].requests]
    if not present:
        return None
    return max(values) if values else 0.0


def judge(figures: Mapping[str, Figures], offered: float | None = None, achieved: float | None = None) -> list[Check]:
    """The SLO checks over one span: each SLO class with requests, the server-error ratio, and (when an offered
    rate is given) the achieved share of it. Shared by the verdicts and the shape's live stop in a search."""
    checks: list[Check] = []
    for slo in SLO_CLASSES:
        p99 = _p99(figures, slo.names)
        if p99 is not None:
            checks.append(Check(slo.name, p99, slo.p99_ms, "ms", p99 < slo.p99_ms))
    requests = sum(f.requests for f in figures.values())
    failures = sum(f.failures for f in figures.values())
    ratio = failures / requests if requests else None
    checks.append(Check(SERVER_ERRORS, ratio, MAX_ERROR_RATIO, "ratio", ratio is not None and ratio < MAX_ERROR_RATIO))
    if offered:
        share = (achieved or 0.0) / offered
        checks.append(Check(THROUGHPUT, share, MIN_ACHIEVED, "fraction", share >= MIN_ACHIEVED))
    return checks


# --- reading Locust's CSV ----------------------------------------------------------------------------------
def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None  # "N/A": no request in the window
    return value if math.isfinite(value) else None


def _rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
            header = rows[0].keys() if rows else next(csv.reader(path.open()), [])
    except FileNotFoundError as error:
        raise VerdictError(f"{path} not found: did Locust run with --csv?") from error
    missing = [column for column in required if column not in header]
    if missing:
        raise VerdictError(f"{path} is not a Locust CSV (no column {', '.join(missing)})")
    return rows


STATS_COLUMNS = ("Type", "Name", "Request Count", "Failure Count", "99%", "Requests/s")
HISTORY_COLUMNS = ("Timestamp", "User Count", "Type", "Name", "Requests/s", "99%", "Total Request Count")


def read_stats(path: Path) -> dict[str, Figures]:
    """``_stats.csv``: per request name (the ``Aggregated`` row left out), over the whole run."""
    out: dict[str, Figures] = {}
    for row in _rows(path, STATS_COLUMNS):
        if row["Name"] == "Aggregated":
            continue
        previous = out.get(row["Name"])  # the same name under two types: add up, keep the larger p99
        figures = Figures(int(row["Request Count"]), int(row["Failure Count"]), _number(row["99%"]))
        if previous:
            p99s = [p for p in (previous.p99_ms, figures.p99_ms) if p is not None]
            figures = Figures(
                previous.requests + figures.requests,
                previous.failures + figures.failures,
                max(p99s) if p99s else None,
            )
        out[row["Name"]] = figures
    return out


@dataclass(frozen=True)
class HistoryRow:
    timestamp: int
    users: int
    name: str
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    total_requests: int
    total_failures: int


def read_history(path: Path) -> list[HistoryRow]:
    """``_stats_history.csv``: one row a second per request name (with ``--csv-full-history``) and the
    ``Aggregated`` row."""
    out = []
    for row in _rows(path, HISTORY_COLUMNS):
        out.append(
            HistoryRow(
                int(row["Timestamp"]),
                int(row["User Count"]),
                row["Name"],
                _number(row["Requests/s"]) or 0.0,
                _number(row.get("50%", "")),
                _number(row.get("95%", "")),
                _number(row["99%"]),
                int(row["Total Request Count"]),
                int(row.get("Total Failure Count") or 0),
            )
        )
    return out


# --- verdicts ----------------------------------------------------------------------------------------------
@dataclass
class ScenarioVerdict:
    scenario: str
    requests: int
    failures: int
    checks: list[Check]
    status: str  # pass | fail | not run

    @property
    def passed(self) -> bool:
        return self.status == "pass"


@dataclass
class DayVerdict:
    scenarios: list[ScenarioVerdict]
    checks: list[Check]  # over all requests
    passed: bool


def day_verdict(stats_csv: Path) -> DayVerdict:
    """Pass/fail per scenario and over the run, from ``_stats.csv``."""
    figures = read_stats(stats_csv)
    scenarios = []
    for scenario in [*SCENARIOS, "other"]:
        own = {n: f for n, f in figures.items() if scenario_of(n) == scenario}
        requests = sum(f.requests for f in own.values())
        if scenario == "other" and not own:
            continue
        if not requests:
            scenarios.append(ScenarioVerdict(scenario, 0, 0, [], "not run"))
            continue
        checks = judge(own)
        status = "pass" if all(c.passed for c in checks) else "fail"
        scenarios.append(ScenarioVerdict(scenario, requests, sum(f.failures for f in own.values()), checks, status))
    overall = judge(figures)
    ran = [s for s in scenarios if s.status != "not run"]
    passed = bool(ran) and all(s.passed for s in ran) and all(c.passed for c in overall)
    return DayVerdict(scenarios, overall, passed)


@dataclass(frozen=True)
class Phase:
    """A span of a run as the shape wrote it: ``day`` or ``step`` (with the multiple of the profile's peak
    rate it offered), from ``start`` to ``end`` (Unix seconds), and the offered iterations a second."""

    kind: str
    multiple: float
    start: float
    end: float
    offered: float
    live: list[str] = field(default_factory=list)  # the checks the shape saw fail live, if any


def read_phases(path: Path) -> list[Phase]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise VerdictError(f"{path} not found: the shape writes it while the search runs") from error
    except json.JSONDecodeError as error:
        raise VerdictError(f"{path} is not JSON: {error}") from error
    return [Phase(**p) for p in data.get("phases", [])]


@dataclass
class StepVerdict:
    multiple: float
    offered: float
    achieved: float | None
    checks: list[Check]
    live: list[str] = field(default_factory=list)  # what the shape saw fail when the step ended

    @property
    def held(self) -> bool:
        return all(c.passed for c in self.checks) and not self.live


@dataclass
class SearchVerdict:
    steps: list[StepVerdict]
    held: float | None  # the highest multiple held (None: not even the first step)
    first_failure: str | None  # "<slo>: <value>" of the first step not held; None if every step held
    failed_multiple: float | None


def settle_seconds(step_seconds: float) -> float:
    """How long a step runs before it is judged: the spawn, the workers' 3 s reports and one 10 s window."""
    return min(15.0, step_seconds / 2)


def _step(rows: list[HistoryRow], phase: Phase) -> StepVerdict:
    by_name: dict[str, list[HistoryRow]] = {}
    for row in rows:
        if row.name != "Aggregated":
            by_name.setdefault(row.name, []).append(row)
    settled = phase.start + settle_seconds(phase.end - phase.start)
    figures: dict[str, Figures] = {}
    achieved_count, span = 0, 0.0
    markers = set(MARKERS.values())
    for name, series in by_name.items():
        before = [r for r in series if r.timestamp <= phase.start]
        inside = [r for r in series if phase.start < r.timestamp <= phase.end]
        if not inside:
            continue
        base = before[-1] if before else None
        requests = inside[-1].total_requests - (base.total_requests if base else 0)
        failures = inside[-1].total_failures - (base.total_failures if base else 0)
        windowed = [r.p99_ms for r in inside if r.timestamp - WINDOW_S >= phase.start and r.p99_ms is not None]
        windowed = windowed or [r.p99_ms for r in inside if r.p99_ms is not None]
        figures[name] = Figures(requests, failures, max(windowed) if windowed else None)
        if name in markers:
            origin = ([r for r in series if r.timestamp <= settled] or [base or inside[0]])[-1]
            achieved_count += inside[-1].total_requests - origin.total_requests
            span = max(span, inside[-1].timestamp - origin.timestamp)
    achieved = achieved_count / span if span > 0 else None
    return StepVerdict(phase.multiple, phase.offered, achieved, judge(figures, phase.offered, achieved), phase.live)


def search_verdict(history_csv: Path, phases_json: Path) -> SearchVerdict:
    """The step search: per step its checks, then the highest multiple held and the first SLO to fail."""
    rows = read_history(history_csv)
    steps = [_step(rows, p) for p in read_phases(phases_json) if p.kind == "step"]
    held, first_failure, failed_multiple = None, None, None
    for step in steps:
        if not step.held:
            failing = next((c for c in step.checks if not c.passed), None)
            first_failure = f"{failing.slo}: {failing.shown()}" if failing else f"{step.live[0]} (seen live)"
            failed_multiple = step.multiple
            break
        held = step.multiple
    return SearchVerdict(steps, held, first_failure, failed_multiple)


def as_dict(verdict: DayVerdict | SearchVerdict) -> dict[str, Any]:
    return asdict(verdict)


def offered_rate(users: float) -> float:
    """Offered iterations a second for a user count (each user paces one iteration every PACE seconds)."""
    return users / PACE
