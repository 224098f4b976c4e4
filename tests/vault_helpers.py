"""Helpers of the vault tests: citizen and agency access tokens for the vault, and streaming calls."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import asyncpg
import httpx

from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.oidc_helpers import person, portal_flow, signed_in

VAULT = "urn:dinhdanh:service:vault"
CHUNK = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
JSON = '{"ho_ten": "Nguyễn Văn An", "so_so": "SK-2026-0042", "nhom_mau": "O+"}'.encode()


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def citizen_token(http: httpx.AsyncClient, info: StackInfo, citizen: Citizen) -> str:
    """A citizen's access token for the vault (portal sign-in, scope ``openid``, resource the vault)."""
    who = await person(info, citizen)
    flow = portal_flow(info, scope="openid", resource=VAULT)
    _, params = await signed_in(http, flow, who)
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


async def agency_token(http: httpx.AsyncClient, info: StackInfo, client_id: str, secret: str) -> str:
    reply = await http.post(
        f"{info.oidc_issuer}/token",
        auth=(client_id, secret),
        data={"grant_type": "client_credentials", "scope": "vault.read", "resource": VAULT},
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


def pieces(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def stream(kind: Any, meta: Any, chunks: Iterable[bytes], end: bool = True) -> AsyncIterator[Any]:
    """An upload stream of ``kind`` (``pb.UploadRequest`` or ``pb.DeliverIssuedDocumentRequest``): the metadata,
    the chunks, and (unless ``end`` is False) the end message with size and SHA-256."""
    yield kind(metadata=meta)
    size, digest = 0, hashlib.sha256()
    for chunk in chunks:
        size += len(chunk)
        digest.update(chunk)
        yield kind(chunk=chunk)
    if end:
        yield kind(end=pb.UploadEnd(size_bytes=size, sha256=digest.digest()))


def _requests(document_type: int, title: str, filename: str, chunks: Iterable[bytes]) -> AsyncIterator[Any]:
    meta = pb.UploadMetadata(document_type=document_type, title=title, filename=filename)  # type: ignore[arg-type]
    return stream(pb.UploadRequest, meta, chunks)


async def upload(
    stub: pb_grpc.VaultStub,
    token: str | None,
    chunks: Iterable[bytes],
    document_type: int = pb.DOCUMENT_TYPE_OTHER,
    title: str = "Giấy tờ",
    filename: str = "giay-to.bin",
) -> pb.Document:
    metadata = bearer(token) if token else None
    return await stub.Upload(_requests(document_type, title, filename, chunks), metadata=metadata, timeout=60)


async def download(stub: pb_grpc.VaultStub, token: str, document_id: str) -> tuple[pb.Document, bytes]:
    """The metadata and the whole content (small documents)."""
    meta, _digest, parts = await download_digest(stub, token, document_id, keep=True)
    return meta, b"".join(parts)


async def download_digest(
    stub: pb_grpc.VaultStub, token: str, document_id: str, keep: bool = False
) -> tuple[pb.Document, bytes, list[bytes]]:
    """The metadata, the SHA-256 of the content, and the chunks when ``keep``."""
    meta: pb.Document | None = None
    digest, parts = hashlib.sha256(), []
    async for reply in stub.Download(pb.DownloadRequest(id=document_id), metadata=bearer(token), timeout=60):
        if reply.WhichOneof("item") == "metadata":
            assert meta is None, "the metadata comes once, first"
            meta = reply.metadata
        else:
            assert meta is not None, "the metadata comes first"
            assert 0 < len(reply.chunk) <= CHUNK
            digest.update(reply.chunk)
            if keep:
                parts.append(reply.chunk)
    assert meta is not None
    return meta, digest.digest(), parts


async def rows(info: StackInfo, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(info.postgres_dsn)
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


def s3_objects(stack: Stack) -> dict[str, str]:
    assert stack.s3 is not None
    return {o.object_name: o.etag for o in stack.s3.client().list_objects("vault", recursive=True)}
