"""Small helpers the identity tests share: RPC calls and expected failures."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc
import pytest

from identity import totp
from protos.identity.v1 import identity_pb2 as pb
from protos.identity.v1 import identity_pb2_grpc as pb_grpc
from registry.citizen import Citizen

PASSWORD = "Ba con mèo trèo cây cau 2026"


async def refused(call: Awaitable[Any], code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return caught.value


def stub(channel: grpc.aio.Channel) -> pb_grpc.IdentityStub:
    return pb_grpc.IdentityStub(channel)


async def activate(channel: grpc.aio.Channel, citizen: Citizen, source: str, password: str = PASSWORD) -> pb.Account:
    return await stub(channel).ActivateAccount(
        pb.ActivateAccountRequest(id_number=citizen.id_number, phone=citizen.phone, password=password, source=source),
        timeout=10,
    )


async def password_step(
    channel: grpc.aio.Channel, id_number: str, source: str, password: str = PASSWORD
) -> pb.VerifyPasswordResponse:
    return await stub(channel).VerifyPassword(
        pb.VerifyPasswordRequest(id_number=id_number, password=password, source=source), timeout=10
    )


async def enrolled(channel: grpc.aio.Channel, citizen: Citizen, source: str) -> str:
    """Activate ``citizen`` and enroll TOTP; return the secret (the enrollment code is used up)."""
    await activate(channel, citizen, source)
    step = await password_step(channel, citizen.id_number, source)
    enrollment = await stub(channel).StartTotpEnrollment(
        pb.StartTotpEnrollmentRequest(ticket=step.ticket, source=source), timeout=10
    )
    await stub(channel).ConfirmTotpEnrollment(
        pb.ConfirmTotpEnrollmentRequest(ticket=step.ticket, code=totp.code_at(enrollment.secret), source=source),
        timeout=10,
    )
    return enrollment.secret


async def totp_step(channel: grpc.aio.Channel, ticket: str, code: str, source: str) -> pb.Authentication:
    return await stub(channel).VerifyTotp(pb.VerifyTotpRequest(ticket=ticket, code=code, source=source), timeout=10)
