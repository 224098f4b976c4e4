"""Citizen records for userinfo, from the population registry over mutual TLS (as service ``edge``)."""

from __future__ import annotations

import grpc

from core import deadline
from identity.oidc.claims import CitizenRecord
from protos.registry.v1 import registry_pb2 as pb
from protos.registry.v1 import registry_pb2_grpc as pb_grpc

SEX = {pb.SEX_MALE: "male", pb.SEX_FEMALE: "female"}


class RegistryRecords:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = pb_grpc.PopulationRegistryStub(channel)

    async def record(self, id_number: str) -> CitizenRecord | None:
        try:
            c = await self._stub.GetCitizen(pb.GetCitizenRequest(id_number=id_number), timeout=deadline.remaining(5.0))
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise
        a = c.permanent_address
        return CitizenRecord(
            c.id_number, c.full_name, c.date_of_birth, SEX.get(c.sex, "unknown"), c.nationality,
            a.street, a.commune, a.province, c.phone,
        )  # fmt: skip
