"""The agency's side of consent, for tests: the demo agency of ``stack.json`` (``clients["agency_demo"]``) asks
a citizen for consent over mutual TLS with its certificate, gets a certificate-bound consent token at the edge's
mTLS token endpoint (RFC 8705 §5 alias; ``client_credentials`` with RFC 9396 ``authorization_details`` of type
``consent``), and fetches a shared document from the vault over the same certificate (``DownloadShared``)."""

from __future__ import annotations

import datetime as dt
import json
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
from google.protobuf.timestamp_pb2 import Timestamp

from protos.consent.v1 import consent_pb2 as cpb
from protos.consent.v1 import consent_pb2_grpc as cgrpc
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc
from services.tls import secure_channel
from stack.info import StackInfo

PURPOSE = "EMPLOYMENT_BACKGROUND_CHECK"
VAULT = "urn:dinhdanh:service:vault"


def _stamp(value: dt.datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


def terms(document_ids: Sequence[str], purpose: str = PURPOSE, days: int = 1, max_fetches: int = 10,
          per_day: int = 3, data_life_days: int = 30) -> cpb.ConsentTerms:  # fmt: skip
    """From now for ``days`` days, ``per_day`` fetches a day (Vietnam time), ``max_fetches`` in all."""
    now = dt.datetime.now(dt.UTC)
    return cpb.ConsentTerms(
        purpose=purpose,
        document_ids=list(document_ids),
        start=_stamp(now - dt.timedelta(seconds=5)),
        expiry=_stamp(now + dt.timedelta(days=days)),
        data_life_seconds=data_life_days * 86400,
        max_fetches=max_fetches,
        frequency=cpb.Frequency(count=per_day, unit=cpb.FREQUENCY_UNIT_DAY),
    )


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
        data = info.clients["agency_demo"]
        name = data.get("name")
        if not name:
            from stack import web

            name = web.DEMO_AGENCY
        ca = data.get("ca") or info.tls["ca"]
        return cls(name, data["client_id"], data.get("client_secret", ""), Path(ca), Path(data["cert"]),
                   Path(data["key"]))  # fmt: skip

    def channel(self, info: StackInfo, service: str) -> grpc.aio.Channel:
        return secure_channel(info.services[service], self.ca, self.cert, self.key, server=service)

    def vault(self, info: StackInfo) -> grpc.aio.Channel:
        return self.channel(info, "vault")

    async def request_consent(self, info: StackInfo, id_number: str, asked: cpb.ConsentTerms) -> cpb.ConsentRecord:
        async with self.channel(info, "consent") as channel:
            ask = cpb.RequestConsentRequest(citizen_id_number=id_number, terms=asked)
            return await cgrpc.ConsentStub(channel).RequestConsent(ask, timeout=20)

    def tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.cert), str(self.key))
        return context

    async def token_endpoint(self, info: StackInfo) -> str:
        """The mTLS alias of the token endpoint (RFC 8705 §5), from the OP's discovery document."""
        async with httpx.AsyncClient(timeout=20) as http:
            metadata = (await http.get(f"{info.oidc_issuer.rstrip('/')}/.well-known/openid-configuration")).json()
        aliases: dict[str, Any] = metadata.get("mtls_endpoint_aliases") or {}
        return str(aliases.get("token_endpoint") or metadata["token_endpoint"])

    async def token_response(self, info: StackInfo, consent_id: str, purpose: str = PURPOSE) -> httpx.Response:
        details = [{"type": "consent", "consent_id": consent_id, "purpose": purpose}]
        form = {"grant_type": "client_credentials", "authorization_details": json.dumps(details), "resource": VAULT}
        auth = (self.client_id, self.client_secret) if self.client_secret else None
        if auth is None:
            form["client_id"] = self.client_id  # tls_client_auth (RFC 8705 §2.1)
        async with httpx.AsyncClient(timeout=20, verify=self.tls()) as http:
            return await http.post(await self.token_endpoint(info), data=form, auth=auth)

    async def token(self, info: StackInfo, consent_id: str, purpose: str = PURPOSE) -> str:
        """A consent token bound to this agency's certificate (``cnf.x5t#S256``), audience the vault."""
        reply = await self.token_response(info, consent_id, purpose)
        assert reply.status_code == 200, reply.text
        return str(reply.json()["access_token"])

    async def download(self, vault: grpc.aio.Channel, token: str, document_id: str) -> bytes:
        """``DownloadShared`` over ``vault`` (this agency's certificate): the document's bytes, or the refusal."""
        call = vgrpc.VaultStub(vault).DownloadShared(
            vpb.DownloadSharedRequest(id=document_id), metadata=(("authorization", f"Bearer {token}"),), timeout=20
        )
        chunks: list[bytes] = []
        while (reply := await call.read()) is not grpc.aio.EOF:
            if reply.WhichOneof("item") == "chunk":
                chunks.append(reply.chunk)
        return b"".join(chunks)
