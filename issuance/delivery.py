"""Delivering an issued document into a citizen's vault, as the issuing service's own agency client.

A platform service that issues papers (the issuance service's criminal-record certificates, the health service's
signed extracts, the demo issuer) is registered as an agency client with the scope ``vault.issue`` and its public
signing key (``stack/issuers.py``). :class:`VaultDeliverer` then:

- gets a ``client_credentials`` access token from the edge's token endpoint (RFC 6749 §4.4, the endpoint read
  from the OP's discovery document, OpenID Connect Discovery 1.0 §3), the client authenticated by
  ``private_key_jwt`` with a DPoP proof (FAPI 2.0: the token is bound to the proof's key and each call carries a
  proof, agency/keyed.py), or ``tls_client_auth`` on the mTLS alias (a certificate-bound token; a plain agency
  still registered with a secret: ``client_secret_basic``, RFC 6749 §2.3.1), with ``resource`` the vault
  (RFC 8707 §2) and ``scope`` ``vault.issue``; the token is cached until shortly before it expires
  (``expires_in``, RFC 6749 §5.1), one request at a time however many deliveries wait for it;
- calls the vault's ``DeliverIssuedDocument`` over mutual TLS with the service's own platform certificate
  (``spiffe://dinhdanh.gov.vn/service/<name>``) or the agency's, the token as ``DPoP`` with a proof (``Bearer``
  when certificate-bound): the metadata, the content in chunks and
  the end message with size and SHA-256 (protos/vault/v1/vault.proto).

Delivery is idempotent per ``issuer_document_id``: the vault returns the document already delivered for the same
issuer and id (so an issue interrupted after delivery is settled by delivering again), ALREADY_EXISTS for the same
id and another citizen. A token the vault refuses (UNAUTHENTICATED: expired, revoked) is dropped and fetched again
once. Failures are :class:`DeliveryError` with the gRPC or OAuth code; the client secret and the token never
appear in a message or a log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx

from agency.keyed import KeyedAgency
from core import logs
from issuance.certificates import VaultDelivery
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc
from services.tls import secure_channel
from vault.documents import DocumentType

VAULT_RESOURCE = "urn:dinhdanh:service:vault"
ISSUE_SCOPE = "vault.issue"
CHUNK = 256 * 1024  # the vault takes chunks of at most 1 MiB
EARLY = 60.0  # seconds before its expiry a cached token is replaced
TIMEOUT = 30.0
DELIVER_METHOD = "/dinhdanh.vault.v1.Vault/DeliverIssuedDocument"

log = logs.get("delivery")


class DeliveryError(Exception):
    """A delivery that did not happen. ``code``: the gRPC status name (``ALREADY_EXISTS``, ``UNAVAILABLE`` …) or
    the OAuth error of the token endpoint (``invalid_client`` …); ``retryable``: whether trying later may work."""

    def __init__(self, message: str, code: str, retryable: bool) -> None:
        super().__init__(" ".join(message.split()))
        self.code = code
        self.retryable = retryable


RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)


@dataclass(frozen=True)
class ClientCredentials:
    """An agency client's credential (FAPI 2.0 profile, docs/fapi.md "Agencies"): ``key`` its registered private key
    (``private_key_jwt`` with DPoP-bound tokens, agency/keyed.py) and ``kid`` that key's registered kid; with
    neither key nor secret, ``tls_client_auth`` with the deliverer's certificate (an agency's, from issue-cert) on
    the edge's mTLS port (certificate-bound tokens, RFC 8705); ``client_secret`` only for an agency still on the
    plain profile (the migration path). Neither secret nor key is ever shown (``repr``)."""

    client_id: str
    client_secret: str = ""
    key: Any = None
    kid: str | None = None

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r}, client_secret=<hidden>, key=<hidden>)"


@dataclass(frozen=True)
class _Token:
    value: str
    renew_at: float  # time.monotonic()


async def _requests(meta: vpb.DeliverMetadata, content: bytes) -> AsyncIterator[vpb.DeliverIssuedDocumentRequest]:
    yield vpb.DeliverIssuedDocumentRequest(metadata=meta)
    for start in range(0, len(content), CHUNK):
        yield vpb.DeliverIssuedDocumentRequest(chunk=content[start : start + CHUNK])
    end = vpb.UploadEnd(size_bytes=len(content), sha256=hashlib.sha256(content).digest())
    yield vpb.DeliverIssuedDocumentRequest(end=end)


def wire_type(document_type: DocumentType | int) -> int:
    """The vault's ``DocumentType`` number of a ``vault.documents.DocumentType`` (a number passes as it is)."""
    if isinstance(document_type, DocumentType):
        return int(vpb.DocumentType.Value(f"DOCUMENT_TYPE_{document_type.name}"))
    return int(document_type)


def _day(value: dt.date | None) -> str:
    return value.isoformat() if value is not None else ""


class VaultDeliverer:
    """One issuing client's deliveries into citizens' vaults (see the module docstring).

    ``issuer`` is the edge's URL (``DINHDANH_ISSUER``); ``tls_ca``/``tls_cert``/``tls_key`` the service's own
    platform certificate. ``token_endpoint`` skips discovery (tests). Call :meth:`close` when done."""

    def __init__(
        self,
        *,
        issuer: str,
        credentials: ClientCredentials,
        vault_address: str,
        tls_ca: Path,
        tls_cert: Path,
        tls_key: Path,
        token_endpoint: str = "",
        scope: str = ISSUE_SCOPE,
        timeout: float = TIMEOUT,
    ) -> None:
        if not issuer and not token_endpoint:
            raise ValueError("the deliverer needs the OP's URL (DINHDANH_ISSUER)")
        if not credentials.client_id:
            raise ValueError("the deliverer needs its agency client id")
        if not vault_address:
            raise ValueError("the deliverer needs the vault's address (DINHDANH_VAULT_ADDRESS)")
        self._issuer = issuer.rstrip("/")
        self._credentials = credentials
        self._vault_address = vault_address
        self._tls = (Path(tls_ca), Path(tls_cert), Path(tls_key))
        self._token_endpoint = token_endpoint
        self._scope = scope
        self._timeout = timeout
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        self._http: httpx.AsyncClient | None = None
        self._channel: grpc.aio.Channel | None = None
        keyed = credentials.key is not None
        self._keyed = KeyedAgency(credentials.client_id, credentials.key, kid=credentials.kid) if keyed else None
        self._mtls = not keyed and not credentials.client_secret  # tls_client_auth (RFC 8705 §2.1)

    @property
    def client_id(self) -> str:
        return self._credentials.client_id

    async def close(self) -> None:
        http, self._http = self._http, None
        channel, self._channel = self._channel, None
        if http is not None:
            await http.aclose()
        if channel is not None:
            await channel.close()

    # -- the token ---------------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            if self._mtls:  # the agency's certificate in the handshake of the mTLS token endpoint
                ca, cert, key = self._tls
                context = ssl.create_default_context(cafile=str(ca))
                context.load_cert_chain(str(cert), str(key))
                self._http = httpx.AsyncClient(timeout=self._timeout, verify=context)
            else:
                self._http = httpx.AsyncClient(timeout=self._timeout)
        return self._http

    async def _endpoint(self) -> str:
        if not self._token_endpoint:
            url = f"{self._issuer}/.well-known/openid-configuration"
            try:
                reply = await self._client().get(url)
                reply.raise_for_status()
                metadata: dict[str, Any] = reply.json()
            except (httpx.HTTPError, ValueError) as error:
                raise DeliveryError(f"the OP's discovery document cannot be read ({type(error).__name__})",
                                    "unavailable", True) from None  # fmt: skip
            endpoint = metadata.get("token_endpoint")
            if self._mtls:  # RFC 8705 §5
                endpoint = (metadata.get("mtls_endpoint_aliases") or {}).get("token_endpoint")
            if not isinstance(endpoint, str) or not endpoint:
                raise DeliveryError("the OP publishes no token endpoint", "server_error", True)
            self._token_endpoint = endpoint
        return self._token_endpoint

    async def token(self) -> str:
        """A ``vault.issue`` access token for the vault, cached until :data:`EARLY` seconds before it expires."""
        current = self._token
        if current is not None and time.monotonic() < current.renew_at:
            return current.value
        async with self._token_lock:
            current = self._token
            if current is not None and time.monotonic() < current.renew_at:
                return current.value
            fresh = await self._fetch_token()
            self._token = fresh
            return fresh.value

    def forget_token(self) -> None:
        self._token = None

    async def _fetch_token(self) -> _Token:
        endpoint = await self._endpoint()
        form = {"grant_type": "client_credentials", "scope": self._scope, "resource": VAULT_RESOURCE}
        asked = time.monotonic()
        try:
            if self._keyed is not None:  # private_key_jwt + DPoP (FAPI 2.0 §5.3.2.1, RFC 9449 §5)
                reply = await self._keyed.token_response(self._client(), self._issuer, self._scope, VAULT_RESOURCE,
                                                         token_endpoint=endpoint)  # fmt: skip
            elif self._mtls:  # tls_client_auth: the client id in the form, the certificate in the handshake
                reply = await self._client().post(endpoint, data={**form, "client_id": self._credentials.client_id})
            else:  # a plain agency's secret (client_secret_basic), until it is moved (docs/fapi.md, Agencies)
                auth = (self._credentials.client_id, self._credentials.client_secret)
                reply = await self._client().post(endpoint, data=form, auth=auth)
        except httpx.HTTPError as error:
            raise DeliveryError(f"the token endpoint cannot be reached ({type(error).__name__})",
                                "unavailable", True) from None  # fmt: skip
        try:
            body = reply.json()
        except ValueError:
            body = None
        if reply.status_code != 200 or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            known = isinstance(body, dict) and isinstance(body.get("error"), str)
            error = str(body["error"]) if known and isinstance(body, dict) else f"http_{reply.status_code}"
            described = body.get("error_description") if isinstance(body, dict) else None
            text = f"the token endpoint refused the client: {error}"
            text += f": {described}" if isinstance(described, str) else ""
            raise DeliveryError(text, error, reply.status_code >= 500 or reply.status_code == 429)
        lifetime = body.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 300.0
        return _Token(str(body["access_token"]), asked + max(seconds - EARLY, seconds / 2))

    # -- the vault ---------------------------------------------------------------------------------

    def _stub(self) -> vgrpc.VaultStub:
        if self._channel is None:
            ca, cert, key = self._tls
            self._channel = secure_channel(self._vault_address, ca, cert, key, server="vault")
        return vgrpc.VaultStub(self._channel)

    async def deliver(
        self,
        *,
        citizen_id_number: str,
        issuer_document_id: str,
        document_type: DocumentType | int,
        title: str,
        filename: str,
        content: bytes,
        issuer_signature: bytes,
        issued_on: dt.date | None = None,
        expires_on: dt.date | None = None,
    ) -> vpb.Document:
        """``DeliverIssuedDocument``: the vault's document (the same one again for the same issuer document id)."""
        meta = vpb.DeliverMetadata(
            citizen_id_number=citizen_id_number,
            issuer_document_id=issuer_document_id,
            document_type=wire_type(document_type),  # type: ignore[arg-type]
            title=title,
            filename=filename,
            issuer_signature=issuer_signature,
            issued_on=_day(issued_on),
            expires_on=_day(expires_on),
        )
        for attempt in (1, 2):
            token = await self.token()
            try:
                return await self._stub().DeliverIssuedDocument(
                    _requests(meta, content),
                    metadata=self._metadata(token),
                    timeout=self._timeout,
                )
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.UNAUTHENTICATED and attempt == 1:
                    self.forget_token()  # expired or revoked under us: one fresh token
                    continue
                code = error.code()
                log.warning("delivery.refused", code=code.name, issuer_document_id=issuer_document_id)
                raise DeliveryError(f"the vault refused the delivery: {code.name}: {error.details() or ''}",
                                    code.name, code in RETRYABLE) from None  # fmt: skip
        raise AssertionError("unreachable")  # pragma: no cover

    def _metadata(self, token: str) -> tuple[tuple[str, str], ...]:
        """``Bearer`` for a certificate-bound (or a plain agency's) token; ``DPoP`` with a proof otherwise."""
        if self._keyed is not None:
            return self._keyed.grpc_metadata(token, "vault", DELIVER_METHOD)
        return (("authorization", f"Bearer {token}"),)

    async def deliver_issued(
        self, citizen_id_number: str, delivery: VaultDelivery, content: bytes, issuer_signature: bytes
    ) -> vpb.Document:
        """Deliver what ``issuance.certificates`` made (its :class:`VaultDelivery` metadata and signed bytes)."""
        return await self.deliver(
            citizen_id_number=citizen_id_number,
            issuer_document_id=delivery.issuer_document_id,
            document_type=delivery.document_type,
            title=delivery.title,
            filename=delivery.filename,
            content=content,
            issuer_signature=issuer_signature,
            issued_on=delivery.issued_on,
            expires_on=delivery.expires_on,
        )


__all__ = ["ClientCredentials", "DeliveryError", "VaultDeliverer"]
