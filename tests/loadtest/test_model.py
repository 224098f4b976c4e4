"""The traffic model's arithmetic (issue 12, item 1): daily totals, the curve's average and peak."""

from __future__ import annotations

import pytest

from loadtest import model

STEPS = 86_400  # one sample a second over the day


def _integral(rate_of_hour, steps: int = STEPS) -> float:
    return sum(rate_of_hour((i + 0.5) * 24.0 / steps) for i in range(steps)) * (86_400.0 / steps)


@pytest.mark.parametrize("peak", [model.NORMAL_PEAK, model.DEADLINE_PEAK])
def test_the_curve_averages_one_over_the_day_and_peaks_at_the_peak(peak: float) -> None:
    average = _integral(lambda h: model.curve(h, peak), 24 * 360) / 86_400.0
    assert average == pytest.approx(1.0, abs=2e-3)
    assert max(model.curve(h / 60, peak) for h in range(24 * 60)) == pytest.approx(peak)
    assert model.curve(model.PEAK_HOUR, peak) == pytest.approx(peak)
    assert model.curve(3.0, peak) < 0.05  # nights are quiet


def test_a_flat_day_and_a_peak_below_the_average_are_told_apart() -> None:
    assert model.curve(3.0, 1.0) == 1.0
    with pytest.raises(ValueError, match="at least 1"):
        model.curve(9.0, 0.5)


def test_daily_counts_come_from_the_published_figures() -> None:
    counts = model.daily_counts()
    assert counts["sign-in"] == 1_500_000  # every access to the identity app is one sign-in
    assert counts["vault"] == 1_500_000 * model.VAULT_SHARE
    assert counts["agency"] == 106_000 * model.DOCUMENTS_PER_DOSSIER
    assert counts["applicant"] == 106_000 * model.CERTIFICATE_SHARE
    assert counts["facility"] == 12_000 * model.VISITS_PER_FACILITY_PER_DAY
    assert counts["verifier"] == counts["applicant"] * model.QR_CHECKS_PER_CERTIFICATE
    assert counts["applicant"] <= model.PAYMENTS_PER_DAY  # every certificate pays its fee
    assert set(counts) == set(model.ACTORS)


@pytest.mark.parametrize("peak", [model.NORMAL_PEAK, model.DEADLINE_PEAK])
def test_the_rates_integrate_back_to_the_daily_counts_whatever_the_peak(peak: float) -> None:
    counts = model.daily_counts()
    for actor in ("sign-in", "applicant"):
        total = _integral(lambda h, a=actor: model.rates_at(h, peak)[a], 24 * 360)
        assert total == pytest.approx(counts[actor], rel=2e-3)


def test_average_and_peak_rates() -> None:
    average = model.average_rates()
    assert average["sign-in"] == pytest.approx(1_500_000 / 86_400)
    assert model.peak_rates(10)["sign-in"] == pytest.approx(10 * 1_500_000 / 86_400)
    assert model.PACE == 1.0


def test_weights_follow_the_average_rates() -> None:
    weights = model.weights()
    average = model.average_rates()
    assert all(isinstance(w, int) and w >= 1 for w in weights.values())
    assert weights["sign-in"] / weights["vault"] == pytest.approx(average["sign-in"] / average["vault"], rel=1e-3)
