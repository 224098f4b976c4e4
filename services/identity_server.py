"""gRPC translation for the identity service."""

from __future__ import annotations

import grpc

from audit.events import PostgresAuditLog
from core.callers import Allow
from core.settings import Settings, key_provider
from db.bounded import BoundedPool
from db.pool import open_pool
from identity.passwords.hashing import PasswordHashing
from identity.service import AccountView, Authenticated, IdentityService, NextStep
from identity.store import PostgresAccountStore, PostgresAttemptStore, PostgresThrottleStore
from protos.identity.v1 import identity_pb2 as pb
from protos.identity.v1 import identity_pb2_grpc as pb_grpc
from services.registry_client import RegistryDirectory
from services.server import ServiceSpec
from services.tls import secure_channel

NAME = pb.DESCRIPTOR.services_by_name["Identity"].full_name
SIGN_IN = Allow.of(services=("edge",), operators=True)
OPERATORS = Allow.of(operators=True)
POLICY = {
    f"/{NAME}/ActivateAccount": SIGN_IN,
    f"/{NAME}/VerifyPassword": SIGN_IN,
    f"/{NAME}/VerifyTotp": SIGN_IN,
    f"/{NAME}/StartTotpEnrollment": SIGN_IN,
    f"/{NAME}/ConfirmTotpEnrollment": SIGN_IN,
    f"/{NAME}/GetAccount": Allow.of(services=("edge",), operators=True),
    f"/{NAME}/SetAssuranceLevel": OPERATORS,
    f"/{NAME}/UnlockAccount": OPERATORS,
}
NEXT_STEP = {NextStep.TOTP: pb.NEXT_STEP_TOTP, NextStep.TOTP_ENROLLMENT: pb.NEXT_STEP_TOTP_ENROLLMENT}


def account_pb(view: AccountView) -> pb.Account:
    account = view.account
    return pb.Account(
        id_number=account.id_number,
        assurance_level=account.assurance_level,
        totp_enrolled=account.totp_enrolled,
        activated_at=account.activated_at.isoformat(),
        locked=view.locked,
    )


def authentication_pb(result: Authenticated) -> pb.Authentication:
    return pb.Authentication(
        id_number=result.id_number,
        assurance_level=result.assurance_level,
        amr=list(result.amr),
        auth_time=result.auth_time,
    )


class IdentityServicer(pb_grpc.IdentityServicer):
    def __init__(self, service: IdentityService) -> None:
        self._service = service

    async def ActivateAccount(
        self, request: pb.ActivateAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.Account:
        await self._service.activate(request.id_number, request.phone, request.password, request.source)
        return account_pb(await self._service.get_account(request.id_number))

    async def VerifyPassword(
        self, request: pb.VerifyPasswordRequest, context: grpc.aio.ServicerContext
    ) -> pb.VerifyPasswordResponse:
        result = await self._service.verify_password(request.id_number, request.password, request.source)
        return pb.VerifyPasswordResponse(
            ticket=result.ticket, next_step=NEXT_STEP[result.next_step], expires_in=result.expires_in
        )

    async def VerifyTotp(self, request: pb.VerifyTotpRequest, context: grpc.aio.ServicerContext) -> pb.Authentication:
        return authentication_pb(await self._service.verify_totp(request.ticket, request.code, request.source))

    async def StartTotpEnrollment(
        self, request: pb.StartTotpEnrollmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.TotpEnrollment:
        result = await self._service.start_enrollment(request.ticket, request.source)
        return pb.TotpEnrollment(secret=result.secret, otpauth_uri=result.otpauth_uri, qr_png=result.qr_png)

    async def ConfirmTotpEnrollment(
        self, request: pb.ConfirmTotpEnrollmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.Authentication:
        return authentication_pb(await self._service.confirm_enrollment(request.ticket, request.code, request.source))

    async def GetAccount(self, request: pb.GetAccountRequest, context: grpc.aio.ServicerContext) -> pb.Account:
        return account_pb(await self._service.get_account(request.id_number))

    async def SetAssuranceLevel(
        self, request: pb.SetAssuranceLevelRequest, context: grpc.aio.ServicerContext
    ) -> pb.Account:
        return account_pb(await self._service.set_assurance_level(request.id_number, request.level, request.note))

    async def UnlockAccount(self, request: pb.UnlockAccountRequest, context: grpc.aio.ServicerContext) -> pb.Account:
        return account_pb(await self._service.unlock(request.id_number))


async def build(settings: Settings) -> ServiceSpec:
    pool = await open_pool(settings.postgres_dsn, settings.db_pool_size)
    registry = secure_channel(settings.registry_address, settings.tls_ca, settings.tls_cert, settings.tls_key,
                              server="registry")  # fmt: skip
    hashing = PasswordHashing(workers=settings.argon2_workers, queue=settings.argon2_queue)
    await hashing.warm_up()
    service = IdentityService(
        accounts=PostgresAccountStore(BoundedPool(pool)),  # request-path reads and writes: the caller's deadline
        attempts=PostgresAttemptStore(BoundedPool(pool)),
        throttle=PostgresThrottleStore(pool),
        directory=RegistryDirectory(registry),
        hashing=hashing,
        audit=PostgresAuditLog(pool),
        keys=key_provider(settings),
    )
    servicer = IdentityServicer(service)

    async def stop() -> None:
        hashing.close()
        await registry.close()
        await pool.close()

    return ServiceSpec(
        name="identity",
        service_names=(NAME,),
        register=lambda server: pb_grpc.add_IdentityServicer_to_server(servicer, server),
        policy=POLICY,
        on_stop=[stop],
        max_message=64 * 1024,
    )
