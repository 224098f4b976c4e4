"""Only an agency's registered certificate counts (RFC 8705 §2.1.2, §3.1): once `dinhdanh clients issue-cert`
reissued an agency's certificate, the previous one — still from the platform CA, still naming the agency's
SPIFFE URI, not yet expired — authenticates nowhere: the edge's mTLS token endpoint answers ``invalid_client``
for ``tls_client_auth`` and for a consent token, the consent service's agency RPCs ``UNAUTHENTICATED``. A consent
token bound to the old certificate before the reissue keeps working at the vault until it expires (at most
300 s), over that certificate only; the new certificate works everywhere at once."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from protos.consent.v1 import consent_pb2 as cpb
from protos.consent.v1 import consent_pb2_grpc as cgrpc
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.agency_fetch_helpers import (
    VAULT,
    Consents,
    DemoAgency,
    SignedIn,
    download_shared,
    register_agency,
    sign_in_citizen,
    terms,
)
from tests.agency_helpers import issue_agency, resigned, thumbprint_of
from tests.conftest import channel_as
from tests.test_cli import dinhdanh
from tests.vault_helpers import upload

PDF = b"%PDF-1.7\n" + b"reissue " * 500 + b"\n%%EOF\n"
NOT_REGISTERED = "this certificate is not the agency's registered one"


def reissue(stack: Stack, agency: DemoAgency, folder: Path) -> DemoAgency:
    """A new key and CSR, then `dinhdanh clients issue-cert` again: the agency with its new certificate."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, agency.name)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    csr_path, cert_path, key_path = (folder / f"{agency.client_id}{suffix}" for suffix in (".csr", ".pem", ".key"))
    csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    code, issued = dinhdanh(stack, "clients", "issue-cert", agency.client_id, "--csr", str(csr_path), "--out",
                            str(cert_path))  # fmt: skip
    assert code == 0, issued
    assert issued["x5t#S256"] == thumbprint_of(cert_path)
    return replace(agency, cert=cert_path, key=key_path)


def by_certificate(agency: DemoAgency) -> DemoAgency:
    """The agency authenticating with ``tls_client_auth`` (RFC 8705 §2.1): no secret, the certificate alone."""
    return replace(agency, client_secret="")


async def client_token(info: StackInfo, agency: DemoAgency) -> httpx.Response:
    """A plain ``client_credentials`` token at the mTLS alias, by ``tls_client_auth``."""
    form = {"grant_type": "client_credentials", "client_id": agency.client_id, "scope": "vault.read"}
    async with httpx.AsyncClient(timeout=20, verify=agency.tls()) as http:
        return await http.post(await agency.token_endpoint(info), data=form)


def invalid_client(reply: httpx.Response) -> None:
    """RFC 8705 §2.1 / RFC 6749 §5.2: ``invalid_client``, saying the certificate is not the registered one."""
    assert reply.status_code in (400, 401), reply.text
    body = reply.json()
    assert body["error"] == "invalid_client", body
    assert "not the registered one" in body["error_description"], body


async def request_consent(info: StackInfo, agency: DemoAgency, id_number: str) -> cpb.ConsentRecord:
    return await agency.request_consent(info, id_number, terms(document_types=(vpb.DOCUMENT_TYPE_DIPLOMA,)))


async def refused_unauthenticated(call: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, (caught.value.code(), caught.value.details())
    assert NOT_REGISTERED in (caught.value.details() or ""), caught.value.details()


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reissue")


@pytest.fixture(scope="module")
async def consents(stack: Stack) -> AsyncIterator[Consents]:
    async with channel_as(stack, "consent", "edge") as channel:
        yield Consents(channel)


@pytest.fixture(scope="module")
async def citizen(http: httpx.AsyncClient, info: StackInfo, fresh_citizens: Iterator[Citizen]) -> SignedIn:
    return await sign_in_citizen(http, info, next(fresh_citizens))


@pytest.fixture(scope="module")
async def document(vault: vgrpc.VaultStub, citizen: SignedIn) -> str:
    made = await upload(vault, citizen.token, [PDF], vpb.DOCUMENT_TYPE_DIPLOMA, "Bằng tốt nghiệp", "bang.pdf")
    return str(made.id)


async def test_a_reissued_certificate_replaces_the_old_one_everywhere_at_once(
    stack: Stack, info: StackInfo, folder: Path, consents: Consents, citizen: SignedIn, document: str
) -> None:
    old = register_agency(stack, "Sở cấp lại chứng thư (thử)", folder / "old")
    consent_id = await consents.grant(citizen, old, terms((document,)))
    # before: the old certificate is the registered one, and works everywhere
    assert (await client_token(info, old)).status_code == 200
    held = await old.token(info, consent_id)  # a consent token bound to the old certificate
    assert claims_of(held)["cnf"] == {"x5t#S256": thumbprint_of(old.cert)}
    await request_consent(info, old, citizen.id_number)

    new = reissue(stack, old, folder / "new")
    assert thumbprint_of(new.cert) != thumbprint_of(old.cert)

    # the old certificate, right after the reissue: refused at the edge and at the consent service
    invalid_client(await client_token(info, old))  # tls_client_auth
    invalid_client(await by_certificate(old).token_response(info, consent_id))  # a consent token, tls_client_auth
    invalid_client(await old.token_response(info, consent_id))  # a consent token, client_secret_basic
    await refused_unauthenticated(request_consent(info, old, citizen.id_number))
    async with old.channel(info, "consent") as channel:
        stub = cgrpc.ConsentStub(channel)
        await refused_unauthenticated(stub.GetConsentStatus(cpb.GetConsentStatusRequest(id=consent_id), timeout=20))
        await refused_unauthenticated(stub.RevokeAsAgency(cpb.ConsentIdRequest(id=consent_id), timeout=20))

    # the token obtained before the reissue: bound to the old certificate, it lives its short life (≤ 300 s) …
    claims = claims_of(held)
    assert claims["exp"] - int(time.time()) <= 300
    async with old.vault(info) as vault:
        fetched = await download_shared(vault, held, document)
        assert fetched.code == grpc.StatusCode.OK, fetched.details
        assert fetched.content == PDF
        # … and no longer: the same token expired (re-signed with a past exp) is refused
        expired = await resigned(stack, info, held, exp=int(time.time()) - 120, iat=int(time.time()) - 420)
        gone = await download_shared(vault, expired, document)
        assert gone.code == grpc.StatusCode.UNAUTHENTICATED, gone.details
    async with new.vault(info) as vault:  # bound to the old certificate: nothing over the new one
        assert (await download_shared(vault, held, document)).code == grpc.StatusCode.UNAUTHENTICATED

    # the new certificate works at once, everywhere
    reply = await client_token(info, new)
    assert reply.status_code == 200, reply.text
    assert claims_of(reply.json()["access_token"])["cnf"] == {"x5t#S256": thumbprint_of(new.cert)}
    fresh = await by_certificate(new).token(info, consent_id)
    assert claims_of(fresh)["cnf"] == {"x5t#S256": thumbprint_of(new.cert)}
    assert (await new.token_response(info, consent_id)).status_code == 200  # client_secret_basic too
    asked = await request_consent(info, new, citizen.id_number)
    assert asked.status == cpb.CONSENT_STATUS_PENDING
    async with new.vault(info) as vault:
        fetched = await download_shared(vault, fresh, document)
        assert fetched.code == grpc.StatusCode.OK, fetched.details


async def test_an_agency_without_a_recorded_certificate_cannot_use_one(
    stack: Stack, info: StackInfo, folder: Path, citizen: SignedIn
) -> None:
    """A certificate from the platform CA for an agency that `issue-cert` never recorded (the CA signed it, the
    client's registration does not name it): no ``tls_client_auth``, no agency RPC."""
    code, made = dinhdanh(stack, "clients", "add-agency", "--name", "Sở chưa có chứng thư (thử)", "--purpose",
                          "EMPLOYMENT_BACKGROUND_CHECK", "--scope", "vault.read", "--resource", VAULT)  # fmt: skip
    assert code == 0, made
    cert = issue_agency(stack.ca, folder / "unrecorded", made["client_id"])
    agency = DemoAgency("Sở chưa có chứng thư (thử)", made["client_id"], "", cert.ca, cert.cert, cert.key)
    reply = await client_token(info, agency)
    assert reply.status_code in (400, 401), reply.text
    assert reply.json()["error"] == "invalid_client"
    await refused_unauthenticated(request_consent(info, agency, citizen.id_number))
