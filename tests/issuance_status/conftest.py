"""Fixtures of the status list tests: the issuance role's pool, the issuer key the stack gave the issuance
process, and issued dossiers (rows inserted as the database owner, as the issuing worker would leave them)."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx
import pytest

from core.keys import purposes
from issuance.issuer_keys import SigningKey
from issuance.qr import DOC_CRIMINAL_RECORD_1, QrFields, encode_qr
from issuance.revocation import StatusListSigner, status_list_uri
from issuance.status_store import PostgresStatusStore
from stack.info import StackInfo
from stack.supervisor import Stack

INSERT_DOSSIER = """
INSERT INTO issuance.dossiers (id, tracking_number, request_id, requester, requester_ref, id_number, subject, form,
    purpose, answers, fields, fee, working_days, deadline, received_at, status, status_changed_at, certificate_id,
    status_index, credential_status, credential, qr_text, issued_at)
VALUES ($1, $2, $3, 'SELF', $4, $5, $4, 1, 'EMPLOYMENT', '{}'::jsonb, '[]'::jsonb, $15::jsonb, 10, $6, $7, $8, $7,
    $9, $10, $11, $12, $13, $14)
"""
FEE = {"groups": [], "base_vnd": 200000, "reduction_vnd": 0, "extra_copies_vnd": 0, "total_vnd": 200000,
       "reason": "", "basis": "Thông tư 244/2016/TT-BTC"}  # fmt: skip


@dataclass(frozen=True)
class IssuedDossier:
    id: uuid.UUID
    status_index: int
    certificate_id: str
    qr_text: str
    subject: str


@pytest.fixture(scope="module")
async def owner_pool(info: StackInfo) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
async def issuance_pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    """A pool of the issuance service's own role (``dinhdanh_issuance``): the grants are part of what is tested."""
    pool = await asyncpg.create_pool(stack._service_dsn("issuance"), min_size=1, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
def issuer_key(stack: Stack) -> SigningKey:
    return SigningKey.from_seed(stack.secrets.keys("issuance").key(purposes.ISSUANCE_SIGNING))


@pytest.fixture(scope="module")
def issuer(info: StackInfo) -> str:
    return info.oidc_issuer.rstrip("/")


@pytest.fixture(scope="module")
def store(issuance_pool: asyncpg.Pool, issuer_key: SigningKey, issuer: str) -> PostgresStatusStore:
    return PostgresStatusStore(issuance_pool, StatusListSigner(issuer_key, issuer))


@pytest.fixture(scope="module")
async def published_keys(owner_pool: asyncpg.Pool, issuer_key: SigningKey) -> None:
    """The issuer's 'credential' key row, as the issuance service writes it on start (kept if it is there)."""
    await owner_pool.execute(
        "INSERT INTO issuance.issuer_keys (kid, use, public_jwk) VALUES ($1, 'credential', $2::jsonb)"
        " ON CONFLICT (kid) DO NOTHING",
        issuer_key.kid, json.dumps(issuer_key.public_jwk),
    )  # fmt: skip


MakeDossier = Callable[..., Awaitable[IssuedDossier]]


@pytest.fixture(scope="module")
def issued_dossier(owner_pool: asyncpg.Pool, issuer_key: SigningKey, issuer: str) -> MakeDossier:
    """A new ISSUED dossier (credential VALID) with the next index of ``issuance.status_indexes`` and the QR
    text the issuer key signs for it; ``status`` makes a dossier in another status (no certificate)."""

    async def make(status: str = "ISSUED") -> IssuedDossier:
        dossier_id = uuid.uuid4()
        now = datetime.now(UTC)
        index = await owner_pool.fetchval("SELECT nextval('issuance.status_indexes')")
        certificate_id = str(uuid.uuid4())
        fields = QrFields(
            document_type=DOC_CRIMINAL_RECORD_1,
            holder_name="Nguyễn Văn Thử",
            id_last_digits="0042",
            convictions=0,
            issued_on=date.today(),
            certificate_id=certificate_id,
            status_index=index,
            status_uri=status_list_uri(issuer),
        )
        qr = encode_qr(issuer_key, fields, issuer=issuer, issued_at=now, expires_at=now + timedelta(days=180))
        subject = secrets.token_hex(16)
        issued = status == "ISSUED"
        await owner_pool.execute(
            INSERT_DOSSIER, dossier_id, f"STA-{dossier_id.hex}", uuid.uuid4(), subject,
            f"{secrets.randbelow(10**12):012d}", date.today() + timedelta(days=14), now, status,
            certificate_id if issued else None, index if issued else None, "VALID" if issued else None,
            "sd-jwt-of-the-fixture~" if issued else None, qr if issued else None, now if issued else None,
            json.dumps(FEE),
        )  # fmt: skip
        return IssuedDossier(dossier_id, index, certificate_id, qr, subject)

    return make


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client
