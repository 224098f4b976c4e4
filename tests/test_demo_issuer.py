"""Issue 11 item 5: at `dinhdanh up` the demo citizen is level 2 and finds the ID card record and the residence
confirmation in the vault, issued and signed by the demo issuer; starting again does not deliver them twice."""

from __future__ import annotations

import asyncio
import hashlib
import json

import asyncpg
import httpx
import pytest

from issuance import demo_issuer
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.oidc_helpers import Person, portal_flow, signed_in
from tests.vault_helpers import VAULT, bearer
from tests.vault_helpers import download as fetched
from vault import signatures
from vault.documents import DocumentType, Issued, parse_date

PAPERS = {
    pb.DOCUMENT_TYPE_CITIZEN_ID_CARD: DocumentType.CITIZEN_ID_CARD,
    pb.DOCUMENT_TYPE_RESIDENCE_CONFIRMATION: DocumentType.RESIDENCE_CONFIRMATION,
}


@pytest.fixture(scope="module")
async def token(http: httpx.AsyncClient, info: StackInfo) -> str:
    demo = info.demo_citizen
    who = Person(demo["id_number"], demo["password"], demo["totp_secret"])
    flow = portal_flow(info, scope="openid vault.read", resource=VAULT)
    _, params = await signed_in(http, flow, who)
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


async def issued(vault: pb_grpc.VaultStub, token: str, info: StackInfo) -> list[pb.Document]:
    """The documents the demo issuer delivered to the demo citizen (other tests of the session's stack issue the
    demo citizen certificates too)."""
    reply = await vault.ListDocuments(pb.ListDocumentsRequest(page_size=100), metadata=bearer(token), timeout=10)
    demo_issuer_id = info.clients["issuer_demo"]["client_id"]
    return [
        d for d in reply.documents if d.source == pb.DOCUMENT_SOURCE_ISSUED and d.issuer_client_id == demo_issuer_id
    ]


async def registered_jwks(info: StackInfo, client_id: str) -> dict[str, object]:
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        row = await conn.fetchrow(
            "SELECT name, jwks, scopes, resources FROM oidc.clients WHERE client_id = $1", client_id
        )
    finally:
        await conn.close()
    assert row is not None
    assert row["name"] == demo_issuer.NAME
    assert list(row["scopes"]) == ["vault.issue"]
    assert list(row["resources"]) == [VAULT]
    return json.loads(row["jwks"])


async def test_the_demo_citizen_is_level_2(info: StackInfo) -> None:
    async with info.channel("identity") as channel:
        request = ipb.GetAccountRequest(id_number=info.demo_citizen["id_number"])
        account = await igrpc.IdentityStub(channel).GetAccount(request, timeout=10)
    assert account.assurance_level == 2


async def test_the_papers_are_in_the_vault_signed_by_the_demo_issuer(
    vault: pb_grpc.VaultStub, info: StackInfo, token: str
) -> None:
    client_id = info.clients["issuer_demo"]["client_id"]
    documents = await issued(vault, token, info)
    assert sorted(d.document_type for d in documents) == sorted(PAPERS)
    keys = signatures.public_key_set(await registered_jwks(info, client_id))
    id_number = info.demo_citizen["id_number"]
    for document in documents:
        assert document.issuer_client_id == client_id
        assert document.issuer_name == demo_issuer.NAME
        assert document.content_type == "application/pdf"
        assert document.issuer_document_id in (f"CCCD-{id_number}", f"CT07-{id_number}")
        kind = PAPERS[document.document_type]
        dates = (parse_date(document.issued_on, "issued_on"), parse_date(document.expires_on, "expires_on"))
        claims = signatures.check(keys, Issued(client_id, document.issuer_document_id, document.issuer_signature),
                                  kind, dates)  # fmt: skip
        _, content = await fetched(vault, token, document.id)
        assert content.startswith(b"%PDF-")
        signatures.check_content(claims, hashlib.sha256(content).digest())
        assert hashlib.sha256(content).digest() == document.sha256


async def test_starting_again_delivers_nothing_twice(
    stack: Stack, vault: pb_grpc.VaultStub, info: StackInfo, token: str
) -> None:
    before = {d.issuer_document_id: d.id for d in await issued(vault, token, info)}
    assert len(before) == 2
    again = [demo_issuer.set_up(stack.ca, stack.secrets, info.postgres_dsn, info, pytest.fail) for _ in range(3)]
    answers = await asyncio.gather(*again)  # three restarts at once: one registration, one document each
    assert {a["client_id"] for a in answers} == {info.clients["issuer_demo"]["client_id"]}
    after = {d.issuer_document_id: d.id for d in await issued(vault, token, info)}
    assert after == before
