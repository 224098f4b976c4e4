"""Helpers of the agency-fetch tests: agencies registered with their own client certificates (`dinhdanh clients
add-agency` + `issue-cert`), citizens signed in once for the vault and the consent service (one token, two
audiences), consents granted through the real consent service, bound consent tokens from the edge's mTLS token
endpoint, and DownloadShared/ListSharedDocuments calls that keep the refusal's status and trailers."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import grpc
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf.timestamp_pb2 import Timestamp

from audit.events import Pseudonymizer
from bench.browserless import SignIn
from core.keys.purposes import AUDIT_PSEUDONYM
from protos.consent.v1 import consent_pb2 as cpb
from protos.consent.v1 import consent_pb2_grpc as cgrpc
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.consent_agency_helpers import DemoAgency
from tests.oidc_helpers import person, signed_in
from tests.test_cli import dinhdanh

PURPOSE = "EMPLOYMENT_BACKGROUND_CHECK"
VAULT = "urn:dinhdanh:service:vault"
CONSENT = "urn:dinhdanh:service:consent"
Metadata = tuple[tuple[str, str], ...]


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def register_agency(stack: Stack, name: str, folder: Path, purposes: tuple[str, ...] = (PURPOSE,)) -> DemoAgency:
    """`dinhdanh clients add-agency`, a key and CSR of its own, then `dinhdanh clients issue-cert`."""
    args = [arg for purpose in purposes for arg in ("--purpose", purpose)]
    code, agency = dinhdanh(stack, "clients", "add-agency", "--name", name, *args, "--scope", "vault.read",
                            "--resource", VAULT, "--resource", CONSENT)  # fmt: skip
    assert code == 0, agency
    client_id = agency["client_id"]
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                                                              name)]))  # fmt: skip
    csr_path, cert_path, key_path = (folder / f"{client_id}{suffix}" for suffix in (".csr", ".pem", ".key"))
    csr_path.write_bytes(csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    code, issued = dinhdanh(stack, "clients", "issue-cert", client_id, "--csr", str(csr_path), "--out", str(cert_path))
    assert code == 0, issued
    return DemoAgency(name, client_id, agency["client_secret"], stack.ca.ca_cert_path, cert_path, key_path)


@dataclass
class ManyResources(SignIn):
    """A sign-in naming several resources (RFC 8707 §2: one ``resource`` parameter each)."""

    resources: tuple[str, ...] = field(default_factory=tuple)

    def authorize_url(self, state: str, nonce: str, challenge: str) -> str:
        params: dict[str, Any] = {
            "response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
            "scope": self.scope, "state": state, "nonce": nonce, "code_challenge": challenge,
            "code_challenge_method": "S256", "resource": list(self.resources),
        }  # fmt: skip
        return f"{self.issuer}/authorize?{urlencode(params, doseq=True)}"


@dataclass(frozen=True)
class SignedIn:
    """A citizen with one access token for the vault and the consent service."""

    id_number: str
    token: str


async def sign_in_citizen(http: httpx.AsyncClient, info: StackInfo, citizen: Citizen) -> SignedIn:
    who = await person(info, citizen)
    client = info.clients["portal"]
    flow = ManyResources(info.oidc_issuer, client["client_id"], client["client_secret"], client["redirect_uris"][0],
                         "openid vault.read vault.write consent.manage", resources=(VAULT, CONSENT))  # fmt: skip
    _, params = await signed_in(http, flow, who)
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code == 200, reply.text
    return SignedIn(citizen.id_number, str(reply.json()["access_token"]))


def stamp(value: dt.datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


def terms(
    document_ids: tuple[str, ...] = (),
    document_types: tuple[int, ...] = (),
    *,
    start: dt.datetime | None = None,
    expiry: dt.datetime | None = None,
    max_fetches: int = 10,
    per_day: int = 10,
    purpose: str = PURPOSE,
) -> cpb.ConsentTerms:
    now = dt.datetime.now(dt.UTC)
    asked = cpb.ConsentTerms(
        purpose=purpose, document_ids=list(document_ids), document_types=list(document_types),  # type: ignore[arg-type]
        expiry=stamp(expiry or now + dt.timedelta(days=1)), data_life_seconds=86400, max_fetches=max_fetches,
        frequency=cpb.Frequency(count=per_day, unit=cpb.FREQUENCY_UNIT_DAY),
    )  # fmt: skip
    if start is not None:
        asked.start.CopyFrom(stamp(start))
    return asked


class Consents:
    """The citizen's side of the real consent service (over the platform peer ``edge``, with the citizen's token)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = cgrpc.ConsentStub(channel)

    async def grant(self, citizen: SignedIn, agency: DemoAgency, asked: cpb.ConsentTerms) -> str:
        request = cpb.GrantConsentRequest(client_id=agency.client_id, terms=asked)
        record = await self.stub.GrantConsent(request, metadata=bearer(citizen.token), timeout=20)
        assert record.status == cpb.CONSENT_STATUS_ACTIVE, record
        return record.id

    async def change(self, citizen: SignedIn, action: str, consent_id: str) -> cpb.ConsentRecord:
        rpc = getattr(self.stub, action)  # Pause, Resume, Revoke
        return await rpc(cpb.ConsentIdRequest(id=consent_id), metadata=bearer(citizen.token), timeout=20)


@dataclass
class Fetched:
    """A DownloadShared call's outcome: OK with metadata and content, or the refusal's code, details, trailers."""

    code: grpc.StatusCode
    details: str = ""
    trailers: dict[str, str] = field(default_factory=dict)
    metadata: vpb.Document | None = None
    content: bytes = b""

    @property
    def reason(self) -> str:
        return self.trailers.get("consent-denial-reason", "")


async def download_shared(channel: grpc.aio.Channel, token: str, document_id: str) -> Fetched:
    call = vgrpc.VaultStub(channel).DownloadShared(
        vpb.DownloadSharedRequest(id=document_id), metadata=bearer(token), timeout=30
    )
    metadata, parts = None, []
    try:
        async for reply in call:
            if reply.WhichOneof("item") == "metadata":
                assert metadata is None, "the metadata comes once, first"
                metadata = reply.metadata
            else:
                assert metadata is not None, "the metadata comes first"
                parts.append(reply.chunk)
    except grpc.aio.AioRpcError as error:
        trailers = {key: str(value) for key, value in error.trailing_metadata() or ()}
        return Fetched(error.code(), error.details() or "", trailers)
    return Fetched(grpc.StatusCode.OK, metadata=metadata, content=b"".join(parts))


def denied(fetched: Fetched, reason: str) -> None:
    """PERMISSION_DENIED with the reason code first in the message and in the trailer."""
    assert fetched.code == grpc.StatusCode.PERMISSION_DENIED, (fetched.code, fetched.details)
    assert fetched.details.startswith(f"{reason}: "), fetched.details
    assert fetched.reason == reason, fetched.trailers


async def list_shared(channel: grpc.aio.Channel, token: str, page_size: int = 0, page_token: str = "") -> Any:
    request = vpb.ListSharedDocumentsRequest(page_size=page_size, page_token=page_token)
    return await vgrpc.VaultStub(channel).ListSharedDocuments(request, metadata=bearer(token), timeout=20)


def audit_ref(stack: Stack, id_number: str) -> str:
    """The citizen's pseudonym in audit.events (the vault's Trail and the consent artefact's subject)."""
    return Pseudonymizer(stack.secrets.keys("vault").key(AUDIT_PSEUDONYM)).ref(id_number)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
