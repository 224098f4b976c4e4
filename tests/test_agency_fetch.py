"""Agency fetches in the vault (issue 10 items 3 and 7) against the real stack: consents granted through the real
consent service, consent tokens from the edge's mTLS token endpoint (bound to the agency's certificate), fetches
over the agency's own certificate; every refusal PERMISSION_DENIED with its reason code (or UNAUTHENTICATED for a
token over the wrong certificate), concurrent fetches never past the maximum, and the audit rows."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.agency_fetch_helpers import (
    Consents,
    DemoAgency,
    SignedIn,
    audit_ref,
    denied,
    download_shared,
    list_shared,
    register_agency,
    sign_in_citizen,
    terms,
)
from tests.agency_helpers import resigned
from tests.conftest import channel_as
from tests.vault_helpers import rows, upload

PDF = b"%PDF-1.7\n" + os.urandom(40_000) + b"\n%%EOF\n"
GIVEN = vpb.DOCUMENT_TYPE_DIPLOMA


@pytest.fixture(scope="module")
def agencies(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, DemoAgency]:
    folder: Path = tmp_path_factory.mktemp("agency-certs")
    return {name: register_agency(stack, f"Cơ quan thử {name}", folder / name) for name in ("a", "b")}


@pytest.fixture(scope="module")
async def consents(stack: Stack) -> AsyncIterator[Consents]:
    async with channel_as(stack, "consent", "edge") as channel:
        yield Consents(channel)


@pytest.fixture(scope="module")
def people(fresh_citizens: Iterator[Citizen]) -> Iterator[Citizen]:
    return fresh_citizens


@pytest.fixture(scope="module")
async def citizen(http: httpx.AsyncClient, info: StackInfo, people: Iterator[Citizen]) -> SignedIn:
    return await sign_in_citizen(http, info, next(people))


@pytest.fixture(scope="module")
async def other(http: httpx.AsyncClient, info: StackInfo, people: Iterator[Citizen]) -> SignedIn:
    return await sign_in_citizen(http, info, next(people))


@pytest.fixture(scope="module")
async def documents(vault: vgrpc.VaultStub, citizen: SignedIn, other: SignedIn) -> dict[str, str]:
    """The citizen's granted diploma (by id), an ungranted paper, and another citizen's diploma."""
    made = {
        "granted": await upload(vault, citizen.token, [PDF], GIVEN, "Bằng tốt nghiệp", "bang.pdf"),
        "ungranted": await upload(
            vault, citizen.token, [PDF[:2000] + b"%%EOF\n"], vpb.DOCUMENT_TYPE_HEALTH_BOOK, "Sổ sức khỏe", "so.pdf"
        ),
        "others": await upload(vault, other.token, [PDF], GIVEN, "Bằng của người khác", "khac.pdf"),
    }
    return {name: document.id for name, document in made.items()}


@pytest.fixture
async def channels(stack: Stack, agencies: dict[str, DemoAgency], info: StackInfo) -> AsyncIterator[dict[str, Any]]:
    a, b = agencies["a"].vault(info), agencies["b"].vault(info)
    async with a, b:
        yield {"a": a, "b": b}


async def fetches(info: StackInfo, consent_id: str) -> int:
    found = await rows(info, "SELECT fetches FROM consent.consents WHERE id = $1", uuid.UUID(consent_id))
    return int(found[0]["fetches"])


async def test_grant_token_fetch_revoke_refused(
    consents: Consents, citizen: SignedIn, agencies: dict[str, DemoAgency], documents: dict[str, str],
    channels: dict[str, Any], info: StackInfo, stack: Stack,
) -> None:  # fmt: skip
    a = agencies["a"]
    consent_id = await consents.grant(citizen, a, terms((documents["granted"],)))
    token = await a.token(info, consent_id)
    fetched = await download_shared(channels["a"], token, documents["granted"])
    assert fetched.code == grpc.StatusCode.OK, fetched.details
    assert fetched.content == PDF, "what the citizen uploaded"
    assert fetched.metadata is not None
    assert fetched.metadata.id == documents["granted"]
    assert fetched.metadata.title == "Bằng tốt nghiệp"
    assert await fetches(info, consent_id) == 1
    await consents.change(citizen, "Revoke", consent_id)
    denied(await download_shared(channels["a"], token, documents["granted"]), "NOT_ACTIVE")
    assert await fetches(info, consent_id) == 1, "a denial charges nothing"
    events = await rows(
        info, "SELECT actor, action, outcome, subject, detail FROM audit.events WHERE detail->>'consent_id' = $1"
        " AND action LIKE 'consent.fetch' ORDER BY id", consent_id,
    )  # fmt: skip
    assert [(e["actor"], e["action"], e["outcome"]) for e in events] == [
        (f"agency:{a.client_id}", "consent.fetch", "success"), (f"agency:{a.client_id}", "consent.fetch", "refused"),
    ]  # fmt: skip
    subject = audit_ref(stack, citizen.id_number)
    for event in events:
        assert event["subject"] == subject
        detail = json.loads(event["detail"]) if isinstance(event["detail"], str) else event["detail"]
        assert set(detail) == {"consent_id", "client_id", "purpose", "document_id", "reason"}
        assert detail["document_id"] == documents["granted"]
        assert detail["client_id"] == a.client_id
        assert citizen.id_number not in json.dumps(detail)
        assert "Bằng" not in json.dumps(detail, ensure_ascii=False)
    assert json.loads(events[1]["detail"])["reason"] == "NOT_ACTIVE"
    print("audit rows:", [dict(e) for e in events])


async def test_pause_refuses_and_resume_fetches_again(
    consents: Consents, citizen: SignedIn, agencies: dict[str, DemoAgency], documents: dict[str, str],
    channels: dict[str, Any], info: StackInfo,
) -> None:  # fmt: skip
    a = agencies["a"]
    consent_id = await consents.grant(citizen, a, terms((documents["granted"],)))
    token = await a.token(info, consent_id)
    await consents.change(citizen, "Pause", consent_id)
    denied(await download_shared(channels["a"], token, documents["granted"]), "NOT_ACTIVE")
    await consents.change(citizen, "Resume", consent_id)
    fetched = await download_shared(channels["a"], token, documents["granted"])
    assert fetched.code == grpc.StatusCode.OK, fetched.details
    assert fetched.content == PDF


async def test_before_start_and_after_expiry_are_refused(
    stack: Stack, consents: Consents, citizen: SignedIn, agencies: dict[str, DemoAgency], documents: dict[str, str],
    channels: dict[str, Any], info: StackInfo,
) -> None:  # fmt: skip
    a = agencies["a"]
    now = dt.datetime.now(dt.UTC)
    later = await consents.grant(citizen, a, terms((documents["granted"],), start=now + dt.timedelta(hours=1)))
    soon = await consents.grant(citizen, a, terms((documents["granted"],), expiry=now + dt.timedelta(seconds=4)))
    token = await a.token(info, soon)
    # the edge issues no token for a consent that has not started: the vault must refuse one all the same
    detail = {"type": "consent", "consent_id": later, "purpose": "EMPLOYMENT_BACKGROUND_CHECK"}
    early = await resigned(stack, info, token, authorization_details=[detail])
    denied(await download_shared(channels["a"], early, documents["granted"]), "NOT_STARTED")
    await asyncio.sleep(max(0.0, (now + dt.timedelta(seconds=5) - dt.datetime.now(dt.UTC)).total_seconds()))
    denied(await download_shared(channels["a"], token, documents["granted"]), "EXPIRED")


async def test_past_the_maximum_and_over_the_frequency_are_refused(
    consents: Consents, citizen: SignedIn, agencies: dict[str, DemoAgency], documents: dict[str, str],
    channels: dict[str, Any], info: StackInfo,
) -> None:  # fmt: skip
    a = agencies["a"]
    used_up = await consents.grant(citizen, a, terms((documents["granted"],), max_fetches=2, per_day=2))
    daily = await consents.grant(citizen, a, terms((documents["granted"],), max_fetches=10, per_day=2))
    for consent_id, reason in ((used_up, "USES_EXHAUSTED"), (daily, "FREQUENCY_EXCEEDED")):
        token = await a.token(info, consent_id)
        for _ in range(2):
            assert (await download_shared(channels["a"], token, documents["granted"])).code == grpc.StatusCode.OK
        denied(await download_shared(channels["a"], token, documents["granted"]), reason)
        assert await fetches(info, consent_id) == 2


async def test_documents_outside_the_grant_and_of_others_look_alike(
    consents: Consents, citizen: SignedIn, agencies: dict[str, DemoAgency], documents: dict[str, str],
    channels: dict[str, Any], info: StackInfo,
) -> None:  # fmt: skip
    """Another citizen's document id answers exactly like an unknown id: the grant alone decides."""
    a = agencies["a"]
    by_id = await consents.grant(citizen, a, terms((documents["granted"],)))
    by_type = await consents.grant(citizen, a, terms(document_types=(GIVEN,)))
    for consent_id in (by_id, by_type):
        token = await a.token(info, consent_id)
        answers = []
        for document_id in (documents["ungranted"], documents["others"], str(uuid.uuid4())):
            fetched = await download_shared(channels["a"], token, document_id)
            denied(fetched, "DOCUMENT_NOT_IN_GRANT")
            answers.append((fetched.code, fetched.details, fetched.trailers))
        assert answers[1] == answers[2], "another citizen's document is an unknown one"
        assert await fetches(info, consent_id) == 0
        ok = await download_shared(channels["a"], token, documents["granted"])
        assert ok.code == grpc.StatusCode.OK
        assert ok.content == PDF
    # a grant naming another citizen's document by id: still not this citizen's
    named = await consents.grant(citizen, a, terms((documents["granted"], documents["others"])))
    token = await a.token(info, named)
    denied(await download_shared(channels["a"], token, documents["others"]), "NOT_THE_CITIZENS")
    unknown = str(uuid.uuid4())
    assert unknown not in documents.values()


async def test_tokens_of_others_and_the_wrong_certificate(
    stack: Stack, consents: Consents, citizen: SignedIn, agencies: dict[str, DemoAgency], documents: dict[str, str],
    channels: dict[str, Any], info: StackInfo, http: httpx.AsyncClient,
) -> None:  # fmt: skip
    a, b = agencies["a"], agencies["b"]
    consent_a = await consents.grant(citizen, a, terms((documents["granted"],)))
    consent_b = await consents.grant(citizen, b, terms((documents["granted"],)))
    token_a, token_b = await a.token(info, consent_a), await b.token(info, consent_b)
    refused_token = await b.token_response(info, consent_a)  # an artefact that is not b's
    assert refused_token.status_code >= 400, refused_token.text
    # the right token over the wrong certificate, another agency's token over this agency's certificate
    for channel, token in ((channels["b"], token_a), (channels["a"], token_b)):
        fetched = await download_shared(channel, token, documents["granted"])
        assert fetched.code == grpc.StatusCode.UNAUTHENTICATED, fetched.details
        assert "bound to another certificate" in fetched.details
        assert 'error="invalid_token"' in fetched.trailers.get("www-authenticate", "")
    # a token naming another agency's consent (the edge would not issue it): WRONG_AGENCY at the vault
    detail = {"type": "consent", "consent_id": consent_a, "purpose": "EMPLOYMENT_BACKGROUND_CHECK"}
    forged = await resigned(stack, info, token_b, authorization_details=[detail])
    denied(await download_shared(channels["b"], forged, documents["granted"]), "WRONG_AGENCY")
    assert await fetches(info, consent_a) == 0
    # a citizen's token, and an unbound client token of the agency itself, over the agency's certificate
    fetched = await download_shared(channels["a"], citizen.token, documents["granted"])
    assert fetched.code == grpc.StatusCode.PERMISSION_DENIED, fetched.details
    plain = await resigned(stack, info, token_a, cnf=None, authorization_details=None)  # the edge issues none now
    fetched = await download_shared(channels["a"], plain, documents["granted"])
    assert fetched.code == grpc.StatusCode.UNAUTHENTICATED, fetched.details
    assert "certificate-bound" in fetched.details
    # the agency's bound token through a platform peer (not the agency's certificate)
    async with channel_as(stack, "vault", "edge") as edge:
        fetched = await download_shared(edge, token_a, documents["granted"])
        assert fetched.code == grpc.StatusCode.UNAUTHENTICATED, fetched.details
    assert (await download_shared(channels["a"], token_a, documents["granted"])).code == grpc.StatusCode.OK


async def test_concurrent_fetches_never_exceed_the_maximum(
    consents: Consents, citizen: SignedIn, agencies: dict[str, DemoAgency], documents: dict[str, str],
    channels: dict[str, Any], info: StackInfo,
) -> None:  # fmt: skip
    a = agencies["a"]
    consent_id = await consents.grant(citizen, a, terms((documents["granted"],), max_fetches=4, per_day=4))
    token = await a.token(info, consent_id)
    results = await asyncio.gather(*(download_shared(channels["a"], token, documents["granted"]) for _ in range(12)))
    ok = [r for r in results if r.code == grpc.StatusCode.OK]
    assert len(ok) == 4, [(r.code, r.details) for r in results]
    assert all(r.content == PDF for r in ok)
    refused = [r for r in results if r.code != grpc.StatusCode.OK]
    assert len(refused) == 8
    for fetched in refused:
        denied(fetched, "USES_EXHAUSTED")
    assert await fetches(info, consent_id) == 4
    print(f"12 parallel DownloadShared with max_fetches 4: {len(ok)} OK, {len(refused)} USES_EXHAUSTED, stored 4")


async def test_listing_covers_the_grant_newest_first_and_charges_nothing(
    consents: Consents, citizen: SignedIn, agencies: dict[str, DemoAgency], documents: dict[str, str],
    channels: dict[str, Any], info: StackInfo, vault: vgrpc.VaultStub, stack: Stack,
) -> None:  # fmt: skip
    a = agencies["a"]
    newer = await upload(vault, citizen.token, [PDF], GIVEN, "Bằng thạc sĩ", "thac-si.pdf")
    consent_id = await consents.grant(citizen, a, terms(document_types=(GIVEN,)))
    token = await a.token(info, consent_id)
    listed = await list_shared(channels["a"], token)
    assert [d.id for d in listed.documents] == [newer.id, documents["granted"]], "the citizen's diplomas, newest first"
    first = await list_shared(channels["a"], token, page_size=1)
    assert [d.id for d in first.documents] == [newer.id]
    assert first.next_page_token
    second = await list_shared(channels["a"], token, page_size=1, page_token=first.next_page_token)
    assert [d.id for d in second.documents] == [documents["granted"]]
    assert not second.next_page_token
    assert await fetches(info, consent_id) == 0, "a listing charges no use"
    await consents.change(citizen, "Pause", consent_id)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await list_shared(channels["a"], token)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (caught.value.details() or "").startswith("NOT_ACTIVE: ")
    assert dict(caught.value.trailing_metadata() or ()).get("consent-denial-reason") == "NOT_ACTIVE"
    events = await rows(
        info, "SELECT actor, outcome, subject, detail FROM audit.events WHERE detail->>'consent_id' = $1"
        " AND action = 'consent.list' ORDER BY id", consent_id,
    )  # fmt: skip
    assert [e["outcome"] for e in events] == ["success"] * 3 + ["refused"]
    assert {e["subject"] for e in events} == {audit_ref(stack, citizen.id_number)}
