"""consent.fetch_policy: every denial reason, the boundary instants, and the frequency windows (Vietnam time)."""

from __future__ import annotations

import uuid
from collections import Counter as Tally
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consent.artefact import ConsentArtefact, Frequency, FrequencyUnit
from consent.fetch_policy import (
    Allowed,
    Counters,
    Denied,
    FetchDenied,
    FetchRequest,
    Reason,
    RequestedDocument,
    decide,
    gate,
    window_start,
)
from consent.states import Status
from core.errors import InvalidArgument, PermissionDenied
from tests.consent.artefacts import AGENCY, DOCUMENT, EXPIRY, OTHER_DOCUMENT, START, SUBJECT, artefact
from vault.documents import DocumentType

GRANTED = RequestedDocument(DOCUMENT, DocumentType.DIPLOMA, SUBJECT)  # granted by its id
NOW = START + timedelta(hours=2)


def request(
    document: RequestedDocument = GRANTED, client_id: str = AGENCY, purpose: str = "PUBLIC_SERVICE_DOSSIER"
) -> FetchRequest:
    return FetchRequest(client_id, purpose, document)


def fetched(count: int, in_window: int, last: datetime) -> Counters:
    return Counters(count, in_window, last)


# reason → (artefact changes, status, counters, request, now): one scenario per reason, every other rule passing.
DENIALS: dict[Reason, tuple[dict[str, Any], Status, Counters, FetchRequest, datetime]] = {
    Reason.WRONG_AGENCY: ({}, Status.ACTIVE, Counters(), request(client_id="agency-other"), NOW),
    Reason.WRONG_PURPOSE: ({}, Status.ACTIVE, Counters(), request(purpose="BANK_KYC"), NOW),
    Reason.NOT_ACTIVE: ({}, Status.PAUSED, Counters(), request(), NOW),
    Reason.NOT_STARTED: ({}, Status.ACTIVE, Counters(), request(), START - timedelta(seconds=1)),
    Reason.EXPIRED: ({}, Status.ACTIVE, Counters(), request(), EXPIRY),
    Reason.DOCUMENT_NOT_IN_GRANT: (
        {},
        Status.ACTIVE,
        Counters(),
        request(RequestedDocument(OTHER_DOCUMENT, DocumentType.DIPLOMA, SUBJECT)),
        NOW,
    ),
    Reason.NOT_THE_CITIZENS: (
        {},
        Status.ACTIVE,
        Counters(),
        request(RequestedDocument(OTHER_DOCUMENT, DocumentType.BIRTH_CERTIFICATE, "someone-else")),
        NOW,
    ),
    Reason.USES_EXHAUSTED: (
        {"max_fetches": 4},
        Status.ACTIVE,
        fetched(4, 0, START),
        request(),
        NOW + timedelta(days=3),
    ),
    Reason.FREQUENCY_EXCEEDED: ({}, Status.ACTIVE, fetched(3, 3, START), request(), NOW),
}


def test_every_reason_has_a_scenario() -> None:
    assert set(DENIALS) == set(Reason)


@pytest.mark.parametrize("reason", list(Reason), ids=[r.value for r in Reason])
def test_each_rule_denies_with_its_reason(reason: Reason) -> None:
    changes, status, counters, fetch, now = DENIALS[reason]
    decision = decide(artefact(**changes), status, counters, fetch, now)
    assert decision == Denied(reason)
    error = Denied(reason).error()
    assert isinstance(error, FetchDenied)
    assert isinstance(error, PermissionDenied)
    assert error.reason is reason
    assert error.message.startswith(reason.value + ": ")
    assert SUBJECT not in error.message
    assert str(DOCUMENT) not in error.message


@pytest.mark.parametrize("status", [Status.PENDING, Status.PAUSED, Status.REJECTED, Status.REVOKED])
def test_only_an_active_consent_serves(status: Status) -> None:
    assert decide(artefact(), status, Counters(), request(), NOW) == Denied(Reason.NOT_ACTIVE)


def test_an_expired_status_says_expired_even_inside_the_window() -> None:
    assert decide(artefact(), Status.EXPIRED, Counters(), request(), NOW) == Denied(Reason.EXPIRED)


def test_another_agency_learns_nothing_else() -> None:
    other = request(RequestedDocument(OTHER_DOCUMENT, DocumentType.OTHER, "someone-else"), client_id="agency-other")
    for status in Status:
        assert decide(artefact(), status, fetched(10, 3, START), other, EXPIRY + timedelta(days=1)) == Denied(
            Reason.WRONG_AGENCY
        )


def test_exactly_at_start_is_allowed_and_charges_one() -> None:
    assert decide(artefact(), Status.ACTIVE, Counters(), request(), START - timedelta(seconds=1)) == Denied(
        Reason.NOT_STARTED
    )
    assert decide(artefact(), Status.ACTIVE, Counters(), request(), START) == Allowed(Counters(1, 1, START))


def test_exactly_at_expiry_is_refused() -> None:
    last = EXPIRY - timedelta(seconds=1)
    assert decide(artefact(), Status.ACTIVE, Counters(), request(), last) == Allowed(Counters(1, 1, last))
    assert decide(artefact(), Status.ACTIVE, Counters(), request(), EXPIRY) == Denied(Reason.EXPIRED)
    assert decide(artefact(), Status.ACTIVE, Counters(), request(), EXPIRY - timedelta(microseconds=1)) == Allowed(
        Counters(1, 1, EXPIRY - timedelta(microseconds=1))
    )


def test_a_document_is_granted_by_id_or_by_type() -> None:
    by_id = RequestedDocument(DOCUMENT, DocumentType.HEALTH_BOOK, SUBJECT)
    by_type = RequestedDocument(uuid.uuid4(), DocumentType.BIRTH_CERTIFICATE, SUBJECT)
    neither = RequestedDocument(uuid.uuid4(), DocumentType.HEALTH_BOOK, SUBJECT)
    for document, allowed in ((by_id, True), (by_type, True), (neither, False)):
        decision = decide(artefact(), Status.ACTIVE, Counters(), request(document), NOW)
        assert isinstance(decision, Allowed) is allowed, document
    only_types = artefact(documents=())
    assert decide(only_types, Status.ACTIVE, Counters(), request(by_id), NOW) == Denied(Reason.DOCUMENT_NOT_IN_GRANT)


def test_a_granted_document_no_longer_the_citizens_is_refused() -> None:
    moved = RequestedDocument(DOCUMENT, DocumentType.DIPLOMA, "new-owner-ref")
    assert decide(artefact(), Status.ACTIVE, Counters(), request(moved), NOW) == Denied(Reason.NOT_THE_CITIZENS)


def test_the_last_use_is_allowed_then_none() -> None:
    grant = artefact(max_fetches=4)
    later = NOW + timedelta(days=3)
    assert decide(grant, Status.ACTIVE, fetched(3, 1, NOW), request(), later) == Allowed(Counters(4, 1, later))
    assert decide(grant, Status.ACTIVE, fetched(4, 0, NOW), request(), later) == Denied(Reason.USES_EXHAUSTED)


# Vietnam's midnight is 17:00 UTC; its hours are UTC hours; 1 December 00:00 ICT is 30 November 17:00 UTC.
@pytest.mark.parametrize(
    ("unit", "last", "boundary"),
    [
        (FrequencyUnit.HOUR, datetime(2026, 12, 1, 5, 59, 59, tzinfo=UTC), datetime(2026, 12, 1, 6, 0, tzinfo=UTC)),
        (FrequencyUnit.DAY, datetime(2026, 12, 1, 16, 59, 59, tzinfo=UTC), datetime(2026, 12, 1, 17, 0, tzinfo=UTC)),
        (
            FrequencyUnit.MONTH,
            datetime(2026, 12, 31, 16, 59, 59, tzinfo=UTC),
            datetime(2026, 12, 31, 17, 0, tzinfo=UTC),
        ),
    ],
)
def test_a_frequency_window_ends_at_its_calendar_boundary_in_vietnam(
    unit: FrequencyUnit, last: datetime, boundary: datetime
) -> None:
    grant = artefact(frequency=Frequency(3, unit), expiry=START + timedelta(days=60))
    full = fetched(3, 3, last)
    assert window_start(last, unit) < window_start(boundary, unit) == boundary
    assert decide(grant, Status.ACTIVE, full, request(), last) == Denied(Reason.FREQUENCY_EXCEEDED)
    assert decide(grant, Status.ACTIVE, full, request(), boundary - timedelta(microseconds=1)) == Denied(
        Reason.FREQUENCY_EXCEEDED
    )
    assert decide(grant, Status.ACTIVE, full, request(), boundary) == Allowed(Counters(4, 1, boundary))


def test_window_starts() -> None:
    instant = datetime(2026, 12, 1, 18, 30, 15, tzinfo=UTC)  # 2 December 01:30:15 in Hà Nội
    assert window_start(instant, FrequencyUnit.HOUR) == datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    assert window_start(instant, FrequencyUnit.DAY) == datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    assert window_start(instant, FrequencyUnit.MONTH) == datetime(2026, 11, 30, 17, 0, tzinfo=UTC)


def test_the_window_count_grows_within_a_window() -> None:
    grant = artefact()
    counters = Counters()
    for minute in range(3):
        decision = decide(grant, Status.ACTIVE, counters, request(), NOW + timedelta(minutes=minute))
        assert isinstance(decision, Allowed)
        counters = decision.counters
    assert counters == Counters(3, 3, NOW + timedelta(minutes=2))
    assert decide(grant, Status.ACTIVE, counters, request(), NOW + timedelta(minutes=3)) == Denied(
        Reason.FREQUENCY_EXCEEDED
    )


def test_a_clock_going_back_never_reopens_a_window() -> None:
    last = datetime(2026, 12, 2, 17, 0, 5, tzinfo=UTC)  # just after midnight in Hà Nội
    earlier = datetime(2026, 12, 2, 16, 59, 55, tzinfo=UTC)  # the previous day there
    grant = artefact()
    assert decide(grant, Status.ACTIVE, fetched(5, 3, last), request(), earlier) == Denied(Reason.FREQUENCY_EXCEEDED)
    assert decide(grant, Status.ACTIVE, fetched(5, 1, last), request(), earlier) == Allowed(Counters(6, 2, last))


def test_a_month_of_fetches_never_overspends() -> None:
    """Fetch every 20 minutes for the whole validity: at most 3 per Vietnamese day, 10 in all."""
    grant = artefact()
    counters, days = Counters(), Tally[str]()
    instant = START
    while instant < EXPIRY + timedelta(days=1):
        decision = decide(grant, Status.ACTIVE, counters, request(), instant)
        if isinstance(decision, Allowed):
            counters = decision.counters
            days[window_start(instant, FrequencyUnit.DAY).isoformat()] += 1
        instant += timedelta(minutes=20)
    assert counters.fetches == 10 == sum(days.values())
    assert max(days.values()) == 3
    assert len(days) == 4


def test_listing_passes_the_gate_only() -> None:
    assert gate(artefact(), Status.ACTIVE, AGENCY, "PUBLIC_SERVICE_DOSSIER", NOW) is None
    assert gate(artefact(), Status.REVOKED, AGENCY, "PUBLIC_SERVICE_DOSSIER", NOW) == Denied(Reason.NOT_ACTIVE)


@pytest.mark.parametrize(
    ("fetches", "window", "last"),
    [(-1, 0, None), (1, 2, START), (0, 0, START), (1, 1, None), (1, 1, START.replace(tzinfo=None))],
)
def test_counters_are_consistent(fetches: int, window: int, last: datetime | None) -> None:
    with pytest.raises(InvalidArgument):
        Counters(fetches, window, last)


def test_now_must_be_aware() -> None:
    with pytest.raises(InvalidArgument):
        decide(artefact(), Status.ACTIVE, Counters(), request(), NOW.replace(tzinfo=None))


def test_the_decision_does_not_change_its_inputs() -> None:
    grant: ConsentArtefact = artefact()
    counters = fetched(1, 1, START)
    decide(grant, Status.ACTIVE, counters, request(), NOW)
    assert counters == fetched(1, 1, START)
    assert grant == artefact()
