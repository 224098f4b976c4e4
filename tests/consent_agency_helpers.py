"""The agency's side of consent, for tests: the demo agency of ``stack.json`` (``clients["agency_demo"]``) asks
a citizen for consent over mutual TLS with its certificate, gets a certificate-bound consent token at the edge's
mTLS token endpoint (RFC 8705 §5 alias; ``client_credentials`` with RFC 9396 ``authorization_details`` of type
``consent``, ``tls_client_auth``), and fetches a shared document from the vault over the same certificate
(``DownloadShared``). The calls are the agency client library's (``agency/client.py``); this keeps the tests'
shape: the stack's ``info`` on each call, gRPC refusals raised as ``grpc.aio.AioRpcError``, token responses raw."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx

from agency.client import DEMO, AgencyClient, consent_terms, download_shared, tls_context
from protos.consent.v1 import consent_pb2 as cpb
from stack.info import StackInfo

PURPOSE = "EMPLOYMENT_BACKGROUND_CHECK"
VAULT = "urn:dinhdanh:service:vault"


def terms(document_ids: Sequence[str], purpose: str = PURPOSE, days: int = 1, max_fetches: int = 10,
          per_day: int = 3, data_life_days: int = 30) -> cpb.ConsentTerms:  # fmt: skip
    """From now for ``days`` days, ``per_day`` fetches a day (Vietnam time), ``max_fetches`` in all."""
    return consent_terms(purpose, list(document_ids), days=days, max_fetches=max_fetches, per_day=per_day,
                         data_life_days=data_life_days)  # fmt: skip


@dataclass(frozen=True)
class DemoAgency:
    name: str
    client_id: str
    client_secret: str
    ca: Path
    cert: Path
    key: Path

    @classmethod
    def of(cls, info: StackInfo) -> DemoAgency:
        data = info.clients[DEMO]
        name = data.get("name")
        if not name:
            from stack import web

            name = web.DEMO_AGENCY
        ca = data.get("ca") or info.tls["ca"]
        return cls(name, data["client_id"], data.get("client_secret", ""), Path(ca), Path(data["cert"]),
                   Path(data["key"]))  # fmt: skip

    def client(self, info: StackInfo) -> AgencyClient:
        """This agency as the client library sees it, at the stack's addresses."""
        return AgencyClient(self.client_id, self.cert, self.key, self.ca, info.services["consent"],
                            info.services["vault"], info.oidc_issuer, self.name)  # fmt: skip

    def channel(self, info: StackInfo, service: str) -> grpc.aio.Channel:
        return self.client(info).channel(service)

    def vault(self, info: StackInfo) -> grpc.aio.Channel:
        return self.channel(info, "vault")

    async def request_consent(self, info: StackInfo, id_number: str, asked: cpb.ConsentTerms) -> cpb.ConsentRecord:
        async with self.client(info) as agency:
            return await agency.request_terms(id_number, asked)

    def tls(self) -> ssl.SSLContext:
        return tls_context(self.ca, self.cert, self.key)

    async def token_endpoint(self, info: StackInfo) -> str:
        """The mTLS alias of the token endpoint (RFC 8705 §5), from the OP's discovery document."""
        return await self.client(info).token_endpoint()

    async def token_response(self, info: StackInfo, consent_id: str, purpose: str = PURPOSE) -> httpx.Response:
        return await self.client(info).token_response(consent_id, purpose)

    async def token(self, info: StackInfo, consent_id: str, purpose: str = PURPOSE) -> str:
        """A consent token bound to this agency's certificate (``cnf.x5t#S256``), audience the vault."""
        reply = await self.token_response(info, consent_id, purpose)
        assert reply.status_code == 200, reply.text
        return str(reply.json()["access_token"])

    async def download(self, vault: grpc.aio.Channel, token: str, document_id: str) -> bytes:
        """``DownloadShared`` over ``vault`` (this agency's certificate): the document's bytes, or the refusal."""
        return (await download_shared(vault, token, document_id)).content
