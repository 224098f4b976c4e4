"""The citizen's key and what it covers: a KEK version is never used twice (a shred during an upload), and titles
and filenames are sealed like the content, so that a shred erases them too (the real PostgreSQL table)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import grpc
import httpx

from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.identity_calls import refused
from tests.test_cli import dinhdanh
from tests.test_vault_consistency import Paused, pending, started, visible
from tests.vault_helpers import CHUNK, PDF, PNG, bearer, citizen_token, download, rows, stream

KEK_OF_ROW = "SELECT kek_version FROM vault.documents WHERE id = $1"


async def test_an_upload_in_flight_during_a_shred_is_refused_and_the_next_kek_is_new(
    vault: pb_grpc.VaultStub, http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizens: Iterator[Citizen]
) -> None:
    who = next(fresh_citizens)
    token = await citizen_token(http, info, who)
    first = await upload_named(vault, token, PDF)
    (before,) = await rows(info, KEK_OF_ROW, uuid.UUID(first.id))
    names = await pending(info)
    paused = Paused(b"%PDF-1.7\n" + os.urandom(2 * CHUNK), before=CHUNK)
    call = asyncio.ensure_future(vault.Upload(paused.requests(), metadata=bearer(token), timeout=60))
    await asyncio.wait_for(paused.sent.wait(), 30)
    await started(info, names)  # its data key is wrapped under the KEK it fetched: the one about to be shredded
    code, done = await asyncio.to_thread(dinhdanh, stack, "vault", "shred", who.id_number)
    assert (code, done["kek_rows"]) == (0, 1), done
    later = await upload_named(vault, token, PNG)  # a new KEK, created while the first upload is still open
    paused.go.set()
    error = await refused(call, grpc.StatusCode.ABORTED)
    assert "key changed" in (error.details() or "")
    (after,) = await rows(info, KEK_OF_ROW, uuid.UUID(later.id))
    assert after["kek_version"] > before["kek_version"], "a shredded KEK's version is never used again"
    assert (await download(vault, token, later.id))[1] == PNG
    assert await visible(vault, token) == {first.id, later.id}, "the refused upload stored nothing"


async def test_titles_and_filenames_are_sealed_and_a_shred_erases_them(
    vault: pb_grpc.VaultStub, http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizens: Iterator[Citizen]
) -> None:
    who = next(fresh_citizens)
    token = await citizen_token(http, info, who)
    marker = "BiMat" + os.urandom(6).hex()
    document = await upload_named(vault, token, PDF, f"Bệnh án {marker}", f"{marker}.pdf", f"Bệnh viện {marker}")
    assert (document.title, document.filename, document.issuer_name) == (
        f"Bệnh án {marker}", f"{marker}.pdf", f"Bệnh viện {marker}")  # fmt: skip
    shown = await vault.GetDocument(pb.GetDocumentRequest(id=document.id), metadata=bearer(token), timeout=10)
    assert (shown.title, shown.filename, shown.issuer_name) == (document.title, document.filename, document.issuer_name)
    query = "SELECT * FROM vault.documents WHERE logical_id = $1"
    (row,) = await rows(info, query, uuid.UUID(document.id))
    assert marker not in _text(row), "no title, filename nor issuer name in the clear"
    code, done = await asyncio.to_thread(dinhdanh, stack, "vault", "shred", who.id_number)
    assert (code, done["documents"]) == (0, 1), done
    (row,) = await rows(info, query, uuid.UUID(document.id))
    assert marker not in _text(row)
    (key,) = await rows(info, "SELECT * FROM vault.citizen_keys WHERE owner_ref = $1", row["owner_ref"])
    assert key["wrapped"] is None, "the key that opened the names is gone"
    reply = await vault.ListDocuments(pb.ListDocumentsRequest(), metadata=bearer(token), timeout=10)
    (erased,) = reply.documents
    assert (erased.id, erased.title, erased.filename, erased.issuer_name) == (document.id, "", "", "")


def _text(row: object) -> str:
    values = row.values()  # type: ignore[attr-defined]
    return " ".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values)


async def upload_named(
    vault: pb_grpc.VaultStub, token: str, content: bytes, title: str = "Giấy tờ", filename: str = "giay-to.bin",
    issuer_name: str = "",
) -> pb.Document:  # fmt: skip
    meta = pb.UploadMetadata(document_type=pb.DOCUMENT_TYPE_OTHER, title=title, filename=filename,
                             issuer_name=issuer_name)  # fmt: skip
    return await vault.Upload(stream(pb.UploadRequest, meta, [content]), metadata=bearer(token), timeout=60)
