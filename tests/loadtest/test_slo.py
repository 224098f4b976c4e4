"""The SLO verdict on recorded Locust 2.47.0 CSVs (issue 12, items 2 and 6): a passing day, a failing one, and
a step search that holds two steps and fails the third. The files in tests/loadtest/data were written by real
Locust runs (master + 2 workers) against the target in data/target.py.txt with data/locustfile.py.txt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest import slo

DATA = Path(__file__).parent / "data"


def _scenario(verdict: slo.DayVerdict, name: str) -> slo.ScenarioVerdict:
    return next(s for s in verdict.scenarios if s.scenario == name)


def test_a_passing_day_passes_every_scenario_that_ran() -> None:
    verdict = slo.day_verdict(DATA / "pass_stats.csv")
    assert verdict.passed
    sign_in, vault = _scenario(verdict, "sign-in"), _scenario(verdict, "vault")
    assert (sign_in.status, sign_in.requests, sign_in.failures) == ("pass", 90, 0)
    assert (vault.status, vault.requests) == ("pass", 60)
    assert [(c.slo, c.value, c.passed) for c in sign_in.checks] == [
        ("sign-in", 45.0, True),
        ("server errors", 0.0, True),
    ]
    assert [c.slo for c in vault.checks] == ["vault fetch", "server errors"]
    assert vault.checks[0].value == 28.0  # the larger p99 of vault.List and vault.Download
    assert _scenario(verdict, "agency").status == "not run"  # no requests: neither pass nor fail
    assert {c.slo for c in verdict.checks} == {"sign-in", "vault fetch", "server errors"}


def test_a_failing_day_names_the_slo_each_scenario_missed() -> None:
    verdict = slo.day_verdict(DATA / "fail_stats.csv")
    assert not verdict.passed
    sign_in, vault = _scenario(verdict, "sign-in"), _scenario(verdict, "vault")
    assert sign_in.status == "fail"
    assert [(c.slo, c.value, c.passed) for c in sign_in.checks] == [
        ("sign-in", 360.0, False),
        ("server errors", 0.0, True),
    ]
    assert (vault.status, vault.requests, vault.failures) == ("fail", 56, 4)
    errors = next(c for c in vault.checks if c.slo == slo.SERVER_ERRORS)
    assert errors.value == pytest.approx(4 / 56)
    assert not errors.passed
    assert next(c for c in vault.checks if c.slo == "vault fetch").passed  # fast, but wrong
    overall = {c.slo: c for c in verdict.checks}
    assert overall[slo.SERVER_ERRORS].value == pytest.approx(4 / 136)
    assert overall["sign-in"].shown() == "p99 360 ms (< 250 ms)"


def test_the_step_search_reports_the_highest_multiple_held_and_the_first_slo_to_fail() -> None:
    verdict = slo.search_verdict(DATA / "search_stats_history.csv", DATA / "search_phases.json")
    assert [s.multiple for s in verdict.steps] == [0.02, 0.04, 0.2]
    assert [s.held for s in verdict.steps] == [True, True, False]
    assert verdict.held == 0.04
    assert verdict.failed_multiple == 0.2
    assert verdict.first_failure == "sign-in: p99 1500 ms (< 250 ms)"
    last = verdict.steps[-1]
    assert last.offered == 65.0
    assert last.achieved == pytest.approx(65, rel=0.1)
    assert {c.slo: c.passed for c in last.checks} == {
        "sign-in": False,
        "vault fetch": False,
        "server errors": True,
        "offered rate achieved": True,
    }
    assert last.live  # the shape saw it fail too, and stopped there


def test_a_step_the_shape_saw_fail_live_is_not_held(tmp_path: Path) -> None:
    phases = json.loads((DATA / "search_phases.json").read_text())
    phases["phases"][1]["live"] = ["offered rate achieved: 70% of offered (≥ 80%)"]
    (tmp_path / "phases.json").write_text(json.dumps(phases))
    verdict = slo.search_verdict(DATA / "search_stats_history.csv", tmp_path / "phases.json")
    assert verdict.held == 0.02
    assert verdict.first_failure == "offered rate achieved: 70% of offered (≥ 80%) (seen live)"


def test_the_judge_shared_with_the_live_shape() -> None:
    figures = {"sign-in": slo.Figures(1000, 0, 240.0), "vault.List": slo.Figures(1000, 2, 120.0)}
    checks = {c.slo: c for c in slo.judge(figures, offered=100.0, achieved=85.0)}
    assert checks["sign-in"].passed
    assert not checks["vault fetch"].passed
    assert checks[slo.SERVER_ERRORS].value == pytest.approx(0.001)
    assert not checks[slo.SERVER_ERRORS].passed
    assert checks[slo.THROUGHPUT].passed
    assert "consent fetch" not in checks  # no consent fetch: no verdict on it
    assert not {c.slo: c for c in slo.judge({})}[slo.SERVER_ERRORS].passed  # no requests is not a pass


def test_files_that_are_not_locust_csv_get_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(slo.VerdictError, match="not found"):
        slo.day_verdict(tmp_path / "none_stats.csv")
    (tmp_path / "x_stats.csv").write_text("a,b\n1,2\n")
    with pytest.raises(slo.VerdictError, match="not a Locust CSV"):
        slo.day_verdict(tmp_path / "x_stats.csv")
    (tmp_path / "p.json").write_text("{")
    with pytest.raises(slo.VerdictError, match="not JSON"):
        slo.search_verdict(DATA / "search_stats_history.csv", tmp_path / "p.json")
