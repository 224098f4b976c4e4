"""The national day's traffic, in one place: requests a day per operation for the reference population.

Issue 12 item 1 gives three published figures: 1.5 million accesses a day to the identity app, 106,000 online
dossiers and 50,000 online payments a day on the national portal, and an office-hours curve whose normal peak is
5x the 24-hour average (a deadline day 10x). Everything else below is an assumption, named as one, derived from
those figures. ``--peak N`` in ``dinhdanh capacity`` is a multiple of the *normal peak*: a 10x peak is
10 x 5 = 50x the 24-hour average (the same reading as the issuance bench's 60 dossiers/s target:
106,000 / 86,400 x 5 x 10 = 61.3/s).
"""

from __future__ import annotations

from dataclasses import dataclass

SECONDS_PER_DAY = 86_400
REFERENCE_CITIZENS = 100_000_000  # the population the published figures describe (Vietnam, about 100 M)
NORMAL_PEAK_FACTOR = 5.0  # office-hours curve: the normal peak is 5x the 24-hour average

IDENTITY_ACCESSES_PER_DAY = 1_500_000  # published: accesses a day to the identity app
DOSSIERS_PER_DAY = 106_000  # published: online dossiers a day on the national portal
PAYMENTS_PER_DAY = 50_000  # published: online payments a day on the national portal

VAULT_BROWSE_SHARE = 0.5  # assumption: half of the identity accesses open the vault
SHARED_DOCUMENTS_PER_DOSSIER = 2  # assumption: an agency fetches two of the citizen's documents per dossier
HEALTH_VISITS_PER_DAY = 466_000  # assumption: ~170 M insured visits a year pushed by facilities / 365
QR_CHECKS_PER_DOSSIER = 2  # assumption: each issued certificate is checked twice by verifiers


@dataclass(frozen=True, slots=True)
class Operation:
    """One kind of request of the traffic model, as the load test names it (loadtest contract)."""

    name: str  # the Locust request name, e.g. "sign-in", "vault.Download"
    actor: str  # sign-in, vault, agency, applicant, facility, verifier
    per_day: float  # at REFERENCE_CITIZENS
    derivation: str  # how per_day follows from the published figures


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "sign-in",
        "sign-in",
        IDENTITY_ACCESSES_PER_DAY + PAYMENTS_PER_DAY,
        "1,500,000 identity accesses + 50,000 payments (each payment signs in through SSO)",
    ),
    Operation(
        "vault.List",
        "vault",
        IDENTITY_ACCESSES_PER_DAY * VAULT_BROWSE_SHARE,
        "assumption: half of the 1,500,000 accesses open the vault",
    ),
    Operation(
        "vault.Download",
        "vault",
        IDENTITY_ACCESSES_PER_DAY * VAULT_BROWSE_SHARE,
        "one document downloaded per vault visit",
    ),
    Operation("vault.Upload", "vault", DOSSIERS_PER_DAY, "one attachment uploaded per dossier (106,000)"),
    Operation("consent.RequestConsent", "agency", DOSSIERS_PER_DAY, "one consent request per dossier"),
    Operation(
        "vault.DownloadShared",
        "agency",
        DOSSIERS_PER_DAY * SHARED_DOCUMENTS_PER_DOSSIER,
        "assumption: 2 shared documents fetched per dossier",
    ),
    Operation(
        "issuance.Apply",
        "applicant",
        DOSSIERS_PER_DAY,
        "upper bound: every one of the 106,000 dossiers goes through issuance",
    ),
    Operation(
        "health.PushVisit",
        "facility",
        HEALTH_VISITS_PER_DAY,
        "assumption: ~170 M insured visits a year / 365",
    ),
    Operation(
        "verify.qr",
        "verifier",
        DOSSIERS_PER_DAY * QR_CHECKS_PER_DOSSIER,
        "assumption: each certificate checked twice (the status list fetched from the edge)",
    ),
)


def peak_per_second(operation: Operation, citizens: int, peak: float) -> float:
    """Requests/s of ``operation`` at ``peak`` x the normal peak for ``citizens`` (linear in the population)."""
    average = operation.per_day * (citizens / REFERENCE_CITIZENS) / SECONDS_PER_DAY
    return average * NORMAL_PEAK_FACTOR * peak


# Audit events each request appends to the transparency log (assumption; the log service sequences them all).
AUDIT_EVENTS: dict[str, int] = {
    "sign-in": 1,
    "vault.List": 0,
    "vault.Download": 1,
    "vault.Upload": 1,
    "consent.RequestConsent": 1,
    "vault.DownloadShared": 1,
    "issuance.Apply": 4,  # applied, approved, issued, delivered to the vault
    "health.PushVisit": 1,
    "verify.qr": 0,  # offline at the verifier: only the status list is fetched
}
