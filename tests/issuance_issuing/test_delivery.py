"""The platform's issuer clients and their deliveries into the vault (real stack: edge token endpoint, vault over
mutual TLS with the issuing service's own certificate)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from core.keys import purposes as p
from issuance.certificates import VaultDelivery
from issuance.delivery import ClientCredentials, DeliveryError, VaultDeliverer
from issuance.issuer_keys import SigningKey
from issuance.pades import DOCUMENT_SIGNING
from registry.citizen import Citizen
from stack import issuers
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.vault_helpers import PDF, rows
from vault.documents import DocumentType


def deliverer(stack: Stack, info: StackInfo, process: str = "issuance", secret: str | None = None) -> VaultDeliverer:
    known = stack.secrets.json(issuers.CLIENTS_FILE)
    assert known is not None
    paths = stack.ca.issue(process)
    credentials = (ClientCredentials(known[process]["client_id"], secret) if secret
                   else issuers.credentials(stack.secrets, process))  # fmt: skip
    return VaultDeliverer(issuer=info.oidc_issuer, credentials=credentials, vault_address=info.services["vault"],
                          tls_ca=paths.ca, tls_cert=paths.cert, tls_key=paths.key)  # fmt: skip


@pytest.fixture
async def issuance(stack: Stack, info: StackInfo) -> AsyncIterator[VaultDeliverer]:
    client = deliverer(stack, info)
    yield client
    await client.close()


def signed(stack: Stack, client_id: str, reference: str, content: bytes, process: str = "issuance",
           purpose: str = p.ISSUANCE_SIGNING) -> tuple[VaultDelivery, bytes]:  # fmt: skip
    delivery = VaultDelivery(
        document_type=DocumentType.CRIMINAL_RECORD_CERTIFICATE,
        title="Phiếu lý lịch tư pháp số 1",
        filename=f"phieu-{reference}.pdf",
        issuer_document_id=reference,
        issued_on=dt.date(2026, 12, 1),
        expires_on=None,
        sha256=hashlib.sha256(content).digest(),
    )
    key = SigningKey.from_seed(stack.secrets.keys(process).key(purpose))
    return delivery, delivery.issuer_signature(key, client_id)


async def test_the_issuer_clients_are_registered_once_with_their_keys(stack: Stack, info: StackInfo) -> None:
    known = stack.secrets.json(issuers.CLIENTS_FILE)
    assert known is not None
    assert set(known) == {"issuance", "health"}
    assert stack.postgres is not None
    again = await issuers.register_issuers(stack.secrets, stack.postgres.dsn())
    assert again == known, "a second registration keeps the clients"
    for issuer in issuers.ISSUERS:
        found = await rows(info, "SELECT name, scopes, resources, jwks, kind FROM oidc.clients WHERE client_id = $1",
                           known[issuer.process]["client_id"])  # fmt: skip
        assert len(found) == 1
        row = found[0]
        assert (row["name"], list(row["scopes"]), list(row["resources"]), row["kind"]) == (
            issuer.name, ["vault.issue"], ["urn:dinhdanh:service:vault"], "agency")  # fmt: skip
        seed = stack.secrets.keys(issuer.process).key(issuer.key_purpose)
        assert row["jwks"] is not None
        assert json.loads(row["jwks"]) == SigningKey.from_seed(seed).jwks()
    names = await rows(info, "SELECT count(*) AS n FROM oidc.clients WHERE name = $1", issuers.ISSUERS[0].name)
    assert names[0]["n"] == 1
    assert all(set(mine) == {"client_id"} for mine in known.values())  # FAPI 2.0: a key, no secret
    for issuer in issuers.ISSUERS:
        profile = await rows(info, "SELECT profile, auth_method, secret_hash FROM oidc.clients WHERE client_id = $1",
                             known[issuer.process]["client_id"])  # fmt: skip
        assert tuple(profile[0]) == ("fapi2", "private_key_jwt", None)


async def test_the_document_signing_certificate(stack: Stack) -> None:
    cert_path, chain_path = issuers.document_certificate(stack.ca, stack.secrets)
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    ca = x509.load_pem_x509_certificate(chain_path.read_bytes())
    assert certificate.issuer == ca.subject
    certificate.verify_directly_issued_by(ca)
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [DOCUMENT_SIGNING]
    assert ExtendedKeyUsageOID.SERVER_AUTH not in usages
    seed = stack.secrets.keys("issuance").key(p.ISSUANCE_DOCUMENT)
    assert certificate.public_key() == issuers.document_key(seed).public_key()
    again, _ = issuers.document_certificate(stack.ca, stack.secrets)
    assert again.read_bytes() == cert_path.read_bytes(), "kept while its key is the same"


async def test_a_delivery_is_idempotent_and_its_token_cached(
    stack: Stack, info: StackInfo, issuance: VaultDeliverer, fresh_citizen: Citizen
) -> None:
    fetched = 0
    original = issuance._fetch_token

    async def counted() -> object:
        nonlocal fetched
        fetched += 1
        return await original()

    issuance._fetch_token = counted  # type: ignore[method-assign]
    reference = f"test-delivery-{fresh_citizen.id_number}"
    delivery, signature = signed(stack, issuance.client_id, reference, PDF)
    documents = await asyncio.gather(
        *(issuance.deliver_issued(fresh_citizen.id_number, delivery, PDF, signature) for _ in range(4))
    )
    assert len({d.id for d in documents}) == 1, "one document however many deliveries"
    assert fetched == 1, "one token for all of them"
    document = documents[0]
    assert (document.issuer_client_id, document.issuer_document_id) == (issuance.client_id, reference)
    assert document.issuer_name == "Trung tâm Lý lịch tư pháp quốc gia"
    later = await issuance.deliver_issued(fresh_citizen.id_number, delivery, PDF, signature)
    assert later.id == document.id
    assert fetched == 1
    stored = await rows(info, "SELECT id FROM vault.documents WHERE issuer_document_id = $1", reference)
    assert len(stored) == 1


async def test_refusals_are_delivery_errors(stack: Stack, info: StackInfo, issuance: VaultDeliverer,
                                            fresh_citizen: Citizen) -> None:  # fmt: skip
    wrong = deliverer(stack, info, secret="not-the-secret")
    try:
        delivery, signature = signed(stack, wrong.client_id, "test-wrong-secret", PDF)
        with pytest.raises(DeliveryError) as refused:
            await wrong.deliver_issued(fresh_citizen.id_number, delivery, PDF, signature)
        assert refused.value.code == "invalid_client"
        assert not refused.value.retryable
        assert "not-the-secret" not in str(refused.value)
    finally:
        await wrong.close()
    # the health client's key does not sign for the issuance client
    delivery, forged = signed(stack, issuance.client_id, "test-forged", PDF, "health", p.HEALTH_SIGNING)
    with pytest.raises(DeliveryError) as refused:
        await issuance.deliver_issued(fresh_citizen.id_number, delivery, PDF, forged)
    assert refused.value.code == "INVALID_ARGUMENT"
    assert not refused.value.retryable
    health = deliverer(stack, info, "health")
    try:
        reference = f"test-health-{fresh_citizen.id_number}"
        delivery, signature = signed(stack, health.client_id, reference, PDF, "health", p.HEALTH_SIGNING)
        document = await health.deliver_issued(fresh_citizen.id_number, delivery, PDF, signature)
        assert document.issuer_name == "Bộ Y tế — Sổ sức khỏe điện tử"
    finally:
        await health.close()
