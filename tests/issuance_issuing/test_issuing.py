"""The issuing worker on the real stack: an approved dossier becomes an SD-JWT VC, a signed QR and a PAdES-signed PDF
in the citizen's vault (or kept for the agency that asked), everything verifiable offline; failures back off."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest
from cryptography import x509
from joserfc import jwt
from joserfc.jwk import ECKey

from core.keys import purposes
from issuance.credentials import VerificationFailed, verify_credential
from issuance.forms import RequesterKind
from issuance.issuer_keys import SigningKey
from issuance.pades import validate_async as validate
from issuance.qr import verify_qr
from issuance.verify import Outcome
from issuance.verify import verify_presented_async as verify_presented
from protos.issuance.v1 import issuance_pb2 as ipb
from protos.issuance.v1 import issuance_pb2_grpc as igrpc
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc
from registry.citizen import Citizen
from registry.generator import generate
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import SEEDED, channel_as
from tests.issuance_issuing.conftest import cli_verify, dossier_row, issued_row, issuer_jwks, signed_citizen
from tests.issuance_service.conftest import apply_request
from tests.vault_helpers import download, rows
from tests.waiting import until
from vault import signatures

CENTRE = "Trung tâm Lý lịch tư pháp quốc gia"


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def certificates(stack: Stack) -> AsyncIterator[igrpc.CertificatesStub]:
    async with channel_as(stack, "issuance", "portal") as channel:
        yield igrpc.CertificatesStub(channel)


@pytest.fixture(scope="module")
def platform_ca(stack: Stack) -> x509.Certificate:
    return x509.load_pem_x509_certificate(stack.ca.ca_cert_path.read_bytes())


def flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


async def test_the_issuer_keys_are_published(owner_pool: asyncpg.Pool, stack: Stack) -> None:
    found = await owner_pool.fetch("SELECT kid, use, public_jwk, chain_pem FROM issuance.issuer_keys ORDER BY use")
    uses = {row["use"]: row for row in found}
    assert set(uses) == {"credential", "document"}
    issuer = SigningKey.from_seed(stack.secrets.keys("issuance").key(purposes.ISSUANCE_SIGNING))
    assert uses["credential"]["kid"] == issuer.kid
    assert json.loads(uses["credential"]["public_jwk"])["x"] == issuer.public_jwk["x"]
    assert "d" not in json.loads(uses["document"]["public_jwk"])
    chain = x509.load_pem_x509_certificates(uses["document"]["chain_pem"].encode())
    assert chain[-1].subject == chain[-1].issuer, "the chain ends at the platform CA"
    assert (
        chain[0].public_key()
        == SigningKey.from_seed(
            stack.secrets.keys("issuance").key(purposes.ISSUANCE_DOCUMENT)
        ).private.private_key.public_key()
    )


async def test_an_approved_dossier_becomes_a_certificate_in_the_vault_that_verifies_offline(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, certificates: igrpc.CertificatesStub,
    vault: vgrpc.VaultStub, clean_citizens: Iterator[Citizen], owner_pool: asyncpg.Pool,
    issuance_client: dict[str, str], platform_ca: x509.Certificate, tmp_path: Path,
) -> None:  # fmt: skip
    alice = await signed_citizen(http, info, next(clean_citizens))
    holder = SigningKey.generate()
    request = apply_request(1, holder_jwk=json.dumps(holder.public_jwk))
    applied = await certificates.Apply(request, metadata=alice.issuance, timeout=30)
    assert applied.status == ipb.DOSSIER_STATUS_APPROVED, "a clean record is approved at once"

    async def issued() -> ipb.Dossier | None:
        got = await certificates.GetMyDossier(ipb.DossierRequest(id=applied.id), metadata=alice.issuance, timeout=10)
        return got if got.status == ipb.DOSSIER_STATUS_ISSUED else None

    dossier = await until(issued, "the dossier ISSUED", timeout=120, every=0.3)
    assert dossier.history[-1].actor == "SYSTEM"
    assert dossier.credential_status == ipb.CREDENTIAL_STATUS_VALID
    row = await issued_row(owner_pool, uuid.UUID(applied.id))
    assert row is not None
    assert str(uuid.UUID(row["certificate_id"])) == row["certificate_id"] == dossier.certificate_id
    assert row["vault_document_id"] == dossier.vault_document_id != ""
    assert row["issued_at"] is not None
    assert row["agency_pdf"] is None
    assert row["issue_attempts"] == 0
    events = await owner_pool.fetch("SELECT status, actor FROM issuance.dossier_events WHERE dossier_id = $1"
                                    " ORDER BY seq", row["id"])  # fmt: skip
    assert [(e["status"], e["actor"]) for e in events][-1] == ("ISSUED", "SYSTEM")
    assert [e["status"] for e in events].count("ISSUED") == 1
    audit = await owner_pool.fetch("SELECT actor, detail FROM audit.events WHERE action = 'issuance.issue'"
                                   " AND detail->>'dossier_id' = $1", applied.id)  # fmt: skip
    assert len(audit) == 1
    assert audit[0]["actor"] == "system"
    assert json.loads(audit[0]["detail"])["certificate_id"] == row["certificate_id"]

    # the PDF in the vault: issued, read-only, its issuer signature the vault verified
    meta, pdf = await download(vault, alice.vault_token, row["vault_document_id"])
    assert meta.source == vpb.DOCUMENT_SOURCE_ISSUED
    assert meta.document_type == vpb.DOCUMENT_TYPE_CRIMINAL_RECORD_CERTIFICATE
    assert (meta.issuer_client_id, meta.issuer_document_id) == (issuance_client["client_id"], row["certificate_id"])
    assert meta.issuer_name == CENTRE
    assert meta.title == "Phiếu lý lịch tư pháp số 1"
    jwks = await issuer_jwks(owner_pool)
    key = ECKey.import_key(jwks["keys"][0])
    claims = jwt.decode(meta.issuer_signature, key, algorithms=["ES256"]).claims
    assert claims["jti"] == row["certificate_id"]
    assert claims["content_sha256"] == signatures.content_digest(hashlib.sha256(pdf).digest())
    deleting = vault.DeleteDocument(vpb.DeleteDocumentRequest(id=meta.id), metadata=alice.vault, timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await deleting
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # PAdES against the platform CA; the PDF alone verifies (its QR text in /Subject)
    assert (await validate(pdf, [platform_ca])).valid
    now = datetime.now(UTC)
    verdict = await verify_presented(pdf, issuer_jwks=jwks, trust_roots=[platform_ca], at=now)
    assert verdict.valid, verdict.reason
    assert verdict.fields["certificate_id"] == row["certificate_id"]
    keys_file, ca_file, pdf_file = tmp_path / "keys.json", tmp_path / "ca.pem", tmp_path / "phieu.pdf"
    keys_file.write_text(json.dumps(jwks))
    ca_file.write_bytes(stack.ca.ca_cert_path.read_bytes())
    pdf_file.write_bytes(pdf)
    code, shown = cli_verify(str(pdf_file), "--keys", str(keys_file), "--trust-root", str(ca_file))
    assert code == 0, shown

    # the QR offline, with the issuer's published keys
    qr = verify_qr(row["qr_text"], jwks, at=now)
    assert qr.fields.certificate_id == row["certificate_id"]
    assert qr.fields.status_uri == f"{info.oidc_issuer}/statuslists/0"
    assert qr.fields.status_index == row["status_index"]
    assert qr.fields.convictions == 0
    assert qr.issuer == info.oidc_issuer
    code, shown = cli_verify(row["qr_text"], "--keys", str(keys_file))
    assert code == 0, shown

    # the credential: the issuer's, bound to the holder's key, with its status entry
    credential = verify_credential(row["credential"], jwks, at=now, issuer=info.oidc_issuer)
    assert credential.holder_jwk["x"] == holder.public_jwk["x"]
    assert credential.status is not None
    assert (credential.status.uri, credential.status.idx) == (f"{info.oidc_issuer}/statuslists/0", row["status_index"])
    assert credential.claims["certificate_number"] == row["certificate_id"]
    assert credential.claims["criminal_record"] == "Không có án tích"
    mine = await certificates.GetMyCredential(ipb.DossierRequest(id=applied.id), metadata=alice.issuance, timeout=10)
    assert mine.sd_jwt == row["credential"]

    # tampered: the PDF, the QR, the credential
    assert not (await validate(flipped(pdf, len(pdf) // 3), [platform_ca])).valid
    tampered = await verify_presented(flipped(pdf, len(pdf) // 3), issuer_jwks=jwks, trust_roots=[platform_ca], at=now)
    assert tampered.outcome is Outcome.INVALID
    text = row["qr_text"]
    other = "A" if text[40] != "A" else "B"
    bad_qr = await verify_presented(text[:40] + other + text[41:], issuer_jwks=jwks, at=now)
    assert bad_qr.outcome is Outcome.INVALID
    header, payload, rest = row["credential"].split(".", 2)
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["iss"] = "https://elsewhere.example"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    with pytest.raises(VerificationFailed):
        verify_credential(f"{header}.{forged}.{rest}", jwks, at=now)


async def test_an_agency_request_keeps_the_pdf_for_the_agency(
    owner_pool: asyncpg.Pool, stack: Stack, info: StackInfo, clean_citizens: Iterator[Citizen],
    platform_ca: x509.Certificate,
) -> None:  # fmt: skip
    subject = next(clean_citizens)
    dossier_id = await dossier_row(owner_pool, stack, subject, requester=RequesterKind.AGENCY)
    row = await until(lambda: issued_row(owner_pool, dossier_id), "the agency's dossier ISSUED", timeout=120)
    assert row["vault_document_id"] is None
    pdf = bytes(row["agency_pdf"])
    assert (await validate(pdf, [platform_ca])).valid
    jwks = await issuer_jwks(owner_pool)
    verdict = await verify_presented(pdf, issuer_jwks=jwks, trust_roots=[platform_ca], at=datetime.now(UTC))
    assert verdict.valid, verdict.reason
    delivered = await rows(info, "SELECT id FROM vault.documents WHERE issuer_document_id = $1", row["certificate_id"])
    assert delivered == [], "an agency's certificate is not delivered into the citizen's vault"
    credential = verify_credential(row["credential"], jwks, at=datetime.now(UTC))
    assert credential.holder_jwk["kty"] == "EC", "bound to a key no one holds"


async def test_a_failed_issue_backs_off_and_says_why(owner_pool: asyncpg.Pool, stack: Stack) -> None:
    stranger = list(generate(SEEDED + 3))[-1]  # a well-formed ID number the registry does not hold
    dossier_id = await dossier_row(owner_pool, stack, stranger, holder=SigningKey.generate())

    async def failed() -> asyncpg.Record | None:
        row = await owner_pool.fetchrow("SELECT status, issue_attempts, issue_error, next_issue_at > now() AS later"
                                        " FROM issuance.dossiers WHERE id = $1", dossier_id)  # fmt: skip
        return row if row and row["issue_attempts"] >= 1 else None

    row = await until(failed, "a failed attempt recorded", timeout=120)
    assert row["status"] == "APPROVED"
    assert "registry" in row["issue_error"]
    assert row["later"], "the next attempt waits for its back-off"
    assert "eyJ" not in row["issue_error"]  # no assertion, proof or token in the recorded error
