"""The personal document vault end to end: real tokens from the OpenID Provider, real S3 and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator

import asyncpg
import grpc
import httpx
import pytest

from audit.events import Pseudonymizer
from core.keys.purposes import AUDIT_PSEUDONYM
from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.identity_calls import refused
from tests.vault_helpers import (
    JSON,
    PDF,
    PNG,
    bearer,
    citizen_token,
    download,
    download_digest,
    pieces,
    rows,
    stream,
    upload,
)

MAX = 20 * 1024 * 1024  # the default limit (core.settings.Settings.vault_max_bytes)


@pytest.fixture(scope="module")
async def other_token(http: httpx.AsyncClient, info: StackInfo, fresh_citizens: Iterator[Citizen]) -> str:
    return await citizen_token(http, info, next(fresh_citizens))


async def listed(vault: pb_grpc.VaultStub, token: str, **request: object) -> list[pb.Document]:
    reply = await vault.ListDocuments(pb.ListDocumentsRequest(**request), metadata=bearer(token), timeout=10)  # type: ignore[arg-type]
    return list(reply.documents)


async def test_upload_list_download_round_trip(vault: pb_grpc.VaultStub, token: str) -> None:
    papers = [
        (PNG, pb.DOCUMENT_TYPE_CITIZEN_ID_CARD, "Căn cước công dân", "cccd.png", "image/png"),
        (PDF, pb.DOCUMENT_TYPE_BIRTH_CERTIFICATE, "Giấy khai sinh", "khai-sinh.pdf", "application/pdf"),
        (JSON, pb.DOCUMENT_TYPE_HEALTH_BOOK, "Sổ sức khỏe", "so-suc-khoe.json", "application/json"),
    ]
    uploaded = {}
    for content, kind, title, filename, content_type in papers:
        document = await upload(vault, token, pieces(content, 7), kind, title, filename)
        assert (document.content_type, document.size_bytes) == (content_type, len(content))
        assert (document.title, document.filename, document.document_type) == (title, filename, kind)
        assert document.sha256 == hashlib.sha256(content).digest()
        uploaded[document.id] = content
    everything = await listed(vault, token)
    assert set(uploaded) <= {d.id for d in everything}
    health = await listed(vault, token, document_type=pb.DOCUMENT_TYPE_HEALTH_BOOK)
    assert [d.filename for d in health] == ["so-suc-khoe.json"]
    first = await vault.ListDocuments(pb.ListDocumentsRequest(page_size=2), metadata=bearer(token), timeout=10)
    assert len(first.documents) == 2
    assert first.next_page_token
    rest = await listed(vault, token, page_size=2, page_token=first.next_page_token)
    assert [d.id for d in (*first.documents, *rest)] == [d.id for d in everything]  # newest first, no overlap
    for document_id, content in uploaded.items():
        meta, body = await download(vault, token, document_id)
        assert body == content
        assert meta.id == document_id
        got = await vault.GetDocument(pb.GetDocumentRequest(id=document_id), metadata=bearer(token), timeout=10)
        assert got == meta


def objects_in_s3(stack: Stack) -> int:
    assert stack.s3 is not None
    return sum(1 for _ in stack.s3.client().list_objects("vault", recursive=True))


async def test_largest_document_and_one_byte_more(vault: pb_grpc.VaultStub, token: str, stack: Stack) -> None:
    content = b"%PDF-1.7\n" + os.urandom(MAX - 9)
    document = await upload(vault, token, pieces(content), pb.DOCUMENT_TYPE_DIPLOMA, "Bằng tốt nghiệp", "bang.pdf")
    assert document.size_bytes == MAX
    meta, digest, _ = await download_digest(vault, token, document.id)
    assert digest == hashlib.sha256(content).digest() == meta.sha256
    before, stored = len(await listed(vault, token, page_size=100)), objects_in_s3(stack)
    error = await refused(upload(vault, token, pieces(content + b"x")), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert str(MAX) in (error.details() or "")
    assert len(await listed(vault, token, page_size=100)) == before, "a refused upload leaves no document"
    assert objects_in_s3(stack) == stored, "nor an object (the multipart upload was aborted)"


async def test_issuer_and_dates_of_a_paper(vault: pb_grpc.VaultStub, token: str) -> None:
    meta = pb.UploadMetadata(document_type=pb.DOCUMENT_TYPE_CITIZEN_ID_CARD, title="Căn cước", filename="cc.png",
                             issuer_name="Cục Cảnh sát QLHC về TTXH", issued_on="2021-04-01",
                             expires_on="2036-04-01")  # fmt: skip
    document = await vault.Upload(stream(pb.UploadRequest, meta, [PNG]), metadata=bearer(token), timeout=10)
    assert (document.issuer_name, document.issued_on, document.expires_on) == (
        "Cục Cảnh sát QLHC về TTXH", "2021-04-01", "2036-04-01")  # fmt: skip
    got = await vault.GetDocument(pb.GetDocumentRequest(id=document.id), metadata=bearer(token), timeout=10)
    assert got == document
    plain = await upload(vault, token, [PNG])
    assert (plain.issuer_name, plain.issued_on, plain.expires_on) == ("", "", "")
    for bad, words in [
        ({"issued_on": "01/04/2021"}, "issued_on must be a date"),
        ({"expires_on": "2021-02-30"}, "expires_on must be a date"),
        ({"issued_on": "2021-04-01", "expires_on": "2020-04-01"}, "not be before"),
        ({"issuer_name": "x" * 201}, "issuer_name"),
    ]:
        wrong = pb.UploadMetadata(document_type=pb.DOCUMENT_TYPE_OTHER, title="t", filename="t.png", **bad)
        call = vault.Upload(stream(pb.UploadRequest, wrong, [PNG]), metadata=bearer(token), timeout=10)
        error = await refused(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert words in (error.details() or ""), error.details()


async def test_empty_and_unsupported_documents_are_refused(vault: pb_grpc.VaultStub, token: str, stack: Stack) -> None:
    stored = objects_in_s3(stack)
    error = await refused(upload(vault, token, []), grpc.StatusCode.INVALID_ARGUMENT)
    assert error.details() == "empty document"
    exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64
    error = await refused(upload(vault, token, [exe], filename="hoso.pdf"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "unsupported content type" in (error.details() or "")
    await refused(upload(vault, token, [b'"just a string"']), grpc.StatusCode.INVALID_ARGUMENT)
    await refused(upload(vault, token, [PNG], filename="../etc/passwd"), grpc.StatusCode.INVALID_ARGUMENT)
    assert objects_in_s3(stack) == stored


async def test_another_citizen_cannot_see_the_document(vault: pb_grpc.VaultStub, token: str, other_token: str) -> None:
    document = await upload(vault, token, [PDF], pb.DOCUMENT_TYPE_CRIMINAL_RECORD_CERTIFICATE)
    await refused(download(vault, other_token, document.id), grpc.StatusCode.NOT_FOUND)
    request = pb.GetDocumentRequest(id=document.id)
    await refused(vault.GetDocument(request, metadata=bearer(other_token), timeout=10), grpc.StatusCode.NOT_FOUND)
    delete = pb.DeleteDocumentRequest(id=document.id)
    await refused(vault.DeleteDocument(delete, metadata=bearer(other_token), timeout=10), grpc.StatusCode.NOT_FOUND)
    assert document.id not in {d.id for d in await listed(vault, other_token)}
    _, body = await download(vault, token, document.id)
    assert body == PDF


async def test_s3_and_postgres_hold_no_plaintext_nor_id_number(
    vault: pb_grpc.VaultStub, token: str, stack: Stack, info: StackInfo, owner: Citizen
) -> None:
    marker = b"NOI-DUNG-BI-MAT-" + os.urandom(8).hex().encode()
    content = b"%PDF-1.4\n" + marker * 50_000  # ~1.5 MB: several segments
    document = await upload(vault, token, pieces(content), pb.DOCUMENT_TYPE_RESIDENCE_CONFIRMATION)
    connection = await asyncpg.connect(info.postgres_dsn)
    try:
        row = await connection.fetchrow("SELECT * FROM vault.documents WHERE id = $1", document.id)
        keys = await connection.fetchval(
            "SELECT count(*) FROM vault.citizen_keys WHERE owner_ref = $1", row["owner_ref"]
        )
    finally:
        await connection.close()
    assert keys == 1
    assert owner.id_number not in " ".join(str(value) for value in row.values())
    assert owner.id_number not in row["object_name"]
    assert document.id != row["object_name"]
    assert stack.s3 is not None
    client = stack.s3.client()
    response = client.get_object("vault", row["object_name"])
    try:
        raw = response.read()
    finally:
        response.close()
        response.release_conn()
    assert len(raw) > len(content)  # header and one tag per segment
    assert marker not in raw
    assert marker[:16] not in raw
    assert owner.id_number.encode() not in raw


async def test_deleted_document_is_gone(vault: pb_grpc.VaultStub, token: str) -> None:
    document = await upload(vault, token, [JSON], pb.DOCUMENT_TYPE_OTHER, "Tạm", "tam.json")
    request = pb.DeleteDocumentRequest(id=document.id)
    await vault.DeleteDocument(request, metadata=bearer(token), timeout=10)
    await refused(download(vault, token, document.id), grpc.StatusCode.NOT_FOUND)
    await refused(vault.DeleteDocument(request, metadata=bearer(token), timeout=10), grpc.StatusCode.NOT_FOUND)
    assert document.id not in {d.id for d in await listed(vault, token, page_size=100)}
    await refused(download(vault, token, "not-a-uuid"), grpc.StatusCode.NOT_FOUND)


async def test_every_access_is_on_the_citizen_trail(
    vault: pb_grpc.VaultStub, token: str, stack: Stack, info: StackInfo, owner: Citizen
) -> None:
    document = await upload(vault, token, [JSON], pb.DOCUMENT_TYPE_HEALTH_BOOK, "Sổ sức khỏe", "so.json")
    await download(vault, token, document.id)
    await vault.DeleteDocument(pb.DeleteDocumentRequest(id=document.id), metadata=bearer(token), timeout=10)
    subject = Pseudonymizer(stack.secrets.keys("vault").key(AUDIT_PSEUDONYM)).ref(owner.id_number)
    trail = await rows(info, "SELECT actor, action, outcome, detail FROM audit.events WHERE subject = $1 ORDER BY id",
                       subject)  # fmt: skip
    actions = [r["action"] for r in trail]
    assert "identity.password" in actions, "the same pseudonym as the sign-in events"
    mine = [
        (r["action"], json.loads(r["detail"])) for r in trail if json.loads(r["detail"]).get("document") == document.id
    ]
    assert [action for action, _ in mine] == ["vault.upload", "vault.download", "vault.delete"]
    assert all(detail["client_id"] for _, detail in mine), "the portal that acted for the citizen"
    assert owner.id_number not in str([dict(r) for r in trail])
