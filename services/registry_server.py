"""gRPC translation for the population registry."""

from __future__ import annotations

import grpc

from core.callers import Allow, current_principal
from core.keys import purposes
from core.settings import Settings, key_provider
from db.bounded import BoundedPool
from db.pool import open_pool
from identity.oidc.subjects import Subjects
from protos.registry.v1 import registry_pb2 as pb
from protos.registry.v1 import registry_pb2_grpc as pb_grpc
from registry.citizen import Address, Citizen, Sex
from registry.release import released
from registry.service import RegistryService
from registry.store import PopulationStore
from services.server import ServiceSpec, token_verifier

NAME = pb.DESCRIPTOR.services_by_name["PopulationRegistry"].full_name
READERS = Allow.of(services=("identity", "edge", "issuance", "vault", "consent", "health"), operators=True)
POLICY = {
    f"/{NAME}/GetCitizen": READERS,
    f"/{NAME}/GetMyRecord": Allow.of(citizens=True, scopes=("profile",)),
    f"/{NAME}/CountCitizens": Allow.of(operators=True),
}
SEX = {Sex.MALE: pb.SEX_MALE, Sex.FEMALE: pb.SEX_FEMALE}


def address_pb(address: Address) -> pb.Address:
    return pb.Address(street=address.street, commune=address.commune, province=address.province)


def citizen_pb(c: Citizen) -> pb.Citizen:
    return pb.Citizen(
        id_number=c.id_number,
        full_name=c.full_name,
        date_of_birth=c.date_of_birth.isoformat(),
        sex=SEX[c.sex],
        nationality=c.nationality,
        ethnicity=c.ethnicity,
        religion=c.religion,
        hometown=c.hometown,
        permanent_address=address_pb(c.permanent_address),
        current_address=address_pb(c.current_address),
        id_card_issue_date=c.id_card_issue_date.isoformat(),
        id_card_issue_place=c.id_card_issue_place,
        phone=c.phone,
    )


def released_pb(c: Citizen, scopes: frozenset[str]) -> pb.Citizen:
    """Only the fields the token's scopes release (registry.release); the others stay unset."""
    message = citizen_pb(c)
    keep = released(scopes)
    for field in message.DESCRIPTOR.fields:
        if field.name not in keep:
            message.ClearField(field.name)
    return message


class RegistryServicer(pb_grpc.PopulationRegistryServicer):
    def __init__(self, service: RegistryService) -> None:
        self._service = service

    async def GetCitizen(self, request: pb.GetCitizenRequest, context: grpc.aio.ServicerContext) -> pb.Citizen:
        return citizen_pb(await self._service.citizen(request.id_number))

    async def GetMyRecord(self, request: pb.GetMyRecordRequest, context: grpc.aio.ServicerContext) -> pb.Citizen:
        principal = current_principal()
        return released_pb(await self._service.own_record(principal.subject, principal.sector), principal.scopes)

    async def CountCitizens(
        self, request: pb.CountCitizensRequest, context: grpc.aio.ServicerContext
    ) -> pb.CountCitizensResponse:
        return pb.CountCitizensResponse(count=await self._service.count())


async def build(settings: Settings) -> ServiceSpec:
    pool = await open_pool(settings.postgres_dsn, settings.db_pool_size)
    subjects = Subjects(key_provider(settings).key(purposes.OIDC_SUBJECT))
    servicer = RegistryServicer(RegistryService(PopulationStore(BoundedPool(pool)), subjects.id_number))
    return ServiceSpec(
        name="registry",
        service_names=(NAME,),
        register=lambda server: pb_grpc.add_PopulationRegistryServicer_to_server(servicer, server),
        policy=POLICY,
        on_stop=[pool.close],
        verifier=token_verifier(settings, "registry", pool),
    )
