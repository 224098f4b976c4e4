"""Who may call what on the vault: every RPC with no token, an expired token, an agency's token, another
citizen's token, and (for issuer pushes) a citizen's token. Real tokens from the OpenID Provider; the expired
one is a real access token re-signed by the OP's own current key with its lifetime moved into the past."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from joserfc import jwt

from core.keys.purposes import OIDC_SIGNING_KEY
from core.keys.sealing import Sealer
from identity.oidc import keys
from identity.oidc.store import SigningKeyStore
from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.identity_calls import refused
from tests.vault_helpers import PDF, agency_token, bearer, citizen_token, keyed_agency, presented, stream, upload

Metadata = tuple[tuple[str, str], ...] | None
Call = Callable[[pb_grpc.VaultStub, Metadata, str], Awaitable[Any]]


async def _upload(vault: pb_grpc.VaultStub, metadata: Metadata, _document_id: str) -> Any:
    meta = pb.UploadMetadata(document_type=pb.DOCUMENT_TYPE_OTHER, title="x", filename="x.pdf")
    return await vault.Upload(stream(pb.UploadRequest, meta, [PDF]), metadata=metadata, timeout=10)


async def _deliver(vault: pb_grpc.VaultStub, metadata: Metadata, _document_id: str) -> Any:
    meta = pb.DeliverMetadata(citizen_id_number="001099012345", issuer_document_id="X-1",
                              document_type=pb.DOCUMENT_TYPE_OTHER, title="x", filename="x.pdf")  # fmt: skip
    requests = stream(pb.DeliverIssuedDocumentRequest, meta, [PDF])
    return await vault.DeliverIssuedDocument(requests, metadata=metadata, timeout=10)


async def _download(vault: pb_grpc.VaultStub, metadata: Metadata, document_id: str) -> Any:
    return [r async for r in vault.Download(pb.DownloadRequest(id=document_id), metadata=metadata, timeout=10)]


CITIZEN_CALLS: dict[str, Call] = {
    "Upload": _upload,
    "ListDocuments": lambda v, m, _d: v.ListDocuments(pb.ListDocumentsRequest(), metadata=m, timeout=10),
    "GetDocument": lambda v, m, d: v.GetDocument(pb.GetDocumentRequest(id=d), metadata=m, timeout=10),
    "Download": _download,
    "DeleteDocument": lambda v, m, d: v.DeleteDocument(pb.DeleteDocumentRequest(id=d), metadata=m, timeout=10),
    "ListVersions": lambda v, m, d: v.ListVersions(pb.ListVersionsRequest(id=d), metadata=m, timeout=10),
}
EVERY_CALL: dict[str, Call] = {**CITIZEN_CALLS, "DeliverIssuedDocument": _deliver}
ON_A_DOCUMENT = ("GetDocument", "Download", "DeleteDocument", "ListVersions")


async def expired_copy(stack: Stack, info: StackInfo, token: str) -> str:
    """``token``'s claims with ``exp`` two minutes ago, signed by the OP's current ES256 key."""
    sealer = Sealer(stack.secrets.keys("edge").key(OIDC_SIGNING_KEY))
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=1)
    try:
        ring = keys.KeyRing(await SigningKeyStore(pool).keys(), sealer)
    finally:
        await pool.close()
    claims = dict(jwt.decode(token, ring.keyset(), algorithms=["ES256"]).claims)
    now = int(time.time())
    claims |= {"iat": now - 900, "exp": now - 120}
    kid, key = ring.signing_key("ES256")
    return jwt.encode({"alg": "ES256", "kid": kid, "typ": "at+jwt"}, claims, key, algorithms=["ES256"])


@pytest.fixture(scope="module")
def people(fresh_citizens: Iterator[Citizen]) -> Iterator[Citizen]:
    return fresh_citizens


@pytest.fixture(scope="module")
async def owner_token(http: httpx.AsyncClient, info: StackInfo, people: Iterator[Citizen]) -> str:
    return await citizen_token(http, info, next(people))


@pytest.fixture(scope="module")
async def document_id(vault: pb_grpc.VaultStub, owner_token: str) -> str:
    return (await upload(vault, owner_token, [PDF])).id


@pytest.mark.parametrize("method", EVERY_CALL)
async def test_no_token_is_unauthenticated(vault: pb_grpc.VaultStub, document_id: str, method: str) -> None:
    error = await refused(EVERY_CALL[method](vault, None, document_id), grpc.StatusCode.UNAUTHENTICATED)
    assert "token" in (error.details() or "")


@pytest.mark.parametrize("method", EVERY_CALL)
async def test_an_expired_token_is_unauthenticated(
    vault: pb_grpc.VaultStub, stack: Stack, info: StackInfo, owner_token: str, document_id: str, method: str
) -> None:
    expired = await expired_copy(stack, info, owner_token)
    error = await refused(EVERY_CALL[method](vault, bearer(expired), document_id), grpc.StatusCode.UNAUTHENTICATED)
    assert "expired" in (error.details() or "")


@pytest.fixture(scope="module")
async def reader_token(http: httpx.AsyncClient, stack: Stack, info: StackInfo) -> str:
    agency, _ = keyed_agency(stack, "Sở Y tế", "--purpose", "health-check")  # FAPI 2.0: a DPoP-bound token
    return await agency_token(http, info, agency)


@pytest.mark.parametrize("method", CITIZEN_CALLS)
async def test_an_agency_token_is_not_a_citizen(
    vault: pb_grpc.VaultStub, reader_token: str, document_id: str, method: str
) -> None:
    presentation = presented(reader_token, f"/dinhdanh.vault.v1.Vault/{method}")
    await refused(CITIZEN_CALLS[method](vault, presentation, document_id), grpc.StatusCode.PERMISSION_DENIED)


async def test_agency_without_vault_issue_and_citizens_cannot_deliver(
    vault: pb_grpc.VaultStub, reader_token: str, owner_token: str
) -> None:
    for token in (reader_token, owner_token):
        metadata = presented(token, "/dinhdanh.vault.v1.Vault/DeliverIssuedDocument")
        await refused(_deliver(vault, metadata, ""), grpc.StatusCode.PERMISSION_DENIED)


@pytest.mark.parametrize("method", ON_A_DOCUMENT)
async def test_another_citizen_finds_nothing(
    vault: pb_grpc.VaultStub, http: httpx.AsyncClient, info: StackInfo, people: Iterator[Citizen],
    owner_token: str, document_id: str, method: str,
) -> None:  # fmt: skip
    other = await citizen_token(http, info, next(people))
    await refused(CITIZEN_CALLS[method](vault, bearer(other), document_id), grpc.StatusCode.NOT_FOUND)
    listed = await vault.ListDocuments(pb.ListDocumentsRequest(), metadata=bearer(other), timeout=10)
    assert document_id not in {d.id for d in listed.documents}
    got = await vault.GetDocument(pb.GetDocumentRequest(id=document_id), metadata=bearer(owner_token), timeout=10)
    assert got.id == document_id, "still there for its owner"


READS = ("ListDocuments", "GetDocument", "Download", "ListVersions")
WRITES = ("Upload", "DeleteDocument")


@pytest.fixture(scope="module")
async def scoped_tokens(http: httpx.AsyncClient, info: StackInfo, people: Iterator[Citizen]) -> dict[str, str]:
    """Citizens' tokens for the vault (the audience) with no vault scope, and with ``vault.read`` only."""
    return {scope: await citizen_token(http, info, next(people), scope) for scope in ("openid", "openid vault.read")}


@pytest.mark.parametrize("method", READS + WRITES)
async def test_the_audience_alone_opens_nothing(
    vault: pb_grpc.VaultStub, scoped_tokens: dict[str, str], document_id: str, method: str
) -> None:
    token = scoped_tokens["openid"]
    error = await refused(CITIZEN_CALLS[method](vault, bearer(token), document_id), grpc.StatusCode.PERMISSION_DENIED)
    needed = "vault.read" if method in READS else "vault.write"
    assert f'scope="{needed}"' in dict(error.trailing_metadata() or ())["www-authenticate"]


@pytest.mark.parametrize("method", WRITES)
async def test_reading_is_not_writing(
    vault: pb_grpc.VaultStub, scoped_tokens: dict[str, str], document_id: str, method: str
) -> None:
    token = scoped_tokens["openid vault.read"]
    await vault.ListDocuments(pb.ListDocumentsRequest(), metadata=bearer(token), timeout=10)  # reading is allowed
    error = await refused(CITIZEN_CALLS[method](vault, bearer(token), document_id), grpc.StatusCode.PERMISSION_DENIED)
    assert 'scope="vault.write"' in dict(error.trailing_metadata() or ())["www-authenticate"]
