"""Fixtures of the health book tests: facilities registered with the role ``facility`` (their own certificates),
an agency without it, citizens signed in with one token for the health service and the vault, and visit records."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from bench.consent import ManyResources
from protos.issuance.v1 import health_pb2 as pb
from protos.issuance.v1 import health_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from services.tls import secure_channel
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.agency_fetch_helpers import register_agency
from tests.conftest import channel_as
from tests.consent_agency_helpers import DemoAgency
from tests.oidc_helpers import Person, person, signed_in

HEALTH = "urn:dinhdanh:service:health"
VAULT = "urn:dinhdanh:service:vault"
VIETNAM = dt.timezone(dt.timedelta(hours=7))


@dataclass(frozen=True)
class Reader:
    """A citizen signed in through the demo portal's client: one token for the health service and the vault."""

    citizen: Citizen
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


async def reader_of(
    http: httpx.AsyncClient, info: StackInfo, citizen: Citizen, scope: str = "health.read", who: Person | None = None
) -> Reader:
    """``citizen`` (activated here unless ``who`` is given) signed in with a token for the health service and vault."""
    who = who or await person(info, citizen)
    client = info.clients["portal"]
    flow = ManyResources(info.oidc_issuer, client["client_id"], client["client_secret"], client["redirect_uris"][0],
                         f"openid {scope} vault.read", resources=(HEALTH, VAULT))  # fmt: skip
    _, params = await signed_in(http, flow, who)
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code == 200, reply.text
    return Reader(citizen, str(reply.json()["access_token"]))


def today() -> dt.date:
    return dt.datetime.now(VIETNAM).date()


def record(citizen: Citizen, record_id: str, **changes: object) -> pb.VisitRecord:
    """A whole visit record: two diagnoses (main first), a procedure, a prescription, a lab result, a dose."""
    day = today() - dt.timedelta(days=3)
    message = pb.VisitRecord(
        facility_record_id=record_id,
        citizen_id_number=citizen.id_number,
        admitted_on=day.isoformat(),
        discharged_on=day.isoformat(),
        reason="Sốt, ho, đau họng 3 ngày",
        diagnoses=[pb.Diagnosis(icd10="J06.9"), pb.Diagnosis(icd10="I10", text="Tăng huyết áp đã biết")],
        procedures=[pb.Procedure(code="02.1899", name="Khám Nội")],
        prescriptions=[
            pb.Prescription(
                drug="Paracetamol 500mg", dose="1 viên", frequency="3 lần/ngày", days=5, quantity="15", unit="viên"
            )
        ],
        lab_results=[pb.LabResult(test="CRP", value="12", unit="mg/L", reference_range="< 5")],
        vaccinations=[pb.Vaccination(vaccine="Cúm mùa (Vaxigrip Tetra)", dose="1", date=day.isoformat(), lot="VX123")],
        follow_up_on=(day + dt.timedelta(days=7)).isoformat(),
        doctor="BS. Nguyễn Văn An",
        ministry_code="79014",
    )
    for name, value in changes.items():
        if isinstance(value, list):
            del getattr(message, name)[:]
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)
    return message


def health_channel(info: StackInfo, agency: DemoAgency) -> grpc.aio.Channel:
    """The health service over mutual TLS with ``agency``'s own certificate."""
    return secure_channel(info.services["health"], agency.ca, agency.cert, agency.key, server="health")


@pytest.fixture(scope="module")
def agencies_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("facilities")


@pytest.fixture(scope="module")
def facility(stack: Stack, agencies_dir: Path) -> DemoAgency:
    return register_agency(stack, "Bệnh viện Chợ Rẫy (test)", agencies_dir, roles=("facility",))


@pytest.fixture(scope="module")
def other_facility(stack: Stack, agencies_dir: Path) -> DemoAgency:
    return register_agency(stack, "Bệnh viện Nhân dân 115 (test)", agencies_dir, roles=("facility",))


@pytest.fixture(scope="module")
def not_a_facility(stack: Stack, agencies_dir: Path) -> DemoAgency:
    return register_agency(stack, "Sở Lao động (not a facility)", agencies_dir)


@pytest.fixture(scope="module")
async def pushing(info: StackInfo, facility: DemoAgency) -> AsyncIterator[pb_grpc.HealthRecordsStub]:
    async with health_channel(info, facility) as channel:
        yield pb_grpc.HealthRecordsStub(channel)


@pytest.fixture(scope="module")
async def other_pushing(info: StackInfo, other_facility: DemoAgency) -> AsyncIterator[pb_grpc.HealthRecordsStub]:
    async with health_channel(info, other_facility) as channel:
        yield pb_grpc.HealthRecordsStub(channel)


@pytest.fixture(scope="module")
async def portal_health(stack: Stack) -> AsyncIterator[pb_grpc.HealthRecordsStub]:
    """The health service as the demo portal reaches it (the citizen's token decides whose book)."""
    async with channel_as(stack, "health", "portal") as channel:
        yield pb_grpc.HealthRecordsStub(channel)


@pytest.fixture(scope="module")
def patient(fresh_citizens: Iterator[Citizen]) -> Citizen:
    return next(fresh_citizens)


@pytest.fixture(scope="module")
async def reader(http: httpx.AsyncClient, info: StackInfo, patient: Citizen) -> Reader:
    return await reader_of(http, info, patient)
