"""The consent service on the real stack: agencies over mutual TLS with their certificates, citizens with
consent tokens through the portal's peer, signatures checked with GetSigningKeys' JWKS, audit rows."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from audit.events import Pseudonymizer
from consent.artefact import verify
from consent.signing import STATUS_TYPE, public_key, verify_jwt
from protos.consent.v1 import consent_pb2 as pb
from protos.consent.v1 import consent_pb2_grpc as pb_grpc
from protos.vault.v1 import vault_pb2
from tests.consent_service.conftest import Agency, Person
from tests.waiting import until

MakeAgency = Callable[..., contextlib.AbstractAsyncContextManager[Agency]]
MakePerson = Callable[..., Awaitable[Person]]
DOCUMENT = "0b5e4a7e-5f0c-4c1e-9a55-3c1f2f1d9e01"


def stamp(instant: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(instant)
    return value


def terms(**changes: Any) -> pb.ConsentTerms:
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "purpose": "PUBLIC_SERVICE_DOSSIER",
        "document_ids": [DOCUMENT],
        "document_types": [vault_pb2.DOCUMENT_TYPE_BIRTH_CERTIFICATE],
        "expiry": stamp(now + timedelta(days=30)),
        "data_life_seconds": 90 * 86400,
        "max_fetches": 10,
        "frequency": pb.Frequency(count=3, unit=pb.FREQUENCY_UNIT_DAY),
    }
    fields.update(changes)
    return pb.ConsentTerms(**{k: v for k, v in fields.items() if v is not None})


async def ask(agency: Agency, citizen: Person, **changes: Any) -> pb.ConsentRecord:
    request = pb.RequestConsentRequest(citizen_id_number=citizen.id_number, terms=terms(**changes))
    return await agency.stub.RequestConsent(request, timeout=10)


async def refused(call: Awaitable[Any], code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return caught.value


async def jwks(stub: pb_grpc.ConsentStub) -> dict[str, Any]:
    return json.loads((await stub.GetSigningKeys(pb.GetSigningKeysRequest(), timeout=10)).jwks_json)


def b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def audit_rows(owner_db: asyncpg.Pool, consent_id: str) -> list[dict[str, Any]]:
    rows = await owner_db.fetch(
        "SELECT actor, action, outcome, subject, detail FROM audit.events WHERE detail->>'consent_id' = $1 ORDER BY id",
        consent_id,
    )
    return [dict(row) | {"detail": json.loads(row["detail"])} for row in rows]


async def test_request_list_approve_pause_resume_revoke(
    agency: Agency, portal: pb_grpc.ConsentStub, people: MakePerson, owner_db: asyncpg.Pool, pseudonyms: Pseudonymizer
) -> None:
    citizen = await people()
    asked = await ask(agency, citizen)
    assert asked.status == pb.CONSENT_STATUS_PENDING
    assert (asked.client_id, asked.agency_name, asked.artefact_jws) == (agency.client_id, agency.name, "")
    assert asked.terms.document_ids == [DOCUMENT]
    assert asked.purpose_text
    assert asked.purpose_text_en

    listed = await portal.ListMyConsents(pb.ListMyConsentsRequest(), metadata=citizen.metadata, timeout=10)
    assert [c.id for c in listed.consents] == [asked.id]
    assert listed.consents[0].agency_name == agency.name

    approved = await portal.Approve(pb.ConsentIdRequest(id=asked.id), metadata=citizen.metadata, timeout=10)
    assert approved.status == pb.CONSENT_STATUS_ACTIVE
    assert approved.approved_at.seconds > 0
    keys = await jwks(agency.stub)
    assert all("d" not in key for key in keys["keys"]), "public keys only"
    artefact = verify(approved.artefact_jws, public_key(keys["keys"][0]))
    assert str(artefact.id) == asked.id
    assert artefact.subject == pseudonyms.ref(citizen.id_number)
    assert artefact.client_id == agency.client_id

    signed = await agency.stub.GetConsentStatus(pb.GetConsentStatusRequest(id=asked.id), timeout=10)
    assert (signed.status, signed.fetches) == (pb.CONSENT_STATUS_ACTIVE, 0)
    claims = verify_jwt(signed.jws, keys, STATUS_TYPE)
    payload = b64decode(approved.artefact_jws.split(".")[1])
    assert claims["sub"] == asked.id
    assert (claims["client_id"], claims["status"], claims["fetches"]) == (agency.client_id, "ACTIVE", 0)
    assert claims["artefact_sha256"] == base64.urlsafe_b64encode(hashlib.sha256(payload).digest()).rstrip(b"=").decode()
    assert claims["iss"].startswith("http")

    for call, status in (
        (portal.Pause, pb.CONSENT_STATUS_PAUSED),
        (portal.Resume, pb.CONSENT_STATUS_ACTIVE),
        (portal.Revoke, pb.CONSENT_STATUS_REVOKED),
    ):
        record = await call(pb.ConsentIdRequest(id=asked.id), metadata=citizen.metadata, timeout=10)
        assert record.status == status
        assert record.artefact_jws == approved.artefact_jws, "the signed artefact never changes"
    again = await refused(
        portal.Revoke(pb.ConsentIdRequest(id=asked.id), metadata=citizen.metadata, timeout=10),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "REVOKED" in (again.details() or "")
    await refused(
        portal.Approve(pb.ConsentIdRequest(id=asked.id), metadata=citizen.metadata, timeout=10),
        grpc.StatusCode.FAILED_PRECONDITION,
    )

    rows = await audit_rows(owner_db, asked.id)
    subject = pseudonyms.ref(citizen.id_number)
    assert [(r["actor"], r["action"], r["outcome"]) for r in rows] == [
        (f"agency:{agency.client_id}", "consent.request", "success"),
        ("citizen", "consent.approve", "success"),
        ("citizen", "consent.pause", "success"),
        ("citizen", "consent.resume", "success"),
        ("citizen", "consent.revoke", "success"),
        ("citizen", "consent.revoke", "refused"),
        ("citizen", "consent.approve", "refused"),
    ]
    assert {r["subject"] for r in rows} == {subject}
    purpose = {"consent_id": asked.id, "client_id": agency.client_id, "purpose": "PUBLIC_SERVICE_DOSSIER"}
    assert all(r["detail"] == purpose for r in rows if r["outcome"] == "success")
    refusals = [r["detail"] for r in rows if r["outcome"] == "refused"]
    assert all(set(d) == {*purpose, "reason"} and "REVOKED" in d["reason"] for d in refusals)
    assert all(citizen.id_number not in json.dumps(r) for r in rows)


async def test_a_citizen_grants_on_their_own_initiative(
    agency: Agency, portal: pb_grpc.ConsentStub, people: MakePerson
) -> None:
    citizen = await people()
    request = pb.GrantConsentRequest(client_id=agency.client_id, terms=terms())
    granted = await portal.GrantConsent(request, metadata=citizen.metadata, timeout=10)
    assert granted.status == pb.CONSENT_STATUS_ACTIVE
    artefact = verify(granted.artefact_jws, public_key((await jwks(portal))["keys"][0]))
    assert str(artefact.id) == granted.id
    mine = await portal.GetMyConsent(pb.ConsentIdRequest(id=granted.id), metadata=citizen.metadata, timeout=10)
    assert mine == granted
    unknown = pb.GrantConsentRequest(client_id="agency-nobody", terms=terms())
    await refused(portal.GrantConsent(unknown, metadata=citizen.metadata, timeout=10), grpc.StatusCode.NOT_FOUND)


async def test_listing_is_newest_first_filtered_and_paged(
    agency: Agency, portal: pb_grpc.ConsentStub, people: MakePerson
) -> None:
    citizen = await people()
    made = [await ask(agency, citizen) for _ in range(3)]
    await portal.Reject(pb.ConsentIdRequest(id=made[0].id), metadata=citizen.metadata, timeout=10)
    first = await portal.ListMyConsents(pb.ListMyConsentsRequest(page_size=2), metadata=citizen.metadata, timeout=10)
    assert first.next_page_token
    second = await portal.ListMyConsents(
        pb.ListMyConsentsRequest(page_size=2, page_token=first.next_page_token), metadata=citizen.metadata, timeout=10
    )
    assert second.next_page_token == ""
    seen = [c.id for c in first.consents] + [c.id for c in second.consents]
    assert sorted(seen) == sorted(c.id for c in made)
    assert len(set(seen)) == 3
    created = [c.created_at.seconds for c in (*first.consents, *second.consents)]
    assert created == sorted(created, reverse=True)
    rejected = await portal.ListMyConsents(
        pb.ListMyConsentsRequest(status=pb.CONSENT_STATUS_REJECTED), metadata=citizen.metadata, timeout=10
    )
    assert [c.id for c in rejected.consents] == [made[0].id]
    await refused(
        portal.ListMyConsents(pb.ListMyConsentsRequest(page_token="nonsense!"), metadata=citizen.metadata, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_others_consents_are_not_found(
    agency: Agency, agencies: MakeAgency, portal: pb_grpc.ConsentStub, people: MakePerson
) -> None:
    owner, stranger = await people(), await people()
    asked = await ask(agency, owner)
    for call in (portal.GetMyConsent, portal.Approve, portal.Reject, portal.Revoke):
        await refused(
            call(pb.ConsentIdRequest(id=asked.id), metadata=stranger.metadata, timeout=10), grpc.StatusCode.NOT_FOUND
        )
    listed = await portal.ListMyConsents(pb.ListMyConsentsRequest(), metadata=stranger.metadata, timeout=10)
    assert asked.id not in {c.id for c in listed.consents}
    async with agencies() as other:
        await refused(
            other.stub.GetConsentStatus(pb.GetConsentStatusRequest(id=asked.id), timeout=10), grpc.StatusCode.NOT_FOUND
        )
        revoking = other.stub.RevokeAsAgency(pb.ConsentIdRequest(id=asked.id), timeout=10)
        await refused(revoking, grpc.StatusCode.NOT_FOUND)
    unknown = "00000000-0000-4000-8000-000000000000"
    await refused(
        portal.GetMyConsent(pb.ConsentIdRequest(id=unknown), metadata=owner.metadata, timeout=10),
        grpc.StatusCode.NOT_FOUND,
    )
    mine = await portal.GetMyConsent(pb.ConsentIdRequest(id=asked.id), metadata=owner.metadata, timeout=10)
    assert mine.status == pb.CONSENT_STATUS_PENDING, "untouched by the stranger"


async def test_the_agency_revokes_its_own_and_never_decides_for_the_citizen(
    agency: Agency, agencies: MakeAgency, portal: pb_grpc.ConsentStub, people: MakePerson, owner_db: asyncpg.Pool
) -> None:
    citizen = await people()
    asked = await ask(agency, citizen)
    # an agency never decides for the citizen: the state machine refuses it (PERMISSION_DENIED), audited
    for call in (agency.stub.Approve, agency.stub.Reject, agency.stub.Pause, agency.stub.Resume):
        await refused(call(pb.ConsentIdRequest(id=asked.id), timeout=10), grpc.StatusCode.PERMISSION_DENIED)
    rows = await audit_rows(owner_db, asked.id)
    assert [(r["actor"], r["action"], r["outcome"]) for r in rows[1:]] == [
        (f"agency:{agency.client_id}", f"consent.{event}", "refused")
        for event in ("approve", "reject", "pause", "resume")
    ]
    # …nor opens a citizen's reading methods (they need a citizen's token)
    for listing in (agency.stub.ListMyConsents(pb.ListMyConsentsRequest(), timeout=10),
                    agency.stub.GetMyConsent(pb.ConsentIdRequest(id=asked.id), timeout=10)):  # fmt: skip
        await refused(listing, grpc.StatusCode.UNAUTHENTICATED)
    async with agencies() as other:  # another agency's consent: not found, as an unknown one
        await refused(other.stub.Approve(pb.ConsentIdRequest(id=asked.id), timeout=10), grpc.StatusCode.NOT_FOUND)
    assert (await portal.GetMyConsent(pb.ConsentIdRequest(id=asked.id), metadata=citizen.metadata, timeout=10)
            ).status == pb.CONSENT_STATUS_PENDING  # fmt: skip
    await refused(
        agency.stub.RevokeAsAgency(pb.ConsentIdRequest(id=asked.id), timeout=10), grpc.StatusCode.FAILED_PRECONDITION
    )
    await portal.Approve(pb.ConsentIdRequest(id=asked.id), metadata=citizen.metadata, timeout=10)
    revoked = await agency.stub.RevokeAsAgency(pb.ConsentIdRequest(id=asked.id), timeout=10)
    assert revoked.status == pb.CONSENT_STATUS_REVOKED
    # a citizen's peer without a token cannot call agency methods either
    await refused(portal.GetConsentStatus(pb.GetConsentStatusRequest(id=asked.id), timeout=10),
                  grpc.StatusCode.PERMISSION_DENIED)  # fmt: skip


async def test_a_token_without_consent_manage_is_permission_denied(
    agency: Agency, portal: pb_grpc.ConsentStub, people: MakePerson
) -> None:
    citizen = await people("openid")
    error = await refused(
        portal.ListMyConsents(pb.ListMyConsentsRequest(), metadata=citizen.metadata, timeout=10),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert 'scope="consent.manage"' in dict(error.trailing_metadata() or ())["www-authenticate"]
    await refused(portal.ListMyConsents(pb.ListMyConsentsRequest(), timeout=10), grpc.StatusCode.UNAUTHENTICATED)


async def test_bad_input_is_invalid_argument(agency: Agency, portal: pb_grpc.ConsentStub, people: MakePerson) -> None:
    citizen = await people()
    now = datetime.now(UTC)
    for changes, words in (
        ({"max_fetches": 0}, "max_fetches"),
        ({"start": stamp(now + timedelta(days=2)), "expiry": stamp(now + timedelta(days=1))}, "expiry"),
        ({"expiry": None}, "expiry"),
        ({"purpose": "NO_SUCH_PURPOSE"}, "purpose"),
        ({"document_types": [99]}, "document type"),
        ({"document_ids": ["not-a-uuid"]}, "document_ids"),
        ({"document_ids": [], "document_types": []}, "at least one"),
        ({"frequency": pb.Frequency(count=3)}, "frequency"),
        ({"data_life_seconds": 2**63}, "data_life"),
        ({"expiry": Timestamp(seconds=2**62)}, "expiry"),
        ({"frequency": pb.Frequency(count=20, unit=pb.FREQUENCY_UNIT_DAY)}, "frequency"),
    ):
        error = await refused(ask(agency, citizen, **changes), grpc.StatusCode.INVALID_ARGUMENT)
        assert words in (error.details() or ""), (changes, error.details())
        grant = pb.GrantConsentRequest(client_id=agency.client_id, terms=terms(**changes))
        await refused(portal.GrantConsent(grant, metadata=citizen.metadata, timeout=10),
                      grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip
    for number in ("12345", "000000000000", "abcdefghijkl"):
        request = pb.RequestConsentRequest(citizen_id_number=number, terms=terms())
        error = await refused(agency.stub.RequestConsent(request, timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
        assert number not in (error.details() or "")
    await refused(agency.stub.GetConsentStatus(pb.GetConsentStatusRequest(id="x"), timeout=10),
                  grpc.StatusCode.INVALID_ARGUMENT)  # fmt: skip


async def test_only_registered_enabled_agencies_ask_and_only_for_their_purposes(
    agencies: MakeAgency, people: MakePerson
) -> None:
    citizen = await people()
    async with agencies(agency_purposes=("BANK_KYC",)) as bank:
        await refused(ask(bank, citizen), grpc.StatusCode.PERMISSION_DENIED)
        assert (await ask(bank, citizen, purpose="BANK_KYC")).status == pb.CONSENT_STATUS_PENDING
        purposes = await bank.stub.ListPurposes(pb.ListPurposesRequest(), timeout=10)
        assert "BANK_KYC" in {p.code for p in purposes.purposes}
    async with agencies(registered=False) as unknown:
        await refused(ask(unknown, citizen), grpc.StatusCode.PERMISSION_DENIED)
        await refused(
            unknown.stub.SetNotificationUrl(pb.SetNotificationUrlRequest(url="https://a.example/"), timeout=10),
            grpc.StatusCode.PERMISSION_DENIED,
        )
    async with agencies(disabled=True) as disabled:
        await refused(ask(disabled, citizen), grpc.StatusCode.PERMISSION_DENIED)


async def test_parallel_decisions_end_in_one_legal_outcome(
    agency: Agency, portal: pb_grpc.ConsentStub, people: MakePerson
) -> None:
    citizen = await people()
    for _ in range(2):
        asked = await ask(agency, citizen)
        request = pb.ConsentIdRequest(id=asked.id)
        calls = [portal.Approve, portal.Reject] * 4
        results = await asyncio.gather(
            *(call(request, metadata=citizen.metadata, timeout=20) for call in calls), return_exceptions=True
        )
        won = [r for r in results if isinstance(r, pb.ConsentRecord)]
        assert len(won) == 1, results
        lost = [r for r in results if not isinstance(r, pb.ConsentRecord)]
        assert all(isinstance(r, grpc.aio.AioRpcError) and r.code() == grpc.StatusCode.FAILED_PRECONDITION
                   for r in lost), lost  # fmt: skip
        final = await portal.GetMyConsent(request, metadata=citizen.metadata, timeout=10)
        assert final.status == won[0].status
        assert (final.artefact_jws != "") == (final.status == pb.CONSENT_STATUS_ACTIVE)
    asked = await ask(agency, citizen)
    await portal.Approve(pb.ConsentIdRequest(id=asked.id), metadata=citizen.metadata, timeout=10)
    calls = [portal.Revoke, portal.Pause] * 4
    results = await asyncio.gather(
        *(call(pb.ConsentIdRequest(id=asked.id), metadata=citizen.metadata, timeout=20) for call in calls),
        return_exceptions=True,
    )
    revoked = [r for r in results if isinstance(r, pb.ConsentRecord) and r.status == pb.CONSENT_STATUS_REVOKED]
    assert len(revoked) == 1, results
    final = await portal.GetMyConsent(pb.ConsentIdRequest(id=asked.id), metadata=citizen.metadata, timeout=10)
    assert final.status == pb.CONSENT_STATUS_REVOKED


async def test_the_sweeper_expires_consents_past_their_expiry(
    agency: Agency, portal: pb_grpc.ConsentStub, people: MakePerson, owner_db: asyncpg.Pool
) -> None:
    citizen = await people()
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    pending = await ask(agency, citizen, expiry=stamp(soon))
    active = await ask(agency, citizen, expiry=stamp(soon))
    await portal.Approve(pb.ConsentIdRequest(id=active.id), metadata=citizen.metadata, timeout=10)

    async def expired() -> bool:
        statuses = [
            (await agency.stub.GetConsentStatus(pb.GetConsentStatusRequest(id=c.id), timeout=10)).status
            for c in (pending, active)
        ]
        return statuses == [pb.CONSENT_STATUS_EXPIRED] * 2

    await until(expired, "both consents expired", timeout=30, every=0.5)
    for consent in (pending, active):
        rows = await audit_rows(owner_db, consent.id)
        assert ("system", "consent.expire", "success") in [(r["actor"], r["action"], r["outcome"]) for r in rows]
    await refused(
        portal.Approve(pb.ConsentIdRequest(id=pending.id), metadata=citizen.metadata, timeout=10),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


async def test_a_tampered_artefact_is_data_loss(
    agency: Agency, portal: pb_grpc.ConsentStub, people: MakePerson, owner_db: asyncpg.Pool
) -> None:
    citizen = await people()
    asked = await ask(agency, citizen)
    await portal.Approve(pb.ConsentIdRequest(id=asked.id), metadata=citizen.metadata, timeout=10)
    await owner_db.execute(
        "UPDATE consent.consents SET artefact = replace(convert_from(artefact, 'UTF8'), '\"max_fetches\":10',"
        " '\"max_fetches\":99')::bytea WHERE id = $1",
        asked.id,
    )
    request = pb.ConsentIdRequest(id=asked.id)
    await refused(portal.GetMyConsent(request, metadata=citizen.metadata, timeout=10), grpc.StatusCode.DATA_LOSS)
    status = pb.GetConsentStatusRequest(id=asked.id)
    await refused(agency.stub.GetConsentStatus(status, timeout=10), grpc.StatusCode.DATA_LOSS)
