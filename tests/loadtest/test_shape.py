"""The load's schedule (issue 12, item 2): speedup compresses the clock, not the rate; --minutes bounds it; the
step search raises a multiple of the profile's peak rate."""

from __future__ import annotations

import pytest

from loadtest import model
from loadtest.shape import Plan, Schedule


def test_speedup_runs_the_day_in_a_fraction_of_the_wall_time_at_real_world_rates() -> None:
    schedule = Schedule(Plan(speedup=48, peak=5))
    assert schedule.duration == 1800.0  # 24 h / 48
    peak_total = sum(model.peak_rates(5).values())
    assert schedule.rate_at(9.5 * 3600 / 48) == pytest.approx(peak_total)  # 09:30 of the day, at the peak rate
    assert schedule.users_at(9.5 * 3600 / 48) == round(peak_total)
    assert schedule.users_at(1800.0) is None  # the day is over
    slower = Schedule(Plan(speedup=1, peak=5))
    assert slower.rate_at(9.5 * 3600) == pytest.approx(peak_total)  # same rate, 48 times longer
    assert slower.duration == 86_400.0


def test_offered_users_integrate_to_the_daily_total_over_the_speedup() -> None:
    schedule = Schedule(Plan(speedup=480, peak=10))
    offered = sum(schedule.rate_at(t + 0.5) for t in range(int(schedule.duration)))
    assert offered == pytest.approx(sum(model.daily_counts().values()) / 480, rel=5e-3)


def test_minutes_bound_the_run_to_a_window_around_the_peak() -> None:
    schedule = Schedule(Plan(speedup=48, minutes=2))
    assert schedule.duration == 120.0
    window_hours = 120 * 48 / 3600
    assert schedule.start_hour == pytest.approx(model.PEAK_HOUR - window_hours / 2)
    assert schedule.hour_at(60.0) == pytest.approx(model.PEAK_HOUR)
    assert schedule.users_at(119.0) is not None
    assert schedule.users_at(120.0) is None
    assert Schedule(Plan(speedup=48, minutes=60)).duration == 1800.0  # a bound longer than the day changes nothing


def test_max_users_caps_the_offered_load() -> None:
    schedule = Schedule(Plan(speedup=48, peak=10, max_users=7))
    assert schedule.users_at(9.5 * 3600 / 48) == 7


def test_the_step_search_raises_a_multiple_of_the_peak_rate_step_by_step() -> None:
    plan = Plan(mode="search", peak=10, steps=(0.5, 1.0, 2.0), step_seconds=30)
    schedule = Schedule(plan)
    peak_total = sum(model.peak_rates(10).values())
    steps = schedule.steps()
    assert [s.multiple for s in steps] == [0.5, 1.0, 2.0]
    assert [(s.start, s.end) for s in steps] == [(0, 30), (30, 60), (60, 90)]
    assert [s.users for s in steps] == [round(m * peak_total) for m in (0.5, 1.0, 2.0)]
    assert schedule.users_at(45.0) == round(peak_total)
    assert schedule.users_at(90.0) is None
    assert Schedule(Plan(mode="search", steps=(1.0, 2.0), step_seconds=60, minutes=0.5)).duration == 120.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode": "week"}, "mode"),
        ({"profile": "national-year"}, "unknown profile"),
        ({"speedup": 0}, "speedup"),
        ({"peak": 0.5}, "peak"),
        ({"minutes": 0}, "minutes"),
        ({"steps": (2.0, 1.0)}, "rising"),
        ({"max_users": 0}, "positive"),
    ],
)
def test_a_bad_plan_is_refused_clearly(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Plan(**fields)


def test_the_plan_travels_as_json() -> None:
    plan = Plan(mode="search", speedup=96, peak=10, minutes=3, steps=(1.0, 2.0), phases_path="var/x.json")
    assert Plan.from_json(plan.to_json()) == plan
