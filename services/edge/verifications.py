"""How the edge learns how a citizen's account was verified: the identity service's ``GetAccount``, asked when a
portal's request names ``verified_claims`` (identity/oidc/verified_claims.py).

Asked at the time of the userinfo or token request, not carried from the sign-in: an operator may verify the
citizen in person after they signed in (``dinhdanh accounts verify-in-person``), and a level lowered since must not
be claimed either. The sign-in's ``acr`` says how the citizen authenticated then; ``verified_claims`` say what the
identity service holds now.
"""

from __future__ import annotations

import grpc

from core import deadline
from identity.oidc.verified_claims import Facts, InPersonFacts
from protos.identity.v1 import identity_pb2 as pb
from protos.identity.v1 import identity_pb2_grpc as pb_grpc

TIMEOUT = 5.0


class IdentityVerifications:
    """``verified_claims.VerificationFacts`` over the edge's mutual-TLS channel to the identity service."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = pb_grpc.IdentityStub(channel)

    async def facts(self, id_number: str) -> Facts | None:
        try:
            account = await self._stub.GetAccount(pb.GetAccountRequest(id_number=id_number),
                                                  timeout=deadline.remaining(TIMEOUT))  # fmt: skip
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            raise
        in_person = None
        if account.HasField("in_person"):
            p = account.in_person
            in_person = InPersonFacts(p.txn, p.verified_at, p.place, tuple(p.check_methods), p.document_type,
                                      p.document_number, p.document_issuer, p.document_issued)  # fmt: skip
        return Facts(account.assurance_level, account.activated_at, in_person)
