"""The registry as other services see it: a ``CitizenDirectory`` over gRPC with mutual TLS."""

from __future__ import annotations

from datetime import date

import grpc

from core import deadline
from core.errors import DataLoss, Unavailable
from identity.directory import CitizenFacts
from protos.registry.v1 import registry_pb2 as pb
from protos.registry.v1 import registry_pb2_grpc as pb_grpc
from registry.citizen import Address, Citizen, Sex

TIMEOUT = 5.0  # at most; never longer than the caller of the current call still waits (core.deadline)


class RegistryDirectory:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = pb_grpc.PopulationRegistryStub(channel)

    async def lookup(self, id_number: str) -> CitizenFacts | None:
        try:
            citizen = await self._stub.GetCitizen(
                pb.GetCitizenRequest(id_number=id_number), timeout=deadline.remaining(TIMEOUT)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return CitizenFacts(citizen.id_number, citizen.full_name, citizen.phone, citizen.id_card_issue_date,
                            citizen.id_card_issue_place)  # fmt: skip


SEX_FROM_PB = {pb.SEX_MALE: Sex.MALE, pb.SEX_FEMALE: Sex.FEMALE}


def citizen_from_pb(message: pb.Citizen) -> Citizen:
    """The registry's record as the domain holds it (``registry.citizen.Citizen``; the inverse of
    ``services.registry_server.citizen_pb``); a malformed message is ``DataLoss``."""
    try:
        return Citizen(
            id_number=message.id_number,
            full_name=message.full_name,
            date_of_birth=date.fromisoformat(message.date_of_birth),
            sex=SEX_FROM_PB[message.sex],
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
    except (KeyError, ValueError):
        raise DataLoss("the registry answered a citizen record this service cannot read") from None


def _address(message: pb.Address) -> Address:
    return Address(message.street, message.commune, message.province)


class RegistryCitizens:
    """Whole registry records over gRPC (``GetCitizen``, open to the issuance and health services)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = pb_grpc.PopulationRegistryStub(channel)

    async def citizen(self, id_number: str) -> Citizen | None:
        try:
            message = await self._stub.GetCitizen(
                pb.GetCitizenRequest(id_number=id_number), timeout=deadline.remaining(TIMEOUT)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                raise Unavailable("the population registry cannot be reached; try again") from None
            raise
        return citizen_from_pb(message)
