"""A signed extract of the health book is issued once per request_id (the client's idempotency key): parallel
IssueExtract calls with one request_id, a retry, and a double submit of the portal's form each give one vault
document and one ``health.extracts`` row; a missing or malformed request_id is INVALID_ARGUMENT (the portal: 400)."""

from __future__ import annotations

import asyncio
import re
import uuid

import grpc
import httpx
import pytest

from audit.events import Pseudonymizer
from core.keys.purposes import AUDIT_PSEUDONYM
from protos.issuance.v1 import health_pb2 as pb
from protos.issuance.v1 import health_pb2_grpc as pb_grpc
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import channel_as
from tests.health_service.conftest import Reader, reader_of, record
from tests.health_service.test_portal_health import health_session
from tests.oidc_helpers import person
from tests.vault_helpers import rows

PARALLEL = 5
REQUEST_ID = re.compile(r'name="request_id" value="([^"]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def health_books(stack: Stack, reader: Reader) -> list[vpb.Document]:
    """The HEALTH_BOOK documents in the reader's vault."""
    async with channel_as(stack, "vault", "portal") as channel:
        listed = await vgrpc.VaultStub(channel).ListDocuments(
            vpb.ListDocumentsRequest(page_size=100, document_type=vpb.DOCUMENT_TYPE_HEALTH_BOOK),
            metadata=reader.metadata,
            timeout=30,
        )
    return list(listed.documents)


async def extracts_of(stack: Stack, info: StackInfo, citizen: Citizen) -> list[str]:
    """The ids of the citizen's rows in ``health.extracts`` (by their audit pseudonym)."""
    subject = Pseudonymizer(stack.secrets.keys("health").key(AUDIT_PSEUDONYM)).ref(citizen.id_number)
    found = await rows(info, "SELECT id FROM health.extracts WHERE subject = $1", subject)
    return [str(row["id"]) for row in found]


async def test_parallel_extracts_with_one_request_id_are_one_document(
    http: httpx.AsyncClient,
    info: StackInfo,
    stack: Stack,
    pushing: pb_grpc.HealthRecordsStub,
    portal_health: pb_grpc.HealthRecordsStub,
    fresh_citizens: object,
) -> None:
    citizen: Citizen = next(fresh_citizens)  # type: ignore[call-overload]
    pushed = await pushing.PushVisit(pb.PushVisitRequest(visit=record(citizen, "KCB-ONCE-1")), timeout=30)
    reader = await reader_of(http, info, citizen)
    ask = pb.IssueExtractRequest(visit_ids=[pushed.id], request_id=str(uuid.uuid4()))
    issued = await asyncio.gather(
        *(portal_health.IssueExtract(ask, metadata=reader.metadata, timeout=120) for _ in range(PARALLEL))
    )
    ids = {reply.vault_document_id for reply in issued}
    assert len(ids) == 1, ids
    documents = await health_books(stack, reader)
    assert [d.id for d in documents] == list(ids)
    assert len(await extracts_of(stack, info, citizen)) == 1

    again = await portal_health.IssueExtract(ask, metadata=reader.metadata, timeout=60)  # a later retry
    assert again.vault_document_id in ids
    assert len(await health_books(stack, reader)) == 1
    (extract_id,) = await extracts_of(stack, info, citizen)
    audited = await rows(
        info, "SELECT outcome FROM audit.events WHERE action = 'health.extract.issue' AND detail->>'extract_id' = $1",
        extract_id,
    )  # fmt: skip
    assert sorted(row["outcome"] for row in audited) == ["replay"] * PARALLEL + ["success"]

    other = pb.IssueExtractRequest(visit_ids=[pushed.id], request_id=str(uuid.uuid4()))
    second = await portal_health.IssueExtract(other, metadata=reader.metadata, timeout=60)  # another request
    assert second.vault_document_id not in ids
    assert len(await health_books(stack, reader)) == 2
    assert len(await extracts_of(stack, info, citizen)) == 2


@pytest.mark.parametrize("request_id", ["", "not-a-uuid"])
async def test_an_extract_needs_a_request_id(
    portal_health: pb_grpc.HealthRecordsStub, reader: Reader, request_id: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await portal_health.IssueExtract(
            pb.IssueExtractRequest(request_id=request_id), metadata=reader.metadata, timeout=60
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert "request_id" in (caught.value.details() or "")


async def test_a_double_submit_of_the_portal_form_is_one_document(
    http: httpx.AsyncClient,
    info: StackInfo,
    stack: Stack,
    pushing: pb_grpc.HealthRecordsStub,
    fresh_citizens: object,
) -> None:
    citizen: Citizen = next(fresh_citizens)  # type: ignore[call-overload]
    await pushing.PushVisit(pb.PushVisitRequest(visit=record(citizen, "KCB-ONCE-PORTAL-1")), timeout=30)
    browser, page = await health_session(http, info, await person(info, citizen))
    assert page.status_code == 200, page.text[:500]
    csrf, request_id = CSRF.search(page.text), REQUEST_ID.search(page.text)
    assert csrf is not None
    assert request_id is not None, "the extract form carries a request_id"
    uuid.UUID(request_id.group(1))
    portal = info.demo_portal.rstrip("/")
    form = {"csrf": csrf.group(1), "request_id": request_id.group(1)}

    posted = await asyncio.gather(*(browser.request("POST", f"{portal}/health/extract", data=form) for _ in range(2)))
    assert [reply.status_code for reply in posted] == [303, 303], [reply.text[:300] for reply in posted]
    done = await browser.follow("POST", f"{portal}/health/extract", data=form)  # once more, after both
    assert done.status_code == 200, done.text[:500]
    assert 'id="notice"' in done.text
    extracts = await extracts_of(stack, info, citizen)
    assert len(extracts) == 1, extracts
    documents = await rows(
        info, "SELECT DISTINCT logical_id FROM vault.documents WHERE source = 'issued' AND issuer_document_id = $1",
        extracts[0],
    )  # fmt: skip
    assert len(documents) == 1
    fresh = REQUEST_ID.search(done.text)
    assert fresh is not None
    assert fresh.group(1) != request_id.group(1)  # the next form is the next extract

    missing = await browser.request("POST", f"{portal}/health/extract", data={"csrf": csrf.group(1)})
    assert missing.status_code == 400
    assert len(await extracts_of(stack, info, citizen)) == 1
