"""The national day's traffic for the capacity plan: requests a day per operation, from the load test's model.

One source for the rates: loadtest/model.py (issue 12 item 1) turns the published figures (1.5 million identity
accesses, 106,000 online dossiers and 50,000 online payments a day) and its stated assumptions into iterations a
day per actor (``daily_counts``), on an office-hours curve whose maximum ``peak`` is a multiple of the 24-hour
average (5 on a normal day, 10 on a deadline day). ``--peak`` means the same here as in ``dinhdanh loadtest``.
This module only splits an actor's iteration into the requests it makes (as the scenarios in loadtest/scenarios/
do; they import Locust, so their two constants are restated below and a test checks they agree).
"""

from __future__ import annotations

from dataclasses import dataclass

from loadtest import model

SECONDS_PER_DAY = model.SECONDS_PER_DAY
REFERENCE_CITIZENS = 100_000_000  # the population the published figures describe (Vietnam, about 100 M)
NORMAL_PEAK = model.NORMAL_PEAK  # the normal day's peak, x the 24-hour average
DEADLINE_PEAK = model.DEADLINE_PEAK

UPLOAD_EVERY = 5  # loadtest/scenarios/vault.py: one vault visit in 5 also uploads
REQUEST_EVERY = 10  # loadtest/scenarios/agency.py: one agency fetch in 10 also asks for a new consent


@dataclass(frozen=True, slots=True)
class Operation:
    """One kind of request, as the load test names it (Locust request name), and how many an iteration makes."""

    name: str  # e.g. "sign-in", "vault.Download"
    actor: str  # sign-in, vault, agency, applicant, facility, verifier (loadtest/model.py ACTORS)
    per_iteration: float
    derivation: str

    @property
    def per_day(self) -> float:
        """At REFERENCE_CITIZENS: the actor's iterations a day (loadtest/model.py) x requests an iteration."""
        return model.daily_counts()[self.actor] * self.per_iteration


OPERATIONS: tuple[Operation, ...] = (
    Operation("sign-in", "sign-in", 1, "every identity access is one SSO sign-in (model.SIGN_IN_SHARE)"),
    Operation("vault.List", "vault", 1, f"{model.VAULT_SHARE:.0%} of the accesses visit the vault: one list each"),
    Operation("vault.Download", "vault", 1, "one download per vault visit"),
    Operation("vault.Upload", "vault", 1 / UPLOAD_EVERY, f"one vault visit in {UPLOAD_EVERY} uploads"),
    Operation(
        "vault.DownloadShared",
        "agency",
        1,
        f"{model.DOCUMENTS_PER_DOSSIER:g} shared documents fetched per dossier (106,000 a day)",
    ),
    Operation("consent.RequestConsent", "agency", 1 / REQUEST_EVERY, f"one agency fetch in {REQUEST_EVERY} asks"),
    Operation(
        "issuance.Apply",
        "applicant",
        1,
        f"{model.CERTIFICATE_SHARE:.0%} of the dossiers are certificate applications (the fee inside: the payments)",
    ),
    Operation(
        "health.PushVisit",
        "facility",
        1,
        f"{model.FACILITIES:,} facilities x {model.VISITS_PER_FACILITY_PER_DAY:g} visits a day",
    ),
    Operation(
        "verify.qr",
        "verifier",
        1,
        f"each certificate checked {model.QR_CHECKS_PER_CERTIFICATE:g} times (the status list fetched from the edge)",
    ),
)


def peak_per_second(operation: Operation, citizens: int, peak: float) -> float:
    """Requests/s of ``operation`` at ``peak`` x the 24-hour average for ``citizens`` (linear in the population)."""
    return operation.per_day * (citizens / REFERENCE_CITIZENS) / SECONDS_PER_DAY * peak


# Requests whose bench moves documents through S3; the others touch S3 only through the log's tiles.
DOCUMENT_OPERATIONS = frozenset(
    {"vault.List", "vault.Download", "vault.Upload", "vault.DownloadShared", "issuance.Apply", "health.PushVisit"}
)

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
