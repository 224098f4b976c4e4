"""Operator provisioning over the public RPCs: activate an account and enroll its TOTP in one go."""

from __future__ import annotations

import grpc

from identity import totp
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from protos.registry.v1 import registry_pb2 as rpb
from protos.registry.v1 import registry_pb2_grpc as rgrpc

SOURCE = "operator-provisioning"


async def activate_with_totp(
    registry: grpc.aio.Channel, identity: grpc.aio.Channel, id_number: str, password: str
) -> str:
    """Activate ``id_number`` with ``password`` (phone taken from the registry); return the TOTP secret."""
    citizen = await rgrpc.PopulationRegistryStub(registry).GetCitizen(
        rpb.GetCitizenRequest(id_number=id_number), timeout=10
    )
    stub = igrpc.IdentityStub(identity)
    await stub.ActivateAccount(
        ipb.ActivateAccountRequest(id_number=id_number, phone=citizen.phone, password=password, source=SOURCE),
        timeout=10,
    )
    step = await stub.VerifyPassword(
        ipb.VerifyPasswordRequest(id_number=id_number, password=password, source=SOURCE), timeout=10
    )
    enrollment = await stub.StartTotpEnrollment(
        ipb.StartTotpEnrollmentRequest(ticket=step.ticket, source=SOURCE), timeout=10
    )
    await stub.ConfirmTotpEnrollment(
        ipb.ConfirmTotpEnrollmentRequest(ticket=step.ticket, code=totp.code_at(enrollment.secret), source=SOURCE),
        timeout=10,
    )
    return enrollment.secret
