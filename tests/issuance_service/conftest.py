"""Fixtures of the dossier tests: level-2 (and level-1) citizens with an issuance token, the issuance service
reached as the platform peer ``portal``, agencies registered with roles and calling with their own certificate,
and citizens picked by their seeded judicial record (clean, or with convictions)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest

from audit.events import Pseudonymizer
from core.keys.purposes import AUDIT_PSEUDONYM
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from protos.issuance.v1 import issuance_pb2 as pb
from protos.issuance.v1 import issuance_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from services.tls import secure_channel
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.agency_fetch_helpers import register_agency
from tests.conftest import channel_as
from tests.consent_agency_helpers import DemoAgency
from tests.oidc_helpers import person, portal_flow, signed_in

ISSUANCE = "urn:dinhdanh:service:issuance"


@dataclass(frozen=True)
class Applicant:
    citizen: Citizen
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.token}"),)


async def level_2(info: StackInfo, id_number: str) -> None:
    """The identity SetAssuranceLevel RPC as an operator (what `dinhdanh accounts verify-in-person` does)."""
    async with info.channel("identity") as channel:
        request = ipb.SetAssuranceLevelRequest(id_number=id_number, level=2, note="Công an phường Ba Đình, Hà Nội")
        account = await igrpc.IdentityStub(channel).SetAssuranceLevel(request, timeout=10)
    assert account.assurance_level == 2


async def applicant(http: httpx.AsyncClient, info: StackInfo, citizen: Citizen, level: int = 2) -> Applicant:
    """``citizen`` activated (password + TOTP), raised to ``level``, signed in to the demo portal for the issuance
    service (scope issuance.apply, resource urn:dinhdanh:service:issuance)."""
    who = await person(info, citizen)
    if level == 2:
        await level_2(info, citizen.id_number)
    flow = portal_flow(info, scope="openid issuance.apply", resource=ISSUANCE)
    _, params = await signed_in(http, flow, who)
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code == 200, reply.text
    return Applicant(citizen, str(reply.json()["access_token"]))


@pytest.fixture(scope="session")
def convicted(convicted_citizens: Iterator[Citizen]) -> list[Citizen]:
    """A seeded citizen whose judicial record holds convictions, taken from the session's pool of them."""
    return [next(convicted_citizens)]


@pytest.fixture(scope="session")
def clean_citizens(fresh_citizens: Iterator[Citizen], convicted: list[Citizen]) -> Iterator[Citizen]:
    """Fresh citizens (no account yet) with a clean judicial record."""
    skip = {c.id_number for c in convicted}
    return (c for c in fresh_citizens if c.id_number not in skip)


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def certificates(stack: Stack) -> AsyncIterator[pb_grpc.CertificatesStub]:
    """Certificates as the demo portal's backend reaches it (the citizen's token in the metadata)."""
    async with channel_as(stack, "issuance", "portal") as channel:
        yield pb_grpc.CertificatesStub(channel)


@dataclass(frozen=True)
class AgencyCalls:
    agency: DemoAgency
    officers: pb_grpc.OfficersStub
    requests: pb_grpc.AgencyRequestsStub


def agency_channel(stack: Stack, agency: DemoAgency) -> grpc.aio.Channel:
    return secure_channel(f"127.0.0.1:{stack.ports.issuance}", agency.ca, agency.cert, agency.key, server="issuance")


async def _agency(stack: Stack, folder: Path, name: str, roles: tuple[str, ...]) -> AsyncIterator[AgencyCalls]:
    agency = register_agency(stack, f"{name} {uuid.uuid4().hex[:6]}", folder, roles=roles)
    async with agency_channel(stack, agency) as channel:
        yield AgencyCalls(agency, pb_grpc.OfficersStub(channel), pb_grpc.AgencyRequestsStub(channel))


@pytest.fixture(scope="module")
async def officer(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AgencyCalls]:
    """The Judicial Records Centre's officers (role officer)."""
    async for calls in _agency(stack, tmp_path_factory.mktemp("officer"), "Trung tâm LLTP", ("officer",)):
        yield calls


@pytest.fixture(scope="module")
async def plain_agency(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AgencyCalls]:
    """An agency registered with no role at all."""
    async for calls in _agency(stack, tmp_path_factory.mktemp("plain"), "Sở Kế hoạch", ()):
        yield calls


@pytest.fixture(scope="module")
async def by_law(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AgencyCalls]:
    """An agency a law allows to obtain Form No. 1 (role authorised_by_law)."""
    async for calls in _agency(stack, tmp_path_factory.mktemp("bylaw"), "Sở Nội vụ", ("authorised_by_law",)):
        yield calls


@pytest.fixture(scope="module")
async def court(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[AgencyCalls]:
    """A procedural authority (role procedural_authority)."""
    async for calls in _agency(stack, tmp_path_factory.mktemp("court"), "Tòa án nhân dân", ("procedural_authority",)):
        yield calls


@pytest.fixture
async def owner_db(info: StackInfo) -> AsyncIterator[asyncpg.Connection]:
    """PostgreSQL as the database owner (to read what the service wrote)."""
    connection = await asyncpg.connect(info.postgres_dsn)
    try:
        yield connection
    finally:
        await connection.close()


def pseudonym(stack: Stack, id_number: str) -> str:
    return Pseudonymizer(stack.secrets.keys("issuance").key(AUDIT_PSEUDONYM)).ref(id_number)


def answers(form: int = 1, purpose: str = "", copies: int = 1, **extra: object) -> pb.Answers:
    chosen = purpose or ("EMPLOYMENT" if form == 1 else "PERSONAL")
    return pb.Answers(form=form, purpose=chosen, copies=copies, delivery=pb.DELIVERY_ELECTRONIC,
                      email="nguoi.dan@example.vn", **extra)  # type: ignore[arg-type]  # fmt: skip


def apply_request(form: int = 1, request_id: str = "", **extra: object) -> pb.ApplyRequest:
    return pb.ApplyRequest(request_id=request_id or str(uuid.uuid4()), answers=answers(form), **extra)  # type: ignore[arg-type]
