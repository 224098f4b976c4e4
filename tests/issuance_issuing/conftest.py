"""Fixtures of the issuing tests: approved dossiers (through Apply, or written as the database owner with the
dossier store's own code), the issuer's published keys, and workers of the test process on the real stack."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from audit.events import Pseudonymizer
from core.keys.purposes import AUDIT_PSEUDONYM
from issuance import dossiers
from issuance.application import Answers, fill_application
from issuance.dossiers import Actor, Status
from issuance.fees import fee
from issuance.forms import FormNo, RequesterKind
from issuance.issuer_keys import SigningKey
from issuance.pg_store import PostgresDossierStore
from issuance.store import NewDossier, StoredEvent, answers_json
from registry.citizen import Citizen
from stack import issuers
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.issuance_service.conftest import clean_citizens, convicted  # noqa: F401 - fixtures
from tests.oidc_helpers import person, portal_flow, signed_in
from tests.vault_helpers import VAULT

ISSUANCE = "urn:dinhdanh:service:issuance"


@dataclass(frozen=True)
class Signed:
    """A level-2 citizen signed in to the demo portal: a token for the issuance service and one for the vault."""

    citizen: Citizen
    issuance_token: str
    vault_token: str

    @property
    def issuance(self) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.issuance_token}"),)

    @property
    def vault(self) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.vault_token}"),)


async def signed_citizen(http: httpx.AsyncClient, info: StackInfo, citizen: Citizen) -> Signed:
    from tests.issuance_service.conftest import level_2

    who = await person(info, citizen)
    await level_2(info, citizen.id_number)
    tokens = []
    browser = None
    for scope, resource in (("openid issuance.apply", ISSUANCE), ("openid vault.read vault.write", VAULT)):
        flow = portal_flow(info, scope=scope, resource=resource)
        if browser is None:
            browser, params = await signed_in(http, flow, who)
        else:  # the SSO session: no second password or TOTP
            from bench.browserless import sign_in

            params = await sign_in(browser, flow, who.id_number, who.password, "")
        reply = await flow.redeem(http, params["code"], params["_verifier"])
        assert reply.status_code == 200, reply.text
        tokens.append(str(reply.json()["access_token"]))
    return Signed(citizen, tokens[0], tokens[1])


@pytest.fixture
async def owner_pool(info: StackInfo) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=4)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()


def pseudonym(stack: Stack, id_number: str) -> str:
    return Pseudonymizer(stack.secrets.keys("issuance").key(AUDIT_PSEUDONYM)).ref(id_number)


async def dossier_row(
    pool: asyncpg.Pool,
    stack: Stack,
    citizen: Citizen,
    *,
    holder: SigningKey | None = None,
    requester: RequesterKind = RequesterKind.SELF,
    form: int = 1,
    approved: bool = True,
) -> uuid.UUID:
    """A dossier written as the database owner through ``PostgresDossierStore.create`` (what Apply stores): the
    application filled from ``citizen``, ending APPROVED (due at once) or VERIFYING (``approved`` False)."""
    purpose = "EMPLOYMENT" if form == 1 else "PERSONAL"
    answers = Answers(form, purpose, 1, "ELECTRONIC", "nguoi.dan@example.vn", False if form == 1 else None)
    application = fill_application(citizen, answers)
    now = datetime.now(UTC)
    received = now.astimezone(dossiers.VIETNAM_TIME).date()
    tracking = dossiers.tracking_number(received, int(uuid.uuid4().int % 999_999) + 1, "000.00.00.TEST")
    history = [StoredEvent(Status.SUBMITTED, now, Actor.SYSTEM), StoredEvent(Status.VERIFYING, now, Actor.SYSTEM)]
    if approved:
        history.append(StoredEvent(Status.APPROVED, now, Actor.SYSTEM, "clean record"))
    ref = pseudonym(stack, citizen.id_number)
    agency = requester in (RequesterKind.AGENCY, RequesterKind.PROCEDURAL_AUTHORITY)
    new = NewDossier(
        id=uuid.uuid4(), tracking_number=tracking, request_id=uuid.uuid4(), requester=requester,
        requester_ref="agency-test" if agency else ref, client_id="agency-test" if agency else "",
        authorisation_ref="", legal_basis="Luật Lý lịch tư pháp 2009, Điều 7" if agency else "",
        id_number=citizen.id_number, subject=ref, form=FormNo(form), purpose=purpose, answers=answers_json(answers),
        fields=application.fields, fee=fee(1, agency=agency), working_days=10,
        deadline=dossiers.add_working_days(received, 10), received_at=now, history=tuple(history),
        clean_record=True, holder_jwk=holder.public_jwk if holder else None,
    )  # fmt: skip
    stored, created = await PostgresDossierStore(pool).create(new, [])
    assert created
    return stored.id


async def approve(pool: asyncpg.Pool, dossier_id: uuid.UUID) -> None:
    """VERIFYING → APPROVED written directly (without the store's row lock, which a test may be holding)."""
    async with pool.acquire() as connection, connection.transaction():
        seq = await connection.fetchval("SELECT count(*) FROM issuance.dossier_events WHERE dossier_id = $1",
                                        dossier_id)  # fmt: skip
        await connection.execute(
            "UPDATE issuance.dossiers SET status = 'APPROVED', status_changed_at = now(), next_issue_at = now()"
            " WHERE id = $1 AND status = 'VERIFYING'",
            dossier_id,
        )
        await connection.execute(
            "INSERT INTO issuance.dossier_events (dossier_id, seq, status, at, actor) VALUES ($1, $2, 'APPROVED',"
            " now(), 'SYSTEM')",
            dossier_id, seq,
        )  # fmt: skip


async def issued_row(pool: asyncpg.Pool, dossier_id: uuid.UUID) -> asyncpg.Record | None:
    row = await pool.fetchrow("SELECT * FROM issuance.dossiers WHERE id = $1 AND status = 'ISSUED'", dossier_id)
    return row


async def issuer_jwks(pool: asyncpg.Pool) -> dict[str, Any]:
    rows = await pool.fetch("SELECT kid, public_jwk FROM issuance.issuer_keys WHERE use = 'credential'")
    keys = []
    for row in rows:
        jwk = row["public_jwk"]
        keys.append(json.loads(jwk) if isinstance(jwk, str) else dict(jwk))
    return {"keys": keys}


def cli_verify(item: str, *options: str) -> tuple[int, dict[str, Any]]:
    result = subprocess.run([sys.executable, "-m", "cli.main", "verify", item, *options, "--json"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def issuance_client(stack: Stack) -> dict[str, str]:
    known = stack.secrets.json(issuers.CLIENTS_FILE)
    assert known is not None
    return known["issuance"]
