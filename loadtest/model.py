"""The traffic model of a national day (issue 12, item 1): published figures turned into a rate per actor.

Published figures (the national public-service portal and the national identity app, daily averages):

- ``DOSSIERS_PER_DAY`` = 106,000 online dossiers a day on the national portal;
- ``PAYMENTS_PER_DAY`` = 50,000 online payments a day on the national portal;
- ``IDENTITY_ACCESSES_PER_DAY`` = 1,500,000 accesses a day to the identity app.

Everything else is an assumption of this model, stated where it is made (the constants below). An *actor* is
one Locust user class (``loadtest/scenarios/``, class attribute ``actor``); one *iteration* of its scenario is
one unit of the actor's daily count (one sign-in, one vault visit, one agency fetch, one application, one
visit push, one QR check). Every user waits ``constant_pacing(PACE)``: a user offers one iteration every
``PACE`` seconds, so the number of users of an actor *is* its offered rate (iterations per second).

All actors follow the same office-hours curve (:func:`curve`): its 24-hour average is 1, so integrating an
actor's rate over a day gives back its daily count whatever the peak; ``peak`` is the curve's maximum, a
multiple of the 24-hour average (5 on a normal day, 10 on a deadline day, ``--peak``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

PACE = 1.0
"""Seconds between the starts of two iterations of one user (``constant_pacing(PACE)``): users = rate × PACE."""

SECONDS_PER_DAY = 86_400.0

# --- published figures --------------------------------------------------------------------------------------
DOSSIERS_PER_DAY = 106_000
PAYMENTS_PER_DAY = 50_000
IDENTITY_ACCESSES_PER_DAY = 1_500_000

# --- assumptions -------------------------------------------------------------------------------------------
SIGN_IN_SHARE = 1.0
"""Every access to the identity app is one SSO sign-in (authorize → login → TOTP → code → token → userinfo).
Portal sign-ins for the 106,000 dossiers go through the same identity provider and are counted among the
1.5 million accesses, not added to them."""

VAULT_SHARE = 0.30
"""Share of identity accesses that go on to browse the vault (list the documents, download one; now and then
upload): 30 % — the rest check a card, a notification or a profile only."""

DOCUMENTS_PER_DOSSIER = 2.0
"""Documents an agency fetches from the citizen's vault per online dossier, each under a consent (request the
consent, fetch with the bound consent token): 2 (an identity-card copy and one supporting document)."""

CERTIFICATE_SHARE = 0.10
"""Share of online dossiers that are certificate applications handled by issuance (criminal-record
certificates): 10 %, 10,600 a day."""

FACILITIES = 12_000
"""Health facilities connected to the platform (hospitals and clinics checking patients in with the card)."""

VISITS_PER_FACILITY_PER_DAY = 50.0
"""Visits each facility pushes a day (one ``health.PushVisit`` each): 50, so 600,000 a day."""

QR_CHECKS_PER_CERTIFICATE = 3.0
"""Times an issued certificate's QR code is checked by a verifier (an employer, a bank, an agency): 3."""

PAYMENTS_MODEL = (
    "Payments are not a separate system or actor: a payment is the fee recorded with a dossier. Of the 50,000 "
    "online payments a day, the certificate applications (10,600, every one of them pays its fee) record their "
    "fee inside issuance.Apply, so they are part of the applicant's load; the other payments belong to dossiers "
    "of other agencies' systems and are handled by the national payment platform, not by this platform."
)

ACTORS = ("sign-in", "vault", "agency", "applicant", "facility", "verifier")


def daily_counts() -> dict[str, float]:
    """Iterations per day per actor on a national day (the published figures times the assumptions above)."""
    certificates = DOSSIERS_PER_DAY * CERTIFICATE_SHARE
    counts = {
        "sign-in": IDENTITY_ACCESSES_PER_DAY * SIGN_IN_SHARE,
        "vault": IDENTITY_ACCESSES_PER_DAY * VAULT_SHARE,
        "agency": DOSSIERS_PER_DAY * DOCUMENTS_PER_DOSSIER,
        "applicant": certificates,
        "facility": FACILITIES * VISITS_PER_FACILITY_PER_DAY,
        "verifier": certificates * QR_CHECKS_PER_CERTIFICATE,
    }
    if certificates > PAYMENTS_PER_DAY:  # every certificate application pays: they cannot outnumber payments
        raise ValueError("more certificate applications than payments: the model's assumptions disagree")
    return counts


def average_rates() -> dict[str, float]:
    """Iterations per second per actor averaged over 24 hours."""
    return {actor: count / SECONDS_PER_DAY for actor, count in daily_counts().items()}


# --- the daily curve ----------------------------------------------------------------------------------------
OFFICE_HOURS = (
    0.010, 0.005, 0.005, 0.005, 0.010, 0.020, 0.050, 0.150, 0.450, 1.000, 1.000, 0.550,
    0.200, 0.300, 0.550, 0.500, 0.350, 0.200, 0.120, 0.100, 0.080, 0.050, 0.030, 0.020,
)  # fmt: skip
"""Relative activity at the start of each hour (0–23, local time), linear in between and back to hour 0 at
midnight: quiet nights, a morning rise from 07:00 to the 09:00–10:00 plateau (the peak: offices open and
citizens file before work), a lunch dip at 12:00, a lower afternoon hump at 14:00–15:00, an evening tail of
people on their phones. The curve is this activity to the power k that makes its 24-hour average 1 for the
chosen peak (:func:`exponent`): k ≈ 1.25 on a normal day (peak 5), about 3 on a deadline day (peak 10), whose
traffic crowds into the morning plateau."""

PEAK_HOUR = 9.5
"""Middle of the plateau where the curve is at its maximum (09:00–10:00)."""

NORMAL_PEAK = 5.0
DEADLINE_PEAK = 10.0
_SAMPLES = 24 * 60  # minutes: the curve is integrated exactly on this grid (linear pieces, midpoint of a power)


def _activity(hour: float) -> float:
    hour %= 24.0
    index = int(hour)
    low, high = OFFICE_HOURS[index], OFFICE_HOURS[(index + 1) % 24]
    return low + (high - low) * (hour - index)


def _mean_power(exponent: float) -> float:
    return sum(_activity((i + 0.5) * 24.0 / _SAMPLES) ** exponent for i in range(_SAMPLES)) / _SAMPLES


@lru_cache(maxsize=64)
def exponent(peak: float) -> float:
    """The exponent k of ``curve(h) = peak × activity(h)^k`` whose 24-hour average is 1 (found by bisection:
    the average falls as k grows). ``peak`` 1 is the flat day (k = 0)."""
    if not math.isfinite(peak) or peak < 1.0:
        raise ValueError(f"peak must be at least 1 (the 24-hour average), got {peak}")
    if peak == 1.0:
        return 0.0
    low, high = 0.0, 64.0
    for _ in range(100):
        middle = (low + high) / 2
        if peak * _mean_power(middle) > 1.0:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def curve(hour: float, peak: float = NORMAL_PEAK) -> float:
    """The day's load at ``hour`` (0–24, local time) as a multiple of the 24-hour average: average 1, maximum
    ``peak`` (reached on the 09:00–10:00 plateau)."""
    return peak * _activity(hour) ** exponent(peak)


def rates_at(hour: float, peak: float = NORMAL_PEAK) -> dict[str, float]:
    """Offered iterations per second per actor at ``hour`` of the day, at real-world rates."""
    factor = curve(hour, peak)
    return {actor: rate * factor for actor, rate in average_rates().items()}


def peak_rates(peak: float = NORMAL_PEAK) -> dict[str, float]:
    """Iterations per second per actor at the day's peak (the average rate times ``peak``)."""
    return {actor: rate * peak for actor, rate in average_rates().items()}


def weights() -> dict[str, int]:
    """Locust ``weight`` per actor: the average rates in thousandths of an iteration a second (integers, as
    Locust expects; the mix is the same at every hour since every actor follows the one curve)."""
    return {actor: max(1, round(rate * 1000)) for actor, rate in average_rates().items()}


@dataclass(frozen=True)
class Profile:
    """A named traffic profile: the model above, with its peak."""

    name: str
    description: str


PROFILES = {
    "national-day": Profile(
        "national-day",
        "a national day: 106,000 dossiers, 50,000 payments, 1.5 million identity accesses, office-hours curve",
    )
}


def figures(peak: float = NORMAL_PEAK) -> dict[str, dict[str, float]]:
    """Per-actor daily counts and rates (average, normal peak, this peak), for the docs and ``--json``."""
    average = average_rates()
    return {
        actor: {
            "per_day": daily_counts()[actor],
            "average_per_s": round(average[actor], 3),
            "normal_peak_per_s": round(average[actor] * NORMAL_PEAK, 3),
            "peak_per_s": round(average[actor] * peak, 3),
        }
        for actor in ACTORS
    }
