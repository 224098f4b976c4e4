"""gRPC translation for the identity service's passkeys (protos/identity/v1/passkeys.proto, identity/passkeys.py).

Served by the identity process beside the ``Identity`` service (services/identity_server.py registers it) under
the same mutual-TLS caller policy: the HTTP edge runs the browser ceremonies; operators may list and remove a
citizen's passkeys (a lost device reported at a counter), never register or sign in with one.
"""

from __future__ import annotations

import grpc

from audit.events import AuditLog, Pseudonymizer
from core.callers import Allow
from core.keys import purposes
from core.keys.provider import KeyProvider
from core.keys.sealing import b64
from identity.passkey_store import PostgresPasskeyStore
from identity.passkeys import Passkey, PasskeyService, Successes
from identity.tickets import Tickets
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import passkeys_pb2 as pb
from protos.identity.v1 import passkeys_pb2_grpc as pb_grpc

NAME = pb.DESCRIPTOR.services_by_name["Passkeys"].full_name
EDGE = Allow.of(services=("edge",))
EDGE_OR_OPERATORS = Allow.of(services=("edge",), operators=True)
POLICY = {
    f"/{NAME}/StartRegistration": EDGE,
    f"/{NAME}/FinishRegistration": EDGE,
    f"/{NAME}/StartAuthentication": EDGE,
    f"/{NAME}/FinishAuthentication": EDGE,
    f"/{NAME}/ListPasskeys": EDGE_OR_OPERATORS,
    f"/{NAME}/RemovePasskey": EDGE_OR_OPERATORS,
}


def passkey_pb(passkey: Passkey) -> pb.Passkey:
    return pb.Passkey(
        credential_id=b64(passkey.credential_id),
        name=passkey.name,
        transports=list(passkey.transports),
        backup_eligible=passkey.backup_eligible,
        backup_state=passkey.backup_state,
        user_verified=passkey.user_verified,
        sign_count=passkey.sign_count,
        created_at=passkey.created_at.isoformat(),
        last_used_at=passkey.last_used_at.isoformat() if passkey.last_used_at else "",
    )


class PasskeysServicer(pb_grpc.PasskeysServicer):
    def __init__(self, service: PasskeyService) -> None:
        self._service = service

    async def StartRegistration(
        self, request: pb.StartRegistrationRequest, context: grpc.aio.ServicerContext
    ) -> pb.CeremonyOptions:
        ceremony = await self._service.start_registration(request.id_number, request.source)
        return pb.CeremonyOptions(handle=ceremony.handle, options_json=ceremony.options_json,
                                  expires_in=ceremony.expires_in)  # fmt: skip

    async def FinishRegistration(
        self, request: pb.FinishRegistrationRequest, context: grpc.aio.ServicerContext
    ) -> pb.Passkey:
        passkey = await self._service.finish_registration(
            request.id_number, request.handle, request.credential_json, request.name, request.source
        )
        return passkey_pb(passkey)

    async def StartAuthentication(
        self, request: pb.StartAuthenticationRequest, context: grpc.aio.ServicerContext
    ) -> pb.CeremonyOptions:
        ceremony = await self._service.start_authentication(request.ticket, request.passwordless, request.source)
        return pb.CeremonyOptions(handle=ceremony.handle, options_json=ceremony.options_json,
                                  expires_in=ceremony.expires_in)  # fmt: skip

    async def FinishAuthentication(
        self, request: pb.FinishAuthenticationRequest, context: grpc.aio.ServicerContext
    ) -> ipb.Authentication:
        result = await self._service.finish_authentication(
            request.handle, request.credential_json, request.source, request.ticket, request.client_id
        )
        return ipb.Authentication(id_number=result.id_number, assurance_level=result.assurance_level,
                                  amr=list(result.amr), auth_time=result.auth_time)  # fmt: skip

    async def ListPasskeys(
        self, request: pb.ListPasskeysRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPasskeysResponse:
        passkeys = await self._service.list_passkeys(request.id_number)
        return pb.ListPasskeysResponse(passkeys=[passkey_pb(p) for p in passkeys])

    async def RemovePasskey(
        self, request: pb.RemovePasskeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.RemovePasskeyResponse:
        await self._service.remove_passkey(request.id_number, request.credential_id)
        return pb.RemovePasskeyResponse()


def servicer(pool: object, audit: AuditLog, keys: KeyProvider, issuer: str, successes: Successes) -> PasskeysServicer:
    """The servicer over ``pool`` (identity's); the RP ID and origin come from ``issuer`` (the edge's URL)."""
    service = PasskeyService(
        store=PostgresPasskeyStore(pool),
        tickets=Tickets(keys.key(purposes.LOGIN_TICKET)),
        audit=audit,
        refs=Pseudonymizer(keys.key(purposes.AUDIT_PSEUDONYM)),
        issuer=issuer,
        successes=successes,
    )
    return PasskeysServicer(service)


def register(passkeys: PasskeysServicer, server: grpc.aio.Server) -> None:
    pb_grpc.add_PasskeysServicer_to_server(passkeys, server)
