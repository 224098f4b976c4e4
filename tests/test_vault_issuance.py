"""The vault's issuance, versions and key operations end to end: agencies push documents, citizens upload new
versions, operators shred or rotate a citizen's KEK (real tokens, S3 and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import grpc
import httpx
import pytest
from joserfc import jwt

from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.bearer_helpers import JwksServer
from tests.identity_calls import refused
from tests.test_cli import dinhdanh
from tests.vault_helpers import (
    JSON,
    PDF,
    PNG,
    Issuer,
    agency_token,
    bearer,
    citizen_token,
    deliver,
    download,
    keyed_agency,
    register_issuer,
    rows,
    s3_objects,
    stream,
)
from vault import signatures
from vault.documents import DocumentType

CRIMINAL_RECORD = DocumentType.CRIMINAL_RECORD_CERTIFICATE


@pytest.fixture(scope="module")
def issuer(stack: Stack) -> Issuer:
    return register_issuer(stack, "Sở Tư pháp Hà Nội")


@pytest.fixture(scope="module")
async def issuer_token(http: httpx.AsyncClient, info: StackInfo, issuer: Issuer) -> str:
    return await issuer.token(http, info)


@pytest.fixture(scope="module")
def people(fresh_citizens: Iterator[Citizen]) -> Iterator[Citizen]:
    return fresh_citizens


async def a_citizen(http: httpx.AsyncClient, info: StackInfo, people: Iterator[Citizen]) -> tuple[Citizen, str]:
    who = next(people)
    return who, await citizen_token(http, info, who)


async def upload(
    vault: pb_grpc.VaultStub, token: str, content: bytes, replaces: str = "", filename: str = "so-suc-khoe.json"
) -> pb.Document:
    meta = pb.UploadMetadata(
        document_type=pb.DOCUMENT_TYPE_HEALTH_BOOK,
        title="Sổ sức khỏe",
        filename=filename,
        replaces_document_id=replaces,
    )
    return await vault.Upload(stream(pb.UploadRequest, meta, [content]), metadata=bearer(token), timeout=60)


async def listed(vault: pb_grpc.VaultStub, token: str) -> list[pb.Document]:
    reply = await vault.ListDocuments(pb.ListDocumentsRequest(page_size=100), metadata=bearer(token), timeout=10)
    return list(reply.documents)


async def test_an_agency_delivers_an_issued_document_once(
    vault: pb_grpc.VaultStub, http: httpx.AsyncClient, info: StackInfo, issuer_token: str, issuer: Issuer,
    people: Iterator[Citizen],
) -> None:  # fmt: skip
    who, token = await a_citizen(http, info, people)
    first = await deliver(vault, issuer_token, issuer, who.id_number, "LLTP-2026-000123")
    again = await deliver(vault, issuer_token, issuer, who.id_number, "LLTP-2026-000123")
    assert again == first, "the same issuer document id is the same document"
    assert first.source == pb.DOCUMENT_SOURCE_ISSUED
    assert (first.issuer_client_id, first.issuer_document_id) == (issuer.client_id, "LLTP-2026-000123")
    claims = jwt.decode(first.issuer_signature, issuer.key, algorithms=["ES256"]).claims  # anyone can check it
    assert claims["jti"] == "LLTP-2026-000123"
    assert claims["content_sha256"] == signatures.content_digest(hashlib.sha256(PDF).digest())
    assert first.version == 1
    assert (first.issuer_name, first.issued_on, first.expires_on) == ("Sở Tư pháp Hà Nội", "2026-11-20", "")
    mine = [d for d in await listed(vault, token) if d.id == first.id]
    assert mine == [first]
    got = await vault.GetDocument(pb.GetDocumentRequest(id=first.id), metadata=bearer(token), timeout=10)
    assert got == first
    meta, body = await download(vault, token, first.id)
    assert (meta, body) == (first, PDF)
    count = await rows(info, "SELECT id FROM vault.documents WHERE issuer_document_id = $1", "LLTP-2026-000123")
    assert len(count) == 1
    # read-only to the citizen: neither deleted nor versioned
    delete = vault.DeleteDocument(pb.DeleteDocumentRequest(id=first.id), metadata=bearer(token), timeout=10)
    error = await refused(delete, grpc.StatusCode.FAILED_PRECONDITION)
    assert "issued" in (error.details() or "")
    await refused(upload(vault, token, JSON, replaces=first.id), grpc.StatusCode.FAILED_PRECONDITION)
    assert first.id in {d.id for d in await listed(vault, token)}
    # the same issuer document id for another citizen
    other, _ = await a_citizen(http, info, people)
    await refused(
        deliver(vault, issuer_token, issuer, other.id_number, "LLTP-2026-000123"), grpc.StatusCode.ALREADY_EXISTS
    )
    await refused(deliver(vault, issuer_token, issuer, "12345", "LLTP-X"), grpc.StatusCode.INVALID_ARGUMENT)


async def test_only_agencies_with_vault_issue_deliver(
    vault: pb_grpc.VaultStub, http: httpx.AsyncClient, info: StackInfo, stack: Stack, people: Iterator[Citizen],
    issuer: Issuer,
) -> None:  # fmt: skip
    who, token = await a_citizen(http, info, people)
    await refused(deliver(vault, token, issuer, who.id_number, "self-issued"), grpc.StatusCode.PERMISSION_DENIED)
    reader, _ = keyed_agency(stack, "Sở Y tế", "--purpose", "read", "--scope", "vault.read")
    read_only = await agency_token(http, info, reader)
    await refused(deliver(vault, read_only, issuer, who.id_number, "no-scope"), grpc.StatusCode.PERMISSION_DENIED)
    await refused(deliver(vault, "not-a-token", issuer, who.id_number, "bad"), grpc.StatusCode.UNAUTHENTICATED)
    assert await listed(vault, token) == []


async def test_a_delivery_needs_the_issuer_signature_over_its_content(
    vault: pb_grpc.VaultStub, http: httpx.AsyncClient, info: StackInfo, stack: Stack, people: Iterator[Citizen],
    issuer: Issuer, issuer_token: str,
) -> None:  # fmt: skip
    who, token = await a_citizen(http, info, people)
    objects = s3_objects(stack)
    other = register_issuer(stack, "Bệnh viện Bạch Mai")
    forged = other.signature("LLTP-forged", CRIMINAL_RECORD, PDF)
    cases: list[tuple[str, bytes | None, bytes, str]] = [
        ("LLTP-garbage", b"not-a-jws", PDF, "does not verify"),
        ("LLTP-forged", forged, PDF, "does not verify"),  # another agency's key: not in this issuer's JWKS
        ("LLTP-content", issuer.signature("LLTP-content", CRIMINAL_RECORD, PNG), PDF, "content_sha256"),
        ("LLTP-id", issuer.signature("LLTP-other-id", CRIMINAL_RECORD, PDF), PDF, "claim jti"),
        ("LLTP-type", issuer.signature("LLTP-type", DocumentType.HEALTH_BOOK, PDF), PDF, "claim document_type"),
        ("LLTP-date", issuer.signature("LLTP-date", CRIMINAL_RECORD, PDF, issued_on=""), PDF, "claim issued_on"),
    ]
    for reference, signature, content, words in cases:
        call = deliver(vault, issuer_token, issuer, who.id_number, reference, content, signature=signature)
        error = await refused(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert words in (error.details() or ""), (reference, error.details())
    published = JwksServer([])  # its private_key_jwt key published at a jwks_uri: no registered signing keys
    await published.start()
    try:
        keyless = register_issuer(stack, "UBND phường", jwks_uri=published.url)
        published.keys = [keyless.key.as_dict(private=False)]
        error = await refused(deliver(vault, await keyless.token(http, info), keyless, who.id_number,
                                      "LLTP-keyless"), grpc.StatusCode.FAILED_PRECONDITION)  # fmt: skip
    finally:
        await published.stop()
    assert "no registered signing keys" in (error.details() or "")
    assert await listed(vault, token) == []
    assert s3_objects(stack) == objects, "a refused delivery leaves no object"
    private = stack.var / "private.jwks.json"
    private.write_text(json.dumps({"keys": [issuer.key.as_dict(private=True)]}))
    code, refusal = dinhdanh(stack, "clients", "add-agency", "--name", "X", "--purpose", "p", "--jwks", str(private))
    assert code == 1
    assert "public keys only" in refusal["error"]


async def test_versions_of_a_document(
    vault: pb_grpc.VaultStub, http: httpx.AsyncClient, info: StackInfo, people: Iterator[Citizen]
) -> None:
    _, token = await a_citizen(http, info, people)
    _, other = await a_citizen(http, info, people)
    v1 = await upload(vault, token, JSON)
    v2 = await upload(vault, token, PNG, replaces=v1.id, filename="so-suc-khoe.png")
    v3 = await upload(vault, token, PDF, replaces=v1.id, filename="so-suc-khoe.pdf")
    assert (v1.version, v2.version, v3.version) == (1, 2, 3)
    assert v1.id == v2.id == v3.id
    assert v3.source == pb.DOCUMENT_SOURCE_UPLOADED
    versions = await vault.ListVersions(pb.ListVersionsRequest(id=v1.id), metadata=bearer(token), timeout=10)
    assert list(versions.versions) == [v3, v2, v1]
    assert await listed(vault, token) == [v3], "the list shows a document once, at its latest version"
    meta, body = await download(vault, token, v1.id)
    assert (meta, body) == (v3, PDF)
    older = [r async for r in vault.Download(pb.DownloadRequest(id=v1.id, version=2), metadata=bearer(token))]
    assert older[0].metadata == v2
    assert b"".join(r.chunk for r in older[1:]) == PNG
    await refused(upload(vault, other, JSON, replaces=v1.id), grpc.StatusCode.NOT_FOUND)
    await refused(
        vault.ListVersions(pb.ListVersionsRequest(id=v1.id), metadata=bearer(other), timeout=10),
        grpc.StatusCode.NOT_FOUND,
    )
    await vault.DeleteDocument(pb.DeleteDocumentRequest(id=v1.id), metadata=bearer(token), timeout=10)
    await refused(download(vault, token, v1.id), grpc.StatusCode.NOT_FOUND)
    assert await listed(vault, token) == []


async def test_shred_makes_every_document_unreadable(
    vault: pb_grpc.VaultStub, http: httpx.AsyncClient, info: StackInfo, stack: Stack, issuer_token: str,
    issuer: Issuer, people: Iterator[Citizen],
) -> None:  # fmt: skip
    who, token = await a_citizen(http, info, people)
    mine = await upload(vault, token, JSON)
    issued = await deliver(vault, issuer_token, issuer, who.id_number, f"LLTP-shred-{who.id_number}")
    before = s3_objects(stack)
    code, done = dinhdanh(stack, "vault", "shred", who.id_number)
    assert code == 0, done
    assert done == {"shredded": True, "kek_rows": 1, "documents": 2}
    for document in (mine, issued):
        error = await refused(download(vault, token, document.id), grpc.StatusCode.FAILED_PRECONDITION)
        assert "erased" in (error.details() or "")
    assert s3_objects(stack) == before, "the objects are untouched: only the key is gone"
    assert {d.id for d in await listed(vault, token)} == {mine.id, issued.id}
    code, again = dinhdanh(stack, "vault", "shred", who.id_number)
    assert (code, again["kek_rows"]) == (0, 0)
    code, error = dinhdanh(stack, "vault", "rotate-kek", who.id_number)
    assert code == 1
    assert "no vault key" in error["error"]
    fresh = await upload(vault, token, PNG, filename="moi.png")  # a new KEK for new documents
    assert (await download(vault, token, fresh.id))[1] == PNG
    code, error = dinhdanh(stack, "vault", "shred", "123")
    assert code == 1
    assert "12 digits" in error["error"]


async def test_rotate_kek_rewraps_every_data_key(
    vault: pb_grpc.VaultStub, http: httpx.AsyncClient, info: StackInfo, stack: Stack, issuer_token: str,
    issuer: Issuer, people: Iterator[Citizen],
) -> None:  # fmt: skip
    who, token = await a_citizen(http, info, people)
    first = await upload(vault, token, JSON)
    second = await upload(vault, token, PNG, replaces=first.id, filename="so.png")
    issued = await deliver(vault, issuer_token, issuer, who.id_number, f"LLTP-rotate-{who.id_number}")
    query = "SELECT id, kek_version, key_nonce, wrapped_key FROM vault.documents WHERE logical_id = ANY($1::uuid[])"
    ids = [first.id, issued.id]
    keys_before = {r["id"]: (r["kek_version"], bytes(r["wrapped_key"])) for r in await rows(info, query, ids)}
    assert len(keys_before) == 3
    objects = s3_objects(stack)
    code, done = dinhdanh(stack, "vault", "rotate-kek", who.id_number)
    assert code == 0, done
    assert done == {"kek_version": 2, "data_keys": 3}
    keys_after = {r["id"]: (r["kek_version"], bytes(r["wrapped_key"])) for r in await rows(info, query, ids)}
    assert keys_after.keys() == keys_before.keys()
    for row_id, (version, wrapped) in keys_after.items():
        assert version == 2
        assert wrapped != keys_before[row_id][1]
    assert s3_objects(stack) == objects
    assert (await download(vault, token, first.id))[1] == PNG
    older = [r async for r in vault.Download(pb.DownloadRequest(id=first.id, version=1), metadata=bearer(token))]
    assert b"".join(r.chunk for r in older[1:]) == JSON
    assert (await download(vault, token, issued.id))[1] == PDF
    later = await upload(vault, token, PDF, filename="sau.pdf")
    assert (await download(vault, token, later.id))[1] == PDF
    assert second.version == 2
