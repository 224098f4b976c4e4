"""The vault's consistency end to end (real S3 and PostgreSQL): interrupted streams, concurrent uploads, the
purge of deleted documents and the sweep of objects whose upload never committed."""

from __future__ import annotations

import asyncio
import io
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import grpc
import httpx
import pytest

from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.identity_calls import refused
from tests.test_cli import dinhdanh
from tests.vault_helpers import CHUNK, JSON, PDF, PNG, bearer, citizen_token, download, rows, s3_objects, stream, upload


async def visible(vault: pb_grpc.VaultStub, token: str) -> set[str]:
    reply = await vault.ListDocuments(pb.ListDocumentsRequest(page_size=100), metadata=bearer(token), timeout=10)
    return {d.id for d in reply.documents}


async def pending(info: StackInfo) -> set[str]:
    return {r["object_name"] for r in await rows(info, "SELECT object_name FROM vault.pending_objects")}


class Paused:
    """An upload stream that sends its metadata and ``before`` bytes, then waits for ``go`` (or is cancelled)."""

    def __init__(self, content: bytes, before: int) -> None:
        self.content, self.before = content, before
        self.sent = asyncio.Event()
        self.go = asyncio.Event()

    async def requests(self) -> AsyncIterator[pb.UploadRequest]:
        meta = pb.UploadMetadata(document_type=pb.DOCUMENT_TYPE_OTHER, title="Dở dang", filename="do-dang.pdf")
        yield pb.UploadRequest(metadata=meta)
        for start in range(0, self.before, CHUNK):
            yield pb.UploadRequest(chunk=self.content[start : min(start + CHUNK, self.before)])
        self.sent.set()
        await self.go.wait()
        for start in range(self.before, len(self.content), CHUNK):
            yield pb.UploadRequest(chunk=self.content[start : start + CHUNK])
        yield pb.UploadRequest(end=pb.UploadEnd(size_bytes=len(self.content)))


async def started(info: StackInfo, before: set[str]) -> None:
    """Wait until the vault has recorded a new pending object: the upload is under way."""
    for _ in range(200):
        if await pending(info) - before:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the upload never started")


async def settled(info: StackInfo, before: set[str]) -> None:
    """Wait (briefly) until the vault has cleaned up after a cancelled call: no new pending object."""
    for _ in range(100):
        if await pending(info) <= before:
            return
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("size", [3 * CHUNK, 7 * CHUNK], ids=["single-part", "multipart"])
async def test_an_interrupted_upload_leaves_nothing(
    vault: pb_grpc.VaultStub, token: str, stack: Stack, info: StackInfo, size: int
) -> None:
    objects, names, documents = s3_objects(stack), await pending(info), await visible(vault, token)
    stream = Paused(b"%PDF-1.7\n" + os.urandom(size), before=size // 2)
    call = vault.Upload(stream.requests(), metadata=bearer(token), timeout=60)
    await asyncio.wait_for(stream.sent.wait(), 30)
    await started(info, names)
    await asyncio.sleep(0.2)  # the vault has read what was sent
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await settled(info, names)
    left = await pending(info)
    assert left <= names, f"the aborted upload's pending name is cleared at once: {left - names}"
    await asyncio.sleep(0.5)  # an object S3 completed late would show now
    now = s3_objects(stack)
    assert now == objects, f"no object, not even a partial one: {set(now) ^ set(objects)}, pending {left}"
    assert await visible(vault, token) == documents


@pytest.mark.parametrize(
    ("end", "words"),
    [
        (None, "without its end message"),
        (pb.UploadEnd(size_bytes=len(PDF) - 1), f"counts {len(PDF) - 1} bytes, {len(PDF)} arrived"),
        (pb.UploadEnd(size_bytes=len(PDF), sha256=bytes(32)), "does not match the end message's sha256"),
        (pb.UploadEnd(size_bytes=len(PDF), sha256=b"short"), "must be 32 bytes"),
    ],
    ids=["no-end", "wrong-size", "wrong-sha256", "malformed-sha256"],
)
async def test_an_upload_must_end_with_a_matching_end_message(
    vault: pb_grpc.VaultStub, token: str, stack: Stack, end: pb.UploadEnd | None, words: str
) -> None:
    objects = s3_objects(stack)
    meta = pb.UploadMetadata(document_type=pb.DOCUMENT_TYPE_OTHER, title="Thiếu", filename="thieu.pdf")

    async def requests() -> AsyncIterator[pb.UploadRequest]:
        yield pb.UploadRequest(metadata=meta)
        yield pb.UploadRequest(chunk=PDF)
        if end is not None:
            yield pb.UploadRequest(end=end)

    error = await refused(
        vault.Upload(requests(), metadata=bearer(token), timeout=10), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert words in (error.details() or "")
    assert s3_objects(stack) == objects


async def test_content_after_the_end_message_is_refused(vault: pb_grpc.VaultStub, token: str) -> None:
    meta = pb.UploadMetadata(document_type=pb.DOCUMENT_TYPE_OTHER, title="Thừa", filename="thua.pdf")

    async def requests() -> AsyncIterator[pb.UploadRequest]:
        yield pb.UploadRequest(metadata=meta)
        yield pb.UploadRequest(chunk=PDF)
        yield pb.UploadRequest(end=pb.UploadEnd(size_bytes=len(PDF)))
        yield pb.UploadRequest(chunk=PDF)

    error = await refused(
        vault.Upload(requests(), metadata=bearer(token), timeout=10), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "after the end message" in (error.details() or "")


async def test_an_interrupted_download_harms_nothing(vault: pb_grpc.VaultStub, token: str) -> None:
    content = b"%PDF-1.7\n" + os.urandom(5 * CHUNK)
    document = await upload(vault, token, [content[i : i + CHUNK] for i in range(0, len(content), CHUNK)])
    call = vault.Download(pb.DownloadRequest(id=document.id), metadata=bearer(token), timeout=60)
    first = await call.read()
    assert first.WhichOneof("item") == "metadata"
    await call.read()
    call.cancel()
    _, body = await download(vault, token, document.id)
    assert body == content


async def test_concurrent_uploads_of_a_new_citizen_all_land(
    vault: pb_grpc.VaultStub, http: httpx.AsyncClient, info: StackInfo, fresh_citizens: Iterator[Citizen]
) -> None:
    token = await citizen_token(http, info, next(fresh_citizens))  # no KEK yet: the uploads race to create it
    contents = [PDF + os.urandom(64 * 1024 * (n % 3)) for n in range(2)] + [PNG, JSON]  # as many as may be open
    uploaded = await asyncio.gather(*(upload(vault, token, [c], filename=f"f{n}.bin") for n, c in enumerate(contents)))
    assert len({d.id for d in uploaded}) == len(contents)
    assert await visible(vault, token) == {d.id for d in uploaded}
    keys = await rows(info, "SELECT DISTINCT kek_version, owner_ref FROM vault.documents WHERE id = ANY($1::uuid[])",
                      [d.id for d in uploaded])  # fmt: skip
    assert len(keys) == 1, "one KEK for the citizen, whichever upload created it"
    bodies = await asyncio.gather(*(download(vault, token, d.id) for d in uploaded))
    assert [body for _, body in bodies] == contents


async def test_concurrent_versions_are_numbered_once(vault: pb_grpc.VaultStub, token: str, stack: Stack) -> None:
    first = await upload(vault, token, [JSON])
    before = s3_objects(stack)

    async def new_version(n: int) -> pb.Document | grpc.aio.AioRpcError:
        meta = pb.UploadMetadata(document_type=pb.DOCUMENT_TYPE_OTHER, title="Bản mới", filename=f"v{n}.json",
                                 replaces_document_id=first.id)  # fmt: skip
        try:
            return await vault.Upload(stream(pb.UploadRequest, meta, [JSON]), metadata=bearer(token), timeout=60)
        except grpc.aio.AioRpcError as error:
            return error

    results = await asyncio.gather(*(new_version(n) for n in range(4)))  # as many as a citizen may hold open
    landed = [r for r in results if isinstance(r, pb.Document)]
    lost = [r for r in results if not isinstance(r, pb.Document)]
    assert landed, "at least one concurrent version lands"
    assert all(e.code() == grpc.StatusCode.ABORTED for e in lost), [e.details() for e in lost]
    versions = [v.version for v in landed]
    assert len(set(versions)) == len(versions)
    listed = await vault.ListVersions(pb.ListVersionsRequest(id=first.id), metadata=bearer(token), timeout=10)
    assert sorted(v.version for v in listed.versions) == [1, *sorted(versions)]
    assert len(s3_objects(stack)) == len(before) + len(landed), "a refused version leaves no object"


async def test_purge_removes_objects_and_rows_after_retention(
    vault: pb_grpc.VaultStub, token: str, stack: Stack, info: StackInfo
) -> None:
    kept = await upload(vault, token, [PDF], filename="giu.pdf")
    gone = await upload(vault, token, [PNG], filename="xoa.png")
    await vault.DeleteDocument(pb.DeleteDocumentRequest(id=gone.id), metadata=bearer(token), timeout=10)
    (row,) = await rows(info, "SELECT object_name, purge_after - deleted_at AS kept FROM vault.documents "
                              "WHERE logical_id = $1", uuid.UUID(gone.id))  # fmt: skip
    assert row["kept"].days == 30, "the default retention period"
    assert row["object_name"] in s3_objects(stack), "kept during the retention period"
    code, done = dinhdanh(stack, "vault", "upkeep")
    assert code == 0, done
    assert row["object_name"] in s3_objects(stack)
    await rows(info, "UPDATE vault.documents SET purge_after = now() - interval '1 second' WHERE logical_id = $1",
               uuid.UUID(gone.id))  # fmt: skip  # the retention period is over
    code, done = dinhdanh(stack, "vault", "upkeep")
    assert code == 0, done
    assert done["purged"] >= 1
    assert row["object_name"] not in s3_objects(stack)
    assert await rows(info, "SELECT 1 FROM vault.documents WHERE logical_id = $1", uuid.UUID(gone.id)) == []
    assert (await download(vault, token, kept.id))[1] == PDF


async def test_sweep_removes_objects_of_uploads_that_never_committed(stack: Stack, info: StackInfo) -> None:
    assert stack.s3 is not None
    client = stack.s3.client()
    crashed, recent = str(uuid.uuid4()), str(uuid.uuid4())
    for name in (crashed, recent):  # as if the vault died between S3 and PostgreSQL
        client.put_object("vault", name, io.BytesIO(b"ciphertext"), 10)
    await rows(info, "INSERT INTO vault.pending_objects (object_name, started_at) VALUES ($1, now() - interval "
                     "'2 hours'), ($2, now())", crashed, recent)  # fmt: skip
    code, done = dinhdanh(stack, "vault", "upkeep")
    assert code == 0, done
    assert done["swept"] >= 1
    objects = s3_objects(stack)
    assert crashed not in objects
    assert recent in objects, "an upload within the grace period is left alone"
    assert crashed not in await pending(info)
    await rows(info, "UPDATE vault.pending_objects SET started_at = now() - interval '2 hours' "
                     "WHERE object_name = $1", recent)  # fmt: skip
    code, done = dinhdanh(stack, "vault", "upkeep")
    assert recent not in s3_objects(stack)


async def test_the_sweep_keeps_an_object_a_document_references(
    vault: pb_grpc.VaultStub, token: str, stack: Stack, info: StackInfo
) -> None:
    """Defence in depth: a pending name whose row committed anyway (it cannot happen through the vault's own
    commit, which clears the name in the same statement) is forgotten, its object kept."""
    document = await upload(vault, token, [PDF])
    (row,) = await rows(info, "SELECT object_name FROM vault.documents WHERE id = $1", uuid.UUID(document.id))
    await rows(info, "INSERT INTO vault.pending_objects (object_name, started_at) VALUES ($1, now() - interval "
                     "'2 hours')", row["object_name"])  # fmt: skip
    code, done = dinhdanh(stack, "vault", "upkeep")
    assert code == 0, done
    assert row["object_name"] in s3_objects(stack)
    assert row["object_name"] not in await pending(info)
    assert (await download(vault, token, document.id))[1] == PDF


async def test_an_upload_that_outlives_the_grace_period_is_refused(
    vault: pb_grpc.VaultStub, token: str, stack: Stack, info: StackInfo
) -> None:
    objects, names, documents = s3_objects(stack), await pending(info), await visible(vault, token)
    stream = Paused(b"%PDF-1.7\n" + os.urandom(2 * CHUNK), before=CHUNK)
    call = vault.Upload(stream.requests(), metadata=bearer(token), timeout=60)
    await asyncio.wait_for(stream.sent.wait(), 30)
    await started(info, names)
    await asyncio.sleep(1.1)
    ours = await pending(info) - names
    code, done = dinhdanh(stack, "vault", "upkeep", "--grace", "1")
    assert code == 0, done
    assert done["swept"] >= 1, done
    assert not ours & await pending(info), "our upload's pending name was swept"
    stream.go.set()
    error = await refused(call, grpc.StatusCode.ABORTED)
    assert "took too long" in (error.details() or "")
    assert s3_objects(stack) == objects
    assert await visible(vault, token) == documents
    assert await pending(info) <= names
