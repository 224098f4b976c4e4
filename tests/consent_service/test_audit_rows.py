"""On the real stack: a consent's change and its ``audit.events`` row commit together, or neither does.

The audit insert is made to fail inside PostgreSQL (a trigger raising for rows naming one consent or one agency,
``tests.consent_store.rejecting``): the caller gets UNAVAILABLE (never INTERNAL), the consent is unchanged, and
the same call succeeds once the log accepts rows again, with exactly one row for the change."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc

from protos.consent.v1 import consent_pb2 as pb
from protos.consent.v1 import consent_pb2_grpc as pb_grpc
from tests.consent_service.conftest import Agency, Person
from tests.consent_service.test_consent_service import ask, audit_rows, refused, stamp, terms
from tests.consent_store.rejecting import rejecting
from tests.waiting import until

MakeAgency = Callable[..., contextlib.AbstractAsyncContextManager[Agency]]
MakePerson = Callable[..., Awaitable[Person]]


def outcomes(rows: list[dict[str, object]]) -> list[tuple[object, object, object]]:
    return [(r["actor"], r["action"], r["outcome"]) for r in rows]


async def status(agency: Agency, consent_id: str) -> int:
    return (await agency.stub.GetConsentStatus(pb.GetConsentStatusRequest(id=consent_id), timeout=10)).status  # type: ignore[no-any-return]


async def test_a_decision_whose_row_cannot_be_written_does_not_happen(
    agency: Agency, portal: pb_grpc.ConsentStub, people: MakePerson, owner_db: asyncpg.Pool
) -> None:
    citizen = await people()
    asked = await ask(agency, citizen)
    request = pb.ConsentIdRequest(id=asked.id)
    async with rejecting(owner_db, asked.id):
        error = await refused(
            portal.Approve(request, metadata=citizen.metadata, timeout=10), grpc.StatusCode.UNAVAILABLE
        )
        assert "try again" in (error.details() or "")
        assert await status(agency, asked.id) == pb.CONSENT_STATUS_PENDING
        mine = await portal.GetMyConsent(request, metadata=citizen.metadata, timeout=10)
        assert (mine.artefact_jws, mine.approved_at.seconds) == ("", 0), "no approval stored"
        # a refusal that cannot be logged is not answered either
        await refused(portal.Resume(request, metadata=citizen.metadata, timeout=10), grpc.StatusCode.UNAVAILABLE)
    approved = await portal.Approve(request, metadata=citizen.metadata, timeout=10)
    assert approved.status == pb.CONSENT_STATUS_ACTIVE
    async with rejecting(owner_db, asked.id):
        await refused(portal.Revoke(request, metadata=citizen.metadata, timeout=10), grpc.StatusCode.UNAVAILABLE)
        await refused(agency.stub.RevokeAsAgency(request, timeout=10), grpc.StatusCode.UNAVAILABLE)
        assert await status(agency, asked.id) == pb.CONSENT_STATUS_ACTIVE
    assert outcomes(await audit_rows(owner_db, asked.id)) == [
        (f"agency:{agency.client_id}", "consent.request", "success"),
        ("citizen", "consent.approve", "success"),
    ]


async def test_a_request_or_grant_whose_row_cannot_be_written_stores_nothing(
    agencies: MakeAgency, portal: pb_grpc.ConsentStub, people: MakePerson, owner_db: asyncpg.Pool
) -> None:
    citizen = await people()
    async with agencies() as agency:
        async with rejecting(owner_db, agency.client_id):
            await refused(ask(agency, citizen), grpc.StatusCode.UNAVAILABLE)
            granted = pb.GrantConsentRequest(client_id=agency.client_id, terms=terms())
            await refused(
                portal.GrantConsent(granted, metadata=citizen.metadata, timeout=10), grpc.StatusCode.UNAVAILABLE
            )
        listed = await portal.ListMyConsents(pb.ListMyConsentsRequest(), metadata=citizen.metadata, timeout=10)
        assert list(listed.consents) == [], "neither the request nor the grant stands"
        asked = await ask(agency, citizen)
        assert outcomes(await audit_rows(owner_db, asked.id)) == [
            (f"agency:{agency.client_id}", "consent.request", "success")
        ]


async def test_an_expiry_whose_row_cannot_be_written_waits_for_the_next_sweep(
    agency: Agency, people: MakePerson, owner_db: asyncpg.Pool
) -> None:
    citizen = await people()
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    asked = await ask(agency, citizen, expiry=stamp(soon))
    async with rejecting(owner_db, asked.id):
        await until(lambda: datetime.now(UTC) > soon + timedelta(seconds=5), "a few sweeps past the expiry", every=0.5)
        assert await status(agency, asked.id) == pb.CONSENT_STATUS_PENDING, "no expiry without its row"

    async def expired() -> bool:
        return await status(agency, asked.id) == pb.CONSENT_STATUS_EXPIRED

    await until(expired, "expired once the log accepts rows", timeout=30, every=0.5)
    assert outcomes(await audit_rows(owner_db, asked.id)) == [
        (f"agency:{agency.client_id}", "consent.request", "success"),
        ("system", "consent.expire", "success"),
    ]
