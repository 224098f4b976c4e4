"""Helpers of the agency-fetch tests: agencies registered with their own client certificates (`dinhdanh clients
add-agency` + `issue-cert`), citizens signed in once for the vault and the consent service (one token, two
audiences), consents granted through the real consent service, bound consent tokens from the edge's mTLS token
endpoint, and DownloadShared/ListSharedDocuments calls (the agency client library's, ``agency/client.py``) with the
refusal's status and trailers kept."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from google.protobuf.timestamp_pb2 import Timestamp

from agency import client as agency_client
from agency.client import DENIAL_TRAILER, bearer
from agency.client import list_shared as list_shared  # the tests import it from here
from audit.events import Pseudonymizer
from bench.consent import ManyResources
from core.keys.purposes import AUDIT_PSEUDONYM
from protos.consent.v1 import consent_pb2 as cpb
from protos.consent.v1 import consent_pb2_grpc as cgrpc
from protos.vault.v1 import vault_pb2 as vpb
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.agency_helpers import key_and_csr
from tests.consent_agency_helpers import DemoAgency
from tests.oidc_helpers import person, signed_in
from tests.test_cli import dinhdanh

PURPOSE = "EMPLOYMENT_BACKGROUND_CHECK"
VAULT = "urn:dinhdanh:service:vault"
CONSENT = "urn:dinhdanh:service:consent"


def register_agency(
    stack: Stack, name: str, folder: Path, purposes: tuple[str, ...] = (PURPOSE,), roles: tuple[str, ...] = ()
) -> DemoAgency:
    """`dinhdanh clients add-agency` (with each of ``roles`` as ``--role``), a key and CSR of its own, then
    `dinhdanh clients issue-cert`."""
    args = [arg for purpose in purposes for arg in ("--purpose", purpose)]
    args += [arg for role in roles for arg in ("--role", role)]
    code, agency = dinhdanh(stack, "clients", "add-agency", "--name", name, *args, "--scope", "vault.read",
                            "--resource", VAULT, "--resource", CONSENT)  # fmt: skip
    assert code == 0, agency
    client_id = agency["client_id"]
    folder.mkdir(parents=True, exist_ok=True)
    csr_path, cert_path, key_path = (folder / f"{client_id}{suffix}" for suffix in (".csr", ".pem", ".key"))
    csr_path.write_bytes(key_and_csr(key_path, name))
    code, issued = dinhdanh(stack, "clients", "issue-cert", client_id, "--csr", str(csr_path), "--out", str(cert_path))
    assert code == 0, issued
    return DemoAgency(name, client_id, "", stack.ca.ca_cert_path, cert_path, key_path)  # FAPI 2.0: no secret


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
        return self.trailers.get(DENIAL_TRAILER, "")


async def download_shared(channel: grpc.aio.Channel, token: str, document_id: str) -> Fetched:
    """The client library's ``DownloadShared`` (the metadata once, first, then the chunks; else ``AgencyError``
    DATA_LOSS), a refusal kept as its status, details and trailers."""
    try:
        shared = await agency_client.download_shared(channel, token, document_id)
    except grpc.aio.AioRpcError as error:
        trailers = {key: str(value) for key, value in error.trailing_metadata() or ()}
        return Fetched(error.code(), error.details() or "", trailers)
    return Fetched(grpc.StatusCode.OK, metadata=shared.metadata, content=shared.content)


def denied(fetched: Fetched, reason: str) -> None:
    """PERMISSION_DENIED with the reason code first in the message and in the trailer."""
    assert fetched.code == grpc.StatusCode.PERMISSION_DENIED, (fetched.code, fetched.details)
    assert fetched.details.startswith(f"{reason}: "), fetched.details
    assert fetched.reason == reason, fetched.trailers


def audit_ref(stack: Stack, id_number: str) -> str:
    """The citizen's pseudonym in audit.events (the vault's Trail and the consent artefact's subject)."""
    return Pseudonymizer(stack.secrets.keys("vault").key(AUDIT_PSEUDONYM)).ref(id_number)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
