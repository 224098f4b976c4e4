"""gRPC translation for the identity service."""

from __future__ import annotations

import grpc

from audit.events import PostgresAuditLog
from core.callers import Allow
from core.settings import Settings, key_provider
from db.bounded import BoundedPool
from db.pool import open_pool
from identity.passwords.hashing import PasswordHashing
from identity.security import AccountSecurity, PostgresSecurityStore
from identity.service import PORTAL, AccountView, Authenticated, IdentityService, NextStep
from identity.store import ACCOUNT_COLUMNS, PostgresAccountStore, PostgresAttemptStore, PostgresThrottleStore
from identity.verifications import InPerson, PostgresVerificationStore
from protos.identity.v1 import identity_pb2 as pb
from protos.identity.v1 import identity_pb2_grpc as pb_grpc
from services import identity_security, passkeys_server
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
        in_person=in_person_pb(view.in_person) if view.in_person else None,
    )


def in_person_pb(record: InPerson) -> pb.InPersonVerification:
    return pb.InPersonVerification(
        txn=str(record.txn), verified_at=record.verified_at.isoformat(), verifier=record.verifier or "",
        place=record.place, check_methods=list(record.check_methods), document_type=record.document_type,
        document_number=record.document_number, document_issuer=record.document_issuer,
        document_issued=record.document_issued.isoformat() if record.document_issued else "",
    )  # fmt: skip


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
        PORTAL.set(request.client_id)  # this call's task only: its sign-in events name the portal
        result = await self._service.verify_password(request.id_number, request.password, request.source)
        return pb.VerifyPasswordResponse(
            ticket=result.ticket, next_step=NEXT_STEP[result.next_step], expires_in=result.expires_in
        )

    async def VerifyTotp(self, request: pb.VerifyTotpRequest, context: grpc.aio.ServicerContext) -> pb.Authentication:
        PORTAL.set(request.client_id)
        return authentication_pb(await self._service.verify_totp(request.ticket, request.code, request.source))

    async def StartTotpEnrollment(
        self, request: pb.StartTotpEnrollmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.TotpEnrollment:
        result = await self._service.start_enrollment(request.ticket, request.source)
        return pb.TotpEnrollment(secret=result.secret, otpauth_uri=result.otpauth_uri, qr_png=result.qr_png)

    async def ConfirmTotpEnrollment(
        self, request: pb.ConfirmTotpEnrollmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.Authentication:
        PORTAL.set(request.client_id)
        return authentication_pb(await self._service.confirm_enrollment(request.ticket, request.code, request.source))

    async def GetAccount(self, request: pb.GetAccountRequest, context: grpc.aio.ServicerContext) -> pb.Account:
        return account_pb(await self._service.get_account(request.id_number))

    async def SetAssuranceLevel(
        self, request: pb.SetAssuranceLevelRequest, context: grpc.aio.ServicerContext
    ) -> pb.Account:
        view = await self._service.set_assurance_level(request.id_number, request.level, request.note,
                                                       request.document_type)  # fmt: skip
        return account_pb(view)

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
        verifications=PostgresVerificationStore(pool, ACCOUNT_COLUMNS),
        locks=(security_store := PostgresSecurityStore(pool)),
    )
    servicer = IdentityServicer(service)
    security = identity_security.SecurityServicer(AccountSecurity(service, security_store))  # issue 13 §5
    passkeys = passkeys_server.servicer(BoundedPool(pool), PostgresAuditLog(pool), key_provider(settings),
                                        settings.issuer, PostgresThrottleStore(pool))  # fmt: skip

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_IdentityServicer_to_server(servicer, server)
        passkeys_server.register(passkeys, server)
        identity_security.register(security, server)

    async def stop() -> None:
        hashing.close()
        await registry.close()
        await pool.close()

    return ServiceSpec(
        name="identity",
        service_names=(NAME, passkeys_server.NAME, identity_security.NAME),
        register=register,
        policy={**POLICY, **passkeys_server.POLICY, **identity_security.POLICY},
        on_stop=[stop],
        max_message=64 * 1024,
    )
