"""gRPC translation for the electronic health book (protos/issuance/v1/health.proto); the rules live in
``issuance.health.service`` (and the domain modules it calls).

Who calls what (``POLICY``):

- health facilities, by their agency certificate alone (``spiffe://dinhdanh.gov.vn/agency/<client_id>``):
  ``PushVisit`` and ``GetPushedVisit``; the service then requires a registered, enabled agency with the role
  ``facility`` calling with its registered certificate (``issuance.agencies``);
- citizens, by an access token with the audience ``urn:dinhdanh:service:health`` and the scope ``health.read``
  through any platform peer (the demo portal): ``GetMyBook``, ``GetMyVisit``, ``GetMyVisitPdf``,
  ``IssueExtract``. A facility's certificate without a token is UNAUTHENTICATED there, a client token (all a
  facility can get) PERMISSION_DENIED: a facility never reads a book.

The proto's record (dates as ``YYYY-MM-DD``, the Ministry code ``ministry_code``) is translated into the domain's
member names (``issuance.health.visits``: instants at 00:00 Vietnam time, ``facility.code``); a refusal names the
proto's field (``visit.discharged_on: the time is in the future``).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from audit.events import Pseudonymizer
from core import deadline
from core.callers import Allow, current_caller, current_principal
from core.errors import InvalidArgument
from core.keys import purposes
from core.settings import Settings, key_provider
from db.pool import open_pool
from identity.oidc.subjects import Subjects
from issuance.agencies import PostgresAgencyDirectory
from issuance.delivery import ClientCredentials, VaultDeliverer
from issuance.health.service import Book, CitizenRef, HealthService
from issuance.health.store import PostgresHealthStore, StoredVisit
from issuance.health.visits import VIETNAM, Visit
from issuance.issuer_keys import SigningKey
from protos.issuance.v1 import health_pb2 as pb
from protos.issuance.v1 import health_pb2_grpc as pb_grpc
from protos.registry.v1 import registry_pb2 as rpb
from protos.registry.v1 import registry_pb2_grpc as rgrpc
from registry.citizen import Address, Citizen, Sex
from services.server import ServiceSpec, token_verifier
from services.tls import secure_channel

NAME = pb.DESCRIPTOR.services_by_name["HealthRecords"].full_name
FACILITIES = Allow.of(agencies=True)
CITIZENS = Allow.of(citizens=True, scopes=("health.read",))
POLICY: dict[str, Allow] = {f"/{NAME}/{method}": FACILITIES for method in ("PushVisit", "GetPushedVisit")}
POLICY |= {f"/{NAME}/{method}": CITIZENS for method in ("GetMyBook", "GetMyVisit", "GetMyVisitPdf", "IssueExtract")}

REGISTRY_TIMEOUT = 5.0
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
DOSE = re.compile(r"[0-9]{1,2}", re.ASCII)
SEX = {rpb.SEX_MALE: Sex.MALE, rpb.SEX_FEMALE: Sex.FEMALE}
# The domain's member names → the proto's fields (``visit.`` prefixed), for the refusals' messages.
TOP = {
    "record_id": "facility_record_id",
    "admitted_at": "admitted_on",
    "discharged_at": "discharged_on",
    "follow_up": "follow_up_on",
    "facility.code": "ministry_code",
    "facility.client_id": "ministry_code",
    "facility": "ministry_code",
    "referral.to_facility": "referral.facility_code",
}
INNER = {"diagnoses": {"code": "icd10"}, "vaccinations": {"dose_number": "dose"}}
FIELD = re.compile(r"(?P<name>[a-z_]+)(?P<index>\[[0-9]+\])?(?:\.(?P<inner>[a-z_]+))?:")
MEMBERS = frozenset(
    {"record_id", "citizen_id_number", "admitted_at", "discharged_at", "reason", "diagnoses", "procedures",
     "prescriptions", "lab_results", "vaccinations", "follow_up", "referral", "doctor", "facility"}
)  # fmt: skip


class HealthSettings(BaseSettings):
    """The health issuer's agency client (``stack/issuers.py``), for delivering extracts into vaults."""

    model_config = SettingsConfigDict(env_prefix="DINHDANH_HEALTH_", extra="ignore")

    client_id: str = ""
    client_secret: SecretStr = SecretStr("")


def proto_field(message: str) -> str:
    """A domain refusal with the proto's field name first (``visit.admitted_on: …``); others unchanged."""
    match = FIELD.match(message)
    if not match or match.group("name") not in MEMBERS:
        return message
    name, index, inner = match.group("name"), match.group("index") or "", match.group("inner")
    dotted = f"{name}.{inner}" if inner else name
    if dotted in TOP:
        field = TOP[dotted]
    elif inner and inner in INNER.get(name, {}):
        field = f"{name}{index}.{INNER[name][inner]}"
    else:
        field = f"{name}{index}.{inner}" if inner else f"{name}{index}"
    return f"visit.{field}:{message[match.end() :]}"


def _day_instant(value: str, field: str) -> str:
    """A proto day (``YYYY-MM-DD``) as the domain's instant: the day's start in Vietnam (UTC+7)."""
    if not DAY.fullmatch(value):
        raise InvalidArgument(f"visit.{field}: must be a date as YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(f"visit.{field}: is not a real date") from None
    return f"{value}T00:00:00+07:00"


def _some(**members: str) -> dict[str, str]:
    """The members that are set (proto3 strings are empty when absent)."""
    return {name: value for name, value in members.items() if value}


def record_of(record: pb.VisitRecord) -> dict[str, Any]:
    """The domain's JSON-like record (``visits.parse_visit``) of a pushed proto record."""
    members: dict[str, Any] = {
        "facility": {"code": record.ministry_code},
        "record_id": record.facility_record_id,
        "citizen_id_number": record.citizen_id_number,
        "admitted_at": _day_instant(record.admitted_on, "admitted_on"),
        "discharged_at": _day_instant(record.discharged_on, "discharged_on"),
        "reason": record.reason,
        "diagnoses": [{"code": d.icd10, **_some(text=d.text)} for d in record.diagnoses],
    }
    if record.procedures:
        members["procedures"] = [{"name": p.name, **_some(code=p.code)} for p in record.procedures]
    if record.prescriptions:
        members["prescriptions"] = [
            {"drug": p.drug, "dose": p.dose, "days": p.days,
             **_some(quantity=p.quantity, unit=p.unit, frequency=p.frequency)}
            for p in record.prescriptions
        ]  # fmt: skip
    if record.lab_results:
        members["lab_results"] = [
            {"test": r.test, "value": r.value, **_some(unit=r.unit, reference_range=r.reference_range)}
            for r in record.lab_results
        ]
    vaccinations = []
    for index, v in enumerate(record.vaccinations):
        if not DOSE.fullmatch(v.dose):
            raise InvalidArgument(f"visit.vaccinations[{index}].dose: the dose's number in its schedule (1..20)")
        vaccinations.append({"vaccine": v.vaccine, "dose_number": int(v.dose), "lot": v.lot, "date": v.date})
    if vaccinations:
        members["vaccinations"] = vaccinations
    if record.follow_up_on:
        members["follow_up"] = record.follow_up_on
    if record.HasField("referral") and (record.referral.facility_code or record.referral.reason):
        members["referral"] = {"to_facility": record.referral.facility_code, "reason": record.referral.reason}
    if record.doctor:
        members["doctor"] = record.doctor
    return members


def _local_day(instant: datetime) -> str:
    return instant.astimezone(VIETNAM).date().isoformat()


def _timestamp(instant: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(instant)
    return stamp


def record_pb(visit: Visit) -> pb.VisitRecord:
    message = pb.VisitRecord(
        facility_record_id=visit.record_id,
        citizen_id_number=visit.citizen_id_number,
        admitted_on=_local_day(visit.admitted_at),
        discharged_on=_local_day(visit.discharged_at),
        reason=visit.reason,
        diagnoses=[pb.Diagnosis(icd10=d.code, title=d.title, text=d.text) for d in visit.diagnoses],
        procedures=[pb.Procedure(code=p.code, name=p.name) for p in visit.procedures],
        prescriptions=[
            pb.Prescription(
                drug=p.drug,
                dose=p.dose,
                frequency=p.frequency,
                days=p.days,
                quantity=format(p.quantity.normalize(), "f"),
                unit=p.unit,
            )
            for p in visit.prescriptions
        ],
        lab_results=[
            pb.LabResult(test=r.test, value=r.value, unit=r.unit, reference_range=r.reference_range)
            for r in visit.lab_results
        ],
        vaccinations=[
            pb.Vaccination(vaccine=v.vaccine, dose=str(v.dose_number), date=v.date.isoformat(), lot=v.lot)
            for v in visit.vaccinations
        ],
        follow_up_on=visit.follow_up.isoformat() if visit.follow_up else "",
        doctor=visit.doctor,
        ministry_code=visit.facility.code,
    )
    if visit.referral is not None:
        message.referral.CopyFrom(pb.Referral(facility_code=visit.referral.to_facility, reason=visit.referral.reason))
    return message


def visit_pb(stored: StoredVisit) -> pb.Visit:
    visit = stored.visit
    return pb.Visit(
        id=str(stored.id),
        facility_code=visit.facility.client_id,
        facility_name=visit.facility.name,
        record=record_pb(visit),
        received_at=_timestamp(stored.received_at),
    )


def book_pb(found: Book) -> pb.HealthBook:
    citizen, book = found.citizen, found.book
    history: list[pb.Diagnosis] = []
    seen: set[str] = set()
    for entry in book.medical_history:
        if entry.main and entry.code not in seen:
            seen.add(entry.code)
            history.append(pb.Diagnosis(icd10=entry.code, title=entry.title))
    return pb.HealthBook(
        administrative=pb.AdministrativeData(
            full_name=citizen.full_name,
            date_of_birth=citizen.date_of_birth.isoformat(),
            sex=citizen.sex.value,
            id_number=citizen.id_number,
            permanent_address=citizen.permanent_address.formatted,
            phone=citizen.phone,
        ),
        visits=[visit_pb(item) for item in found.visits],
        vaccinations=[
            pb.Vaccination(vaccine=v.vaccine, dose=str(v.dose_number), date=v.date.isoformat(), lot=v.lot)
            for v in book.vaccinations
        ],
        history=history,
    )


def _address(message: rpb.Address) -> Address:
    return Address(message.street, message.commune, message.province)


def citizen_of(message: rpb.Citizen) -> Citizen:
    """The registry's record (protos/registry/v1) as the domain's ``Citizen``."""
    return Citizen(
        id_number=message.id_number,
        full_name=message.full_name,
        date_of_birth=date.fromisoformat(message.date_of_birth),
        sex=SEX.get(message.sex, Sex.MALE),
        nationality=message.nationality,
        ethnicity=message.ethnicity,
        religion=message.religion,
        hometown=message.hometown,
        permanent_address=_address(message.permanent_address),
        current_address=_address(message.current_address),
        id_card_issue_date=date.fromisoformat(message.id_card_issue_date),
        id_card_issue_place=message.id_card_issue_place,
        phone=message.phone,
    )


class RegistryCitizens:
    """``Registry`` over the population registry's ``GetCitizen`` (mutual TLS, the caller's deadline)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = rgrpc.PopulationRegistryStub(channel)

    async def citizen(self, id_number: str) -> Citizen | None:
        try:
            message = await self._stub.GetCitizen(
                rpb.GetCitizenRequest(id_number=id_number), timeout=deadline.remaining(REGISTRY_TIMEOUT)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise
        return citizen_of(message)


class HealthServicer(pb_grpc.HealthRecordsServicer):
    def __init__(self, service: HealthService) -> None:
        self._service = service

    def _citizen(self) -> CitizenRef:
        principal = current_principal()
        return self._service.citizen(principal.subject, principal.sector)

    # --- facilities --------------------------------------------------------------------------------------

    async def PushVisit(self, request: pb.PushVisitRequest, context: grpc.aio.ServicerContext) -> pb.Visit:
        try:
            stored = await self._service.push(current_caller(), lambda: record_of(request.visit))
        except InvalidArgument as error:
            raise type(error)(proto_field(error.message)) from None
        return visit_pb(stored)

    async def GetPushedVisit(self, request: pb.PushedVisitRequest, context: grpc.aio.ServicerContext) -> pb.Visit:
        return visit_pb(await self._service.pushed(current_caller(), request.facility_record_id))

    # --- citizens ----------------------------------------------------------------------------------------

    async def GetMyBook(self, request: pb.GetMyBookRequest, context: grpc.aio.ServicerContext) -> pb.HealthBook:
        return book_pb(await self._service.book(self._citizen()))

    async def GetMyVisit(self, request: pb.VisitRequest, context: grpc.aio.ServicerContext) -> pb.Visit:
        return visit_pb(await self._service.visit(self._citizen(), request.id))

    async def GetMyVisitPdf(self, request: pb.VisitRequest, context: grpc.aio.ServicerContext) -> pb.VisitPdf:
        rendered = await self._service.visit_pdf(self._citizen(), request.id)
        return pb.VisitPdf(pdf=rendered.content, filename=rendered.filename)

    async def IssueExtract(self, request: pb.IssueExtractRequest, context: grpc.aio.ServicerContext
                           ) -> pb.IssueExtractResponse:  # fmt: skip
        extract = await self._service.issue_extract(self._citizen(), list(request.visit_ids), request.request_id)
        return pb.IssueExtractResponse(vault_document_id=extract.vault_document_id)


def _deliverer(settings: Settings, own: HealthSettings, key: SigningKey) -> VaultDeliverer | None:
    """The vault.issue client: ``private_key_jwt`` with the signing key and DPoP (FAPI 2.0, stack/issuers.py), or
    the secret of one still on the plain profile (docs/fapi.md, Agencies)."""
    secret = own.client_secret.get_secret_value()
    if not (own.client_id and settings.vault_address and settings.issuer):
        return None
    credentials = (ClientCredentials(own.client_id, secret) if secret
                   else ClientCredentials(own.client_id, key=key.private, kid=key.kid))  # fmt: skip
    return VaultDeliverer(
        issuer=settings.issuer,
        credentials=credentials,
        vault_address=settings.vault_address,
        tls_ca=settings.tls_ca,
        tls_cert=settings.tls_cert,
        tls_key=settings.tls_key,
    )


async def build(settings: Settings) -> ServiceSpec:
    pool = await open_pool(settings.postgres_dsn, settings.db_pool_size)
    keys = key_provider(settings)
    registry = secure_channel(settings.registry_address, settings.tls_ca, settings.tls_cert, settings.tls_key,
                              server="registry")  # fmt: skip
    signing = SigningKey.from_seed(keys.key(purposes.HEALTH_SIGNING))
    deliverer = _deliverer(settings, HealthSettings(), signing)
    service = HealthService(
        PostgresHealthStore(pool),
        RegistryCitizens(registry),
        PostgresAgencyDirectory(pool),
        Subjects(keys.key(purposes.OIDC_SUBJECT)),
        Pseudonymizer(keys.key(purposes.AUDIT_PSEUDONYM)),
        signing,
        settings.issuer,
        deliverer,
    )
    servicer = HealthServicer(service)

    async def close() -> None:
        if deliverer is not None:
            await deliverer.close()
        await registry.close()

    return ServiceSpec(
        name="health",
        service_names=(NAME,),
        register=lambda server: pb_grpc.add_HealthRecordsServicer_to_server(servicer, server),
        policy=POLICY,
        on_stop=[close, pool.close],
        verifier=token_verifier(settings, "health", pool),
    )


__all__ = ["POLICY", "HealthServicer", "build", "citizen_of", "proto_field", "record_of"]
