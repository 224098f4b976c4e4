"""Officers.Revoke / Suspend / Reinstate on the real issuance service (services/issuance_server.py delegating
to issuance.revocation): an officer agency's certificate, the dossier's credential_status in the answer, the
edge's list changed at once; refusals with their gRPC codes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import httpx
import pytest

from issuance.status_list import Status, verify_status_list
from protos.issuance.v1 import issuance_pb2 as pb
from protos.issuance.v1 import issuance_pb2_grpc as pb_grpc
from services.tls import secure_channel
from stack.supervisor import Stack
from tests.agency_fetch_helpers import register_agency
from tests.issuance_status.conftest import MakeDossier

pytestmark = pytest.mark.usefixtures("published_keys")


async def _officers(stack: Stack, folder: object, roles: tuple[str, ...]) -> AsyncIterator[pb_grpc.OfficersStub]:
    agency = register_agency(stack, f"Trung tâm LLTP {uuid.uuid4().hex[:6]}", folder, roles=roles)  # type: ignore[arg-type]
    address = f"127.0.0.1:{stack.ports.issuance}"
    async with secure_channel(address, agency.ca, agency.cert, agency.key, server="issuance") as channel:
        yield pb_grpc.OfficersStub(channel)


@pytest.fixture(scope="module")
async def officers(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[pb_grpc.OfficersStub]:
    async for stub in _officers(stack, tmp_path_factory.mktemp("sta-officer"), ("officer",)):
        yield stub


@pytest.fixture(scope="module")
async def not_officers(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[pb_grpc.OfficersStub]:
    async for stub in _officers(stack, tmp_path_factory.mktemp("sta-plain"), ()):
        yield stub


async def refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def entry(http: httpx.AsyncClient, issuer: str, index: int) -> Status:
    token = (await http.get(f"{issuer}/statuslists/0")).text
    jwks = (await http.get(f"{issuer}/.well-known/jwt-vc-issuer")).json()["jwks"]
    verified = verify_status_list(token, jwks, uri=f"{issuer}/statuslists/0", at=datetime.now(UTC))
    return verified.status_list.status(index)


async def test_an_officer_suspends_reinstates_and_revokes_through_the_service(
    officers: pb_grpc.OfficersStub, issued_dossier: MakeDossier, http: httpx.AsyncClient, issuer: str
) -> None:
    dossier = await issued_dossier()
    change = pb.StatusChangeRequest(id=str(dossier.id), reason="đang xác minh lại")
    suspended = await officers.Suspend(change, timeout=20)
    assert suspended.credential_status == pb.CREDENTIAL_STATUS_SUSPENDED
    assert await entry(http, issuer, dossier.status_index) is Status.SUSPENDED
    reinstated = await officers.Reinstate(change, timeout=20)
    assert reinstated.credential_status == pb.CREDENTIAL_STATUS_VALID
    assert await entry(http, issuer, dossier.status_index) is Status.VALID
    revoked = await officers.Revoke(change, timeout=20)
    assert revoked.credential_status == pb.CREDENTIAL_STATUS_REVOKED
    assert revoked.status == pb.DOSSIER_STATUS_ISSUED  # the dossier stays ISSUED; its certificate is revoked
    assert await entry(http, issuer, dossier.status_index) is Status.INVALID

    again = await refused(officers.Revoke(change, timeout=20))
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    back = await refused(officers.Reinstate(change, timeout=20))
    assert back.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_refusals_have_their_codes(
    officers: pb_grpc.OfficersStub, not_officers: pb_grpc.OfficersStub, issued_dossier: MakeDossier
) -> None:
    dossier = await issued_dossier()
    no_reason = await refused(officers.Revoke(pb.StatusChangeRequest(id=str(dossier.id), reason=" "), timeout=20))
    assert no_reason.code() == grpc.StatusCode.INVALID_ARGUMENT
    unknown = await refused(officers.Revoke(pb.StatusChangeRequest(id=str(uuid.uuid4()), reason="x"), timeout=20))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    approved = await issued_dossier(status="APPROVED")
    early = await refused(officers.Suspend(pb.StatusChangeRequest(id=str(approved.id), reason="x"), timeout=20))
    assert early.code() == grpc.StatusCode.FAILED_PRECONDITION
    other = await refused(not_officers.Revoke(pb.StatusChangeRequest(id=str(dossier.id), reason="x"), timeout=20))
    assert other.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_parallel_revocations_through_the_service_all_reach_the_list(
    officers: pb_grpc.OfficersStub, issued_dossier: MakeDossier, http: httpx.AsyncClient, issuer: str
) -> None:
    dossiers = [await issued_dossier() for _ in range(20)]
    answers = await asyncio.gather(
        *(officers.Revoke(pb.StatusChangeRequest(id=str(d.id), reason="thu hồi"), timeout=60) for d in dossiers)
    )
    assert {a.credential_status for a in answers} == {pb.CREDENTIAL_STATUS_REVOKED}
    token = (await http.get(f"{issuer}/statuslists/0")).text
    jwks = (await http.get(f"{issuer}/.well-known/jwt-vc-issuer")).json()["jwks"]
    verified = verify_status_list(token, jwks, uri=f"{issuer}/statuslists/0", at=datetime.now(UTC))
    assert [verified.status_list.status(d.status_index) for d in dossiers] == [Status.INVALID] * 20
