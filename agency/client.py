"""An agency's client of the platform: ask a citizen for consent, follow its signed status, get a certificate-bound
consent token, list and download what the consent covers.

Everything goes over mutual TLS with the agency's own certificate (issued by the platform CA for the agency's key,
``dinhdanh clients issue-cert``; SPIFFE URI ``spiffe://dinhdanh.gov.vn/agency/<client_id>``):

- the consent service (gRPC): ``RequestConsent``, ``GetConsentStatus`` (the status JWS, ``typ consent-status+jwt``,
  verified here against ``GetSigningKeys``' JWKS), ``SetNotificationUrl``, ``ListPurposes``;
- the edge's mTLS token endpoint, found in the discovery document's ``mtls_endpoint_aliases.token_endpoint``
  (RFC 8705 §5): ``client_credentials`` with one RFC 9396 §2 ``authorization_details`` entry of type ``consent``,
  the client authenticated by its certificate (``tls_client_auth``, RFC 8705 §2.1); the token's audience is the
  vault and ``cnf.x5t#S256`` binds it to this certificate (RFC 8705 §3.1);
- the vault (gRPC): ``ListSharedDocuments`` and ``DownloadShared`` with that token, over the same certificate.

Failures are ``AgencyError``: one line a person can read — the OAuth error and its description (RFC 6749 §5.2,
RFC 9396 §5), or the gRPC status and details, with the consent's denial reason code (the ``consent-denial-reason``
trailer) in ``reason``. The module-level ``list_shared``/``download_shared`` are the raw calls over a channel the
caller holds (they raise ``grpc.aio.AioRpcError``); ``AgencyClient`` wraps them.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import re
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc
import httpx
from google.protobuf.timestamp_pb2 import Timestamp

from consent.signing import STATUS_TYPE, verify_jwt
from core.errors import InvalidArgument
from protos.consent.v1 import consent_pb2 as cpb
from protos.consent.v1 import consent_pb2_grpc as cgrpc
from protos.issuance.v1 import health_pb2_grpc as hgrpc
from protos.issuance.v1 import issuance_pb2_grpc as igrpc
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc
from services.tls import secure_channel
from stack.info import StackInfo

VAULT = "urn:dinhdanh:service:vault"
CONSENT_DETAIL = "consent"  # RFC 9396 §2.1 type
DENIAL_TRAILER = "consent-denial-reason"
DEMO = "agency_demo"  # stack.json clients[...]
TIMEOUT = 20.0
ID_NUMBER = re.compile(r"[0-9]{12}")
TYPE_PREFIX = "DOCUMENT_TYPE_"
DOCUMENT_TYPES: dict[str, int] = {
    name.removeprefix(TYPE_PREFIX): number
    for name, number in vpb.DocumentType.items()
    if number != vpb.DOCUMENT_TYPE_UNSPECIFIED
}
T = TypeVar("T")
STATUSES = {number: name.removeprefix("CONSENT_STATUS_") for name, number in cpb.ConsentStatus.items()}


class AgencyError(Exception):
    """A refusal or failure in one line. ``code``: the gRPC status name or the OAuth error; ``reason``: the
    consent's denial reason code when the vault refused a fetch (``USES_EXHAUSTED`` …)."""

    def __init__(self, message: str, code: str = "", reason: str = "") -> None:
        super().__init__(" ".join(message.split()))
        self.code = code
        self.reason = reason

    @property
    def message(self) -> str:
        return str(self)


def document_type(name: str | int) -> int:
    """A vault document type from its name (``DIPLOMA``, ``diploma``, ``DOCUMENT_TYPE_DIPLOMA``) or number."""
    if isinstance(name, int):
        if name in DOCUMENT_TYPES.values():
            return name
        raise AgencyError(f"unknown document type {name}", "INVALID_ARGUMENT")
    key = name.strip().upper().replace("-", "_").removeprefix(TYPE_PREFIX)
    if key not in DOCUMENT_TYPES:
        raise AgencyError(f"unknown document type {name!r}; one of {', '.join(DOCUMENT_TYPES)}", "INVALID_ARGUMENT")
    return DOCUMENT_TYPES[key]


def type_name(number: int) -> str:
    return vpb.DocumentType.Name(number).removeprefix(TYPE_PREFIX) if number in vpb.DocumentType.values() else "?"


def check_uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise AgencyError(f"{what} must be a UUID, not {value!r}", "INVALID_ARGUMENT") from None


def check_id_number(value: str) -> str:
    if not ID_NUMBER.fullmatch(value):
        raise AgencyError("the citizen's ID number is 12 digits", "INVALID_ARGUMENT")
    return value


def _stamp(value: dt.datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


def consent_terms(
    purpose: str,
    document_ids: Sequence[str] = (),
    document_types: Sequence[str | int] = (),
    *,
    days: int = 30,
    max_fetches: int = 10,
    per_day: int = 3,
    data_life_days: int = 30,
    start: dt.datetime | None = None,
) -> cpb.ConsentTerms:
    """What an agency asks for: from ``start`` (unset: the service's now) for ``days`` days, ``per_day`` fetches
    a calendar day (Vietnam time), ``max_fetches`` in all; it may keep what it fetched ``data_life_days`` days."""
    if not document_ids and not document_types:
        raise AgencyError("name the documents asked for: --type or --document (at least one)", "INVALID_ARGUMENT")
    for name, value in (("days", days), ("max fetches", max_fetches), ("per day", per_day)):
        if value < 1:
            raise AgencyError(f"{name} must be at least 1", "INVALID_ARGUMENT")
    if data_life_days < 0:
        raise AgencyError("the data life is 0 days or more", "INVALID_ARGUMENT")
    begins = start or dt.datetime.now(dt.UTC)
    asked = cpb.ConsentTerms(
        purpose=purpose,
        document_ids=[check_uuid(d, "a document id") for d in document_ids],
        document_types=[document_type(t) for t in document_types],  # type: ignore[misc]
        expiry=_stamp(begins + dt.timedelta(days=days)),
        data_life_seconds=data_life_days * 86400,
        max_fetches=max_fetches,
        frequency=cpb.Frequency(count=per_day, unit=cpb.FREQUENCY_UNIT_DAY),
    )
    if start is not None:  # unset: the service's now (RequestConsent, ConsentTerms.start)
        asked.start.CopyFrom(_stamp(start))
    return asked


def _jwt_part(token: str, index: int) -> dict[str, Any]:
    try:
        part = token.split(".")[index]
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError, UnicodeDecodeError):
        raise AgencyError("the token is not a JWT", "invalid_token") from None
    if not isinstance(value, dict):
        raise AgencyError("the token is not a JWT", "invalid_token")
    return value


def token_claims(token: str) -> dict[str, Any]:
    """The claims of an access token, decoded, not verified (the vault verifies it; this is for reading)."""
    return _jwt_part(token, 1)


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def rpc_error(error: grpc.aio.AioRpcError) -> AgencyError:
    """``PERMISSION_DENIED: USES_EXHAUSTED: the consent's fetches are used up`` (reason ``USES_EXHAUSTED``)."""
    trailers = {key: str(value) for key, value in error.trailing_metadata() or ()}
    code = error.code().name
    return AgencyError(f"{code}: {error.details() or 'no details'}", code, trailers.get(DENIAL_TRAILER, ""))


def oauth_error(reply: httpx.Response) -> AgencyError:
    """RFC 6749 §5.2: ``invalid_authorization_details: unknown consent_id`` (the error and its description)."""
    try:
        body = reply.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        described = f": {body['error_description']}" if body.get("error_description") else ""
        return AgencyError(f"{body['error']}{described}", body["error"])
    return AgencyError(f"the token endpoint answered HTTP {reply.status_code}", f"http_{reply.status_code}")


def tls_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    """An HTTPS client context trusting the platform CA only and presenting the agency's certificate."""
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    return context


@dataclass(frozen=True)
class Shared:
    """A downloaded shared document: its metadata (the vault's ``Document``) and its bytes."""

    metadata: vpb.Document
    content: bytes


@dataclass(frozen=True)
class SignedStatus:
    """``GetConsentStatus``' answer with its JWS verified: the claims, and the JWS the agency keeps as evidence."""

    consent_id: str
    status: str
    fetches: int
    jws: str
    claims: dict[str, Any]
    kid: str


@dataclass(frozen=True)
class Token:
    """A consent token and the token response's other members (``expires_in``, ``authorization_details``)."""

    access_token: str
    expires_in: int
    authorization_details: list[dict[str, Any]]

    @property
    def claims(self) -> dict[str, Any]:
        return token_claims(self.access_token)


async def list_shared(channel: grpc.aio.Channel, token: str, page_size: int = 0, page_token: str = "") -> Any:
    """One page of ``ListSharedDocuments`` (raises ``grpc.aio.AioRpcError``)."""
    request = vpb.ListSharedDocumentsRequest(page_size=page_size, page_token=page_token)
    return await vgrpc.VaultStub(channel).ListSharedDocuments(request, metadata=bearer(token), timeout=TIMEOUT)


async def download_shared(channel: grpc.aio.Channel, token: str, document_id: str) -> Shared:
    """``DownloadShared``: the metadata first, then the chunks (raises ``grpc.aio.AioRpcError`` on a refusal)."""
    call = vgrpc.VaultStub(channel).DownloadShared(
        vpb.DownloadSharedRequest(id=document_id), metadata=bearer(token), timeout=TIMEOUT
    )
    metadata: vpb.Document | None = None
    chunks: list[bytes] = []
    async for reply in call:
        if reply.WhichOneof("item") == "metadata":
            if metadata is not None or chunks:
                raise AgencyError("the vault sent the metadata again or after the content", "DATA_LOSS")
            metadata = reply.metadata
        else:
            chunks.append(reply.chunk)
    if metadata is None:
        raise AgencyError("the vault sent no metadata", "DATA_LOSS")
    return Shared(metadata, b"".join(chunks))


@dataclass
class AgencyClient:
    """One agency (``client_id`` with its certificate, key and the platform CA) and where the platform is.

    ``async with AgencyClient.from_stack(info) as agency: ...`` keeps one channel per service for its calls; each
    method may also be awaited outside a ``with`` (the channels are opened on first use, closed by ``close``)."""

    client_id: str
    cert: Path
    key: Path
    ca: Path
    consent_address: str
    vault_address: str
    issuer: str
    name: str = ""
    issuance_address: str = ""  # the Officers service (an officer's certificate, ``dinhdanh officer``)
    health_address: str = ""  # HealthRecords (a facility's certificate, ``dinhdanh facility``)
    _channels: dict[str, grpc.aio.Channel] = field(default_factory=dict, repr=False)
    _token_endpoint: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        for what, path in (("certificate", self.cert), ("key", self.key), ("CA certificate", self.ca)):
            if not Path(path).is_file():
                raise AgencyError(f"the agency's {what} {path} cannot be read", "INVALID_ARGUMENT")

    @classmethod
    def from_stack(
        cls,
        info: StackInfo,
        client_id: str | None = None,
        cert: Path | None = None,
        key: Path | None = None,
        ca: Path | None = None,
        demo_key: str = DEMO,
    ) -> AgencyClient:
        """The demo agency of ``stack.json`` (``clients["agency_demo"]``, or ``clients[demo_key]``: the demo officer,
        the demo hospital), or another one by its client id and certificate (``--client-id/--cert/--key``), at the
        stack's addresses."""
        demo: dict[str, Any] = info.clients.get(demo_key, {})
        other = client_id is not None and client_id != demo.get("client_id")
        if other and (cert is None or key is None):
            raise AgencyError("another agency needs its --cert and --key too", "INVALID_ARGUMENT")
        if not other and not demo and (cert is None or key is None or client_id is None):
            raise AgencyError("this stack has no demo agency: give --client-id, --cert and --key", "INVALID_ARGUMENT")
        chosen_cert = cert or Path(demo["cert"])
        chosen_key = key or Path(demo["key"])
        chosen_ca = ca or Path(demo.get("ca") or info.tls["ca"])
        name = "" if other else str(demo.get("name") or "")
        return cls(str(client_id or demo["client_id"]), chosen_cert, chosen_key, chosen_ca, info.services["consent"],
                   info.services["vault"], info.oidc_issuer, name, info.services.get("issuance", ""),
                   info.services.get("health", ""))  # fmt: skip

    async def __aenter__(self) -> AgencyClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close()

    def channel(self, service: str) -> grpc.aio.Channel:
        """A new mTLS channel to ``consent``, ``vault``, ``issuance`` or ``health`` with this agency's certificate
        (the caller closes it)."""
        addresses = {"consent": self.consent_address, "vault": self.vault_address,
                     "issuance": self.issuance_address, "health": self.health_address}  # fmt: skip
        address = addresses[service]
        if not address:
            raise AgencyError(f"this stack runs no {service} service (stack.json services)", "UNAVAILABLE")
        return secure_channel(address, Path(self.ca), Path(self.cert), Path(self.key), server=service)

    def _channel(self, service: str) -> grpc.aio.Channel:
        if service not in self._channels:
            self._channels[service] = self.channel(service)
        return self._channels[service]

    @property
    def consent(self) -> cgrpc.ConsentStub:
        return cgrpc.ConsentStub(self._channel("consent"))

    @property
    def officers(self) -> igrpc.OfficersStub:
        """The Officers service (an agency registered with the role ``officer``)."""
        return igrpc.OfficersStub(self._channel("issuance"))

    @property
    def health_records(self) -> hgrpc.HealthRecordsStub:
        """HealthRecords (an agency registered with the role ``facility``: PushVisit, GetPushedVisit)."""
        return hgrpc.HealthRecordsStub(self._channel("health"))

    async def call(self, rpc: Awaitable[T]) -> T:
        """Await one raw RPC of a stub above; a gRPC failure becomes one ``AgencyError`` line."""
        async with _rpc():
            return await rpc

    # the consent service

    async def request_terms(self, id_number: str, asked: cpb.ConsentTerms) -> cpb.ConsentRecord:
        """``RequestConsent`` for the citizen with these terms: the PENDING record (raises gRPC errors as they are)."""
        request = cpb.RequestConsentRequest(citizen_id_number=id_number, terms=asked)
        return await self.consent.RequestConsent(request, timeout=TIMEOUT)

    async def request_consent(
        self,
        id_number: str,
        purpose: str,
        document_types: Iterable[str | int] = (),
        document_ids: Iterable[str] = (),
        days: int = 30,
        max_fetches: int = 10,
        per_day: int = 3,
        data_life_days: int = 30,
    ) -> cpb.ConsentRecord:
        """Ask the citizen (12-digit ID number) for consent; PENDING until they approve or reject it."""
        id_number = check_id_number(id_number)
        asked = consent_terms(purpose, list(document_ids), list(document_types), days=days, max_fetches=max_fetches,
                              per_day=per_day, data_life_days=data_life_days)  # fmt: skip
        async with _rpc():
            return await self.request_terms(id_number, asked)

    async def signing_keys(self) -> dict[str, Any]:
        """The JWKS of the platform's consent keys (``GetSigningKeys``)."""
        async with _rpc():
            keys = await self.consent.GetSigningKeys(cpb.GetSigningKeysRequest(), timeout=TIMEOUT)
        value = json.loads(keys.jwks_json)
        if not isinstance(value, dict):
            raise AgencyError("the consent service's JWKS is not a JSON object", "DATA_LOSS")
        return value

    async def status(self, consent_id: str) -> SignedStatus:
        """``GetConsentStatus``, its JWS checked against ``GetSigningKeys`` (signature, ``typ``) and against the
        answer (the consent, this agency, the status and fetches it states)."""
        consent_id = check_uuid(consent_id, "the consent id")
        async with _rpc():
            signed = await self.consent.GetConsentStatus(cpb.GetConsentStatusRequest(id=consent_id), timeout=TIMEOUT)
        try:
            claims = verify_jwt(signed.jws, await self.signing_keys(), STATUS_TYPE)
        except InvalidArgument as error:
            raise AgencyError(f"the signed status does not verify: {error.message}", "DATA_LOSS") from None
        status = STATUSES.get(signed.status, "UNSPECIFIED")
        stated = (claims.get("sub"), claims.get("client_id"), claims.get("status"), claims.get("fetches"))
        if stated != (consent_id, self.client_id, status, signed.fetches):
            raise AgencyError("the signed status does not match the answer", "DATA_LOSS")
        kid = str(_jwt_part(signed.jws, 0).get("kid", ""))
        return SignedStatus(consent_id, status, signed.fetches, signed.jws, claims, kid)

    async def set_notification_url(self, url: str) -> str:
        """Register (``""``: remove) where status changes are posted (RFC 8935 push of RFC 8417 SETs)."""
        async with _rpc():
            done = await self.consent.SetNotificationUrl(cpb.SetNotificationUrlRequest(url=url), timeout=TIMEOUT)
        return str(done.url)

    async def purposes(self) -> list[cpb.Purpose]:
        """The purpose catalog (``ListPurposes``)."""
        async with _rpc():
            return list((await self.consent.ListPurposes(cpb.ListPurposesRequest(), timeout=TIMEOUT)).purposes)

    # the edge's token endpoint

    def tls(self) -> ssl.SSLContext:
        """The TLS context of the mTLS token endpoint: the platform CA, this agency's certificate."""
        return tls_context(self.ca, self.cert, self.key)

    async def token_endpoint(self) -> str:
        """The mTLS alias of the token endpoint (RFC 8705 §5) from the OP's discovery document (cached)."""
        if not self._token_endpoint:
            url = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
            async with _http(url), httpx.AsyncClient(timeout=TIMEOUT) as http:
                metadata = (await http.get(url)).raise_for_status().json()
            aliases: dict[str, Any] = metadata.get("mtls_endpoint_aliases") or {}
            if not aliases.get("token_endpoint"):
                raise AgencyError("the OP publishes no mTLS token endpoint (mtls_endpoint_aliases)", "server_error")
            self._token_endpoint = str(aliases["token_endpoint"])
        return self._token_endpoint

    async def token_response(self, consent_id: str, purpose: str | None = None) -> httpx.Response:
        """The raw token response for a consent token: ``client_credentials``, one ``consent`` authorization detail
        (RFC 9396 §2, §6), ``resource`` the vault (RFC 8707), ``tls_client_auth`` (RFC 8705 §2.1: the client id in
        the form, the certificate in the handshake)."""
        detail: dict[str, str] = {"type": CONSENT_DETAIL, "consent_id": consent_id}
        if purpose:
            detail["purpose"] = purpose
        form = {"grant_type": "client_credentials", "client_id": self.client_id, "resource": VAULT,
                "authorization_details": json.dumps([detail])}  # fmt: skip
        endpoint = await self.token_endpoint()
        async with _http(endpoint), httpx.AsyncClient(timeout=TIMEOUT, verify=self.tls()) as http:
            return await http.post(endpoint, data=form)

    async def token(self, consent_id: str, purpose: str | None = None) -> Token:
        """A consent token bound to this agency's certificate (``cnf.x5t#S256``), audience the vault; a consent
        that is not this agency's, not ACTIVE or outside its window is RFC 9396's ``invalid_authorization_details``."""
        reply = await self.token_response(check_uuid(consent_id, "the consent id"), purpose)
        if reply.status_code != 200:
            raise oauth_error(reply)
        body = reply.json()
        return Token(
            str(body["access_token"]), int(body.get("expires_in", 0)), list(body.get("authorization_details", []))
        )

    # the issuer's published keys (what a shared certificate presentation is verified with)

    async def issuer_metadata(self) -> dict[str, Any]:
        """The platform issuer's SD-JWT VC Issuer Metadata (draft-ietf-oauth-sd-jwt-vc §5:
        ``/.well-known/jwt-vc-issuer``, its ``issuer`` the platform's and its ``jwks`` inline). Only the platform
        this agency is registered with is asked: a credential naming another issuer is not trusted here."""
        url = f"{self.issuer.rstrip('/')}/.well-known/jwt-vc-issuer"
        async with _http(url), httpx.AsyncClient(timeout=TIMEOUT) as http:
            metadata = (await http.get(url)).raise_for_status().json()
        if not isinstance(metadata, dict) or metadata.get("issuer") != self.issuer.rstrip("/"):
            raise AgencyError(f"{url} does not name the platform as the issuer", "server_error")
        if not isinstance(metadata.get("jwks"), dict):
            raise AgencyError(f"{url} publishes no keys (jwks)", "server_error")
        return metadata

    async def status_list(self, uri: str) -> str | None:
        """The Status List Token at ``uri`` when the platform publishes it (``None`` for another host's URI)."""
        if not uri.startswith(self.issuer.rstrip("/") + "/"):
            return None
        async with _http(uri), httpx.AsyncClient(timeout=TIMEOUT) as http:
            reply = await http.get(uri, headers={"accept": "application/statuslist+jwt"})
        return reply.text.strip() if reply.status_code == 200 else None

    # the vault

    async def list_shared(self, token: str) -> list[vpb.Document]:
        """Every document the consent covers (all pages of ``ListSharedDocuments``)."""
        found: list[vpb.Document] = []
        page = ""
        async with _rpc():
            while True:
                reply = await list_shared(self._channel("vault"), token, 100, page)
                found.extend(reply.documents)
                page = reply.next_page_token
                if not page:
                    return found

    async def download_shared(self, token: str, document_id: str) -> Shared:
        """One fetch under the consent (counted against it): the document's metadata and bytes, their SHA-256
        checked against the metadata's."""
        document_id = check_uuid(document_id, "the document id")
        async with _rpc():
            shared = await download_shared(self._channel("vault"), token, document_id)
        if shared.metadata.sha256 and hashlib.sha256(shared.content).digest() != shared.metadata.sha256:
            raise AgencyError("the downloaded bytes do not match the document's SHA-256", "DATA_LOSS")
        return shared


SD_JWT = "application/dc+sd-jwt"  # a certificate shared selectively (portal/disclosure.py)
CONSENT_MAX_AGE = dt.timedelta(days=366)  # a consent's longest window (consent.proto)


def status_uri(sd_jwt: str) -> str | None:
    """The Token Status List URI an SD-JWT's issuer-signed payload names (``status.status_list.uri``), if any."""
    try:
        payload = _jwt_part(sd_jwt.split("~", 1)[0], 1)
    except (AgencyError, IndexError, ValueError):
        return None
    entry = payload.get("status", {}).get("status_list", {}) if isinstance(payload.get("status"), dict) else {}
    uri = entry.get("uri") if isinstance(entry, dict) else None
    return uri if isinstance(uri, str) else None


async def verify_shared(
    agency: AgencyClient, content: bytes, consent_id: str, issuer_jwks: dict[str, Any] | None = None
) -> Any:
    """The verdict (``issuance.verify.Verdict``) on a presentation fetched under ``consent_id``: the issuer's
    signature with the platform's published keys (or ``issuer_jwks``), the status list when the platform publishes
    it, and the key binding — ``aud`` this agency's client id, ``nonce`` the consent id (RFC 9901 §7.3). The KB-JWT
    was made when the citizen shared it: the consent, checked by the fetch itself, bounds its age."""
    from issuance.verify import verify_presented  # pyHanko and SD-JWT: only when a presentation is verified

    text = content.decode("ascii", errors="replace").strip()
    jwks = issuer_jwks if issuer_jwks is not None else (await agency.issuer_metadata())["jwks"]
    uri = status_uri(text)
    token = await agency.status_list(uri) if uri else None
    try:
        return verify_presented(text, issuer_jwks=jwks, status_lists=[token] if token else [],
                                at=dt.datetime.now(dt.UTC), audience=agency.client_id, nonce=consent_id,
                                max_age=CONSENT_MAX_AGE)  # fmt: skip
    except InvalidArgument as error:
        raise AgencyError(f"the shared presentation cannot be verified: {error.message}", "invalid") from None


@contextlib.asynccontextmanager
async def _rpc() -> AsyncIterator[None]:
    try:
        yield
    except grpc.aio.AioRpcError as error:
        raise rpc_error(error) from None


@contextlib.asynccontextmanager
async def _http(url: str) -> AsyncIterator[None]:
    try:
        yield
    except httpx.HTTPStatusError as error:
        raise AgencyError(f"{url} answered HTTP {error.response.status_code}", "server_error") from None
    except (httpx.TransportError, ssl.SSLError) as error:
        raise AgencyError(f"cannot reach {url} ({type(error).__name__}): is the platform up?", "unavailable") from None
