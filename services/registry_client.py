"""The registry as other services see it: a ``CitizenDirectory`` over gRPC with mutual TLS."""

from __future__ import annotations

import grpc

from core import deadline
from identity.directory import CitizenFacts
from protos.registry.v1 import registry_pb2 as pb
from protos.registry.v1 import registry_pb2_grpc as pb_grpc

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
        return CitizenFacts(citizen.id_number, citizen.full_name, citizen.phone)
