"""gRPC translation of AccountSecurity (protos/identity/v1/security.proto), served by the identity service.

Caller policy (core.callers): the edge, which calls for the citizen signed in on its security page (it is the
OpenID Provider: it opens the session's ``sub`` into the ID number), for every citizen method; operators for
``GetSecurity`` and ``OperatorUnlockPassword`` only (an operator never locks a citizen out, nor changes a factor).
"""

from __future__ import annotations

import grpc

from core.callers import Allow
from identity.security import AccountSecurity, SecurityState
from protos.identity.v1 import security_pb2 as pb
from protos.identity.v1 import security_pb2_grpc as pb_grpc

NAME = pb.DESCRIPTOR.services_by_name["AccountSecurity"].full_name
EDGE = Allow.of(services=("edge",))
POLICY = {
    f"/{NAME}/GetSecurity": Allow.of(services=("edge",), operators=True),
    f"/{NAME}/LockPassword": EDGE,
    f"/{NAME}/UnlockPassword": EDGE,
    f"/{NAME}/OperatorUnlockPassword": Allow.of(operators=True),
    f"/{NAME}/StepUp": EDGE,
    f"/{NAME}/StartTotpReplacement": EDGE,
    f"/{NAME}/ConfirmTotpReplacement": EDGE,
    f"/{NAME}/RecordSignOutEverywhere": EDGE,
}


def state_pb(state: SecurityState) -> pb.SecurityState:
    lock = state.lock
    return pb.SecurityState(
        id_number=state.id_number, assurance_level=state.assurance_level, totp_enrolled=state.totp_enrolled,
        password_locked=lock is not None, locked_at=lock.locked_at.isoformat() if lock else "",
        locked_by=lock.locked_by if lock else "", totp_replacing=state.totp_replacing,
    )  # fmt: skip


class SecurityServicer(pb_grpc.AccountSecurityServicer):
    def __init__(self, security: AccountSecurity) -> None:
        self._security = security

    async def GetSecurity(self, request: pb.GetSecurityRequest, context: grpc.aio.ServicerContext) -> pb.SecurityState:
        return state_pb(await self._security.state(request.id_number))

    async def LockPassword(self, request: pb.LockPasswordRequest, context: grpc.aio.ServicerContext
                           ) -> pb.SecurityState:  # fmt: skip
        return state_pb(await self._security.lock_password(request.id_number, request.source))

    async def UnlockPassword(self, request: pb.UnlockPasswordRequest, context: grpc.aio.ServicerContext
                             ) -> pb.SecurityState:  # fmt: skip
        return state_pb(await self._security.unlock_password(request.id_number, request.code, request.source))

    async def OperatorUnlockPassword(self, request: pb.OperatorUnlockPasswordRequest,
                                     context: grpc.aio.ServicerContext) -> pb.SecurityState:  # fmt: skip
        return state_pb(await self._security.operator_unlock_password(request.id_number, request.note))

    async def StepUp(self, request: pb.StepUpRequest, context: grpc.aio.ServicerContext) -> pb.StepUpResponse:
        at = await self._security.step_up(request.id_number, request.code, request.source, request.purpose)
        return pb.StepUpResponse(at=at)

    async def StartTotpReplacement(self, request: pb.StartTotpReplacementRequest,
                                   context: grpc.aio.ServicerContext) -> pb.TotpReplacement:  # fmt: skip
        found, ttl = await self._security.start_totp_replacement(request.id_number, request.code, request.source)
        return pb.TotpReplacement(secret=found.secret, otpauth_uri=found.otpauth_uri, qr_png=found.qr_png,
                                  expires_in=ttl)  # fmt: skip

    async def ConfirmTotpReplacement(self, request: pb.ConfirmTotpReplacementRequest,
                                     context: grpc.aio.ServicerContext) -> pb.SecurityState:  # fmt: skip
        return state_pb(await self._security.confirm_totp_replacement(request.id_number, request.code, request.source))

    async def RecordSignOutEverywhere(
        self, request: pb.RecordSignOutEverywhereRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordSignOutEverywhereResponse:
        await self._security.signed_out_everywhere(request.id_number, request.source, request.sessions,
                                                   request.refresh_tokens)  # fmt: skip
        return pb.RecordSignOutEverywhereResponse()


def register(servicer: SecurityServicer, server: grpc.aio.Server) -> None:
    pb_grpc.add_AccountSecurityServicer_to_server(servicer, server)
