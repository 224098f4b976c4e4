"""Fixtures of the consent service tests on the session stack: agencies with client certificates, citizens
with consent tokens, the consent service reached as each of them."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from audit.events import Pseudonymizer
from core.keys import purposes
from identity.oidc.registration import agency as agency_registration
from identity.oidc.registration import issue_certificate
from identity.oidc.store import ClientStore
from protos.consent.v1 import consent_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from services.tls import secure_channel
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.oidc_helpers import person, portal_flow, signed_in

CONSENT = "urn:dinhdanh:service:consent"
PURPOSES = ("PUBLIC_SERVICE_DOSSIER", "EMPLOYMENT_BACKGROUND_CHECK")


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@dataclass
class Agency:
    client_id: str
    name: str
    stub: pb_grpc.ConsentStub


@dataclass
class Person:
    citizen: Citizen
    token: str

    @property
    def id_number(self) -> str:
        return self.citizen.id_number

    @property
    def metadata(self) -> tuple[tuple[str, str]]:
        return bearer(self.token)


async def agency_certificate(
    stack: Stack, folder: Path, client_id: str, store: ClientStore | None = None
) -> tuple[Path, Path]:
    """A key made here and the platform CA's certificate for it: with ``store``, issued and recorded on the client
    as `dinhdanh clients issue-cert` does (``registration.issue_certificate``; only the recorded certificate
    counts), else only signed (``sign_agency_csr``): the cert and key paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, client_id)]))
        .sign(key, hashes.SHA256())
    )
    csr_pem = csr.public_bytes(serialization.Encoding.PEM)
    if store is not None:
        cert = (await issue_certificate(store, stack.ca.sign_agency_csr, client_id, csr_pem)).pem
    else:
        cert = stack.ca.sign_agency_csr(client_id, csr_pem)
    cert_path, key_path = folder / f"{client_id}.pem", folder / f"{client_id}.key"
    cert_path.write_bytes(cert)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture(scope="session")
async def owner_db(info: StackInfo) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def pseudonyms(stack: Stack) -> Pseudonymizer:
    return Pseudonymizer(stack.secrets.keys("consent").key(purposes.AUDIT_PSEUDONYM))


@pytest.fixture(scope="module")
async def agencies(
    stack: Stack, owner_db: asyncpg.Pool, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Callable[..., contextlib.AbstractAsyncContextManager[Agency]]]:
    """Make agencies: ``async with make(purposes=…, registered=True) as agency``."""
    folder = tmp_path_factory.mktemp("agencies")

    @contextlib.asynccontextmanager
    async def make(
        agency_purposes: tuple[str, ...] = PURPOSES, registered: bool = True, disabled: bool = False
    ) -> AsyncIterator[Agency]:
        name = f"Sở thử nghiệm {secrets.token_hex(3)}"
        client, _secret = agency_registration(name, list(agency_purposes))
        if registered:
            await ClientStore(owner_db).add(client)
            if disabled:
                await ClientStore(owner_db).set_disabled(client.client_id, True)
        cert, key = await agency_certificate(
            stack, folder, client.client_id, ClientStore(owner_db) if registered else None
        )
        address = f"127.0.0.1:{stack.ports.consent}"
        async with secure_channel(address, stack.ca.ca_cert_path, cert, key, server="consent") as channel:
            yield Agency(client.client_id, name, pb_grpc.ConsentStub(channel))

    return make


@pytest.fixture(scope="module")
async def agency(agencies: Callable[..., contextlib.AbstractAsyncContextManager[Agency]]) -> AsyncIterator[Agency]:
    async with agencies() as made:
        yield made


@pytest.fixture(scope="module")
async def portal(stack: Stack) -> AsyncIterator[pb_grpc.ConsentStub]:
    """The consent service as the demo portal reaches it (citizens' tokens go in the metadata)."""
    paths = stack.ca.issue("portal")
    address = f"127.0.0.1:{stack.ports.consent}"
    async with secure_channel(address, paths.ca, paths.cert, paths.key, server="consent") as channel:
        yield pb_grpc.ConsentStub(channel)


async def consent_token(http: httpx.AsyncClient, info: StackInfo, citizen: Citizen, scope: str) -> str:
    who = await person(info, citizen)
    flow = portal_flow(info, scope=scope, resource=CONSENT)
    _, params = await signed_in(http, flow, who)
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


@pytest.fixture(scope="module")
def people(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizens: Iterator[Citizen]
) -> Callable[..., Awaitable[Person]]:
    """``await people(scope)``: a fresh citizen signed in to the portal with a consent token."""

    async def make(scope: str = "openid consent.manage") -> Person:
        citizen = next(fresh_citizens)
        return Person(citizen, await consent_token(http, info, citizen, scope))

    return make
