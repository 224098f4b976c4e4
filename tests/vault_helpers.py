"""Helpers of the vault tests: citizen and agency access tokens for the vault, and streaming calls."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg
import httpx
from joserfc.jwk import ECKey

from agency.keyed import KeyedAgency
from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.oidc_helpers import person, portal_flow, signed_in
from tests.test_cli import dinhdanh
from vault import signatures
from vault.documents import DocumentType, Issued

VAULT = "urn:dinhdanh:service:vault"
CHUNK = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
ISSUED_TITLE = "Phiếu lý lịch tư pháp số 1"
ISSUED_ON = "2026-11-20"  # the issue date deliver() states (and signs)
JSON = '{"ho_ten": "Nguyễn Văn An", "so_so": "SK-2026-0042", "nhom_mau": "O+"}'.encode()


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def citizen_token(
    http: httpx.AsyncClient, info: StackInfo, citizen: Citizen, scope: str = "openid vault.read vault.write"
) -> str:
    """A citizen's access token for the vault (portal sign-in, ``scope``, resource the vault)."""
    who = await person(info, citizen)
    flow = portal_flow(info, scope=scope, resource=VAULT)
    _, params = await signed_in(http, flow, who)
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


_BOUND: dict[str, KeyedAgency] = {}  # the DPoP-bound agency tokens these helpers got, with the agency holding the key


async def agency_token(
    http: httpx.AsyncClient, info: StackInfo, agency: KeyedAgency, scope: str = "vault.read", resource: str = VAULT
) -> str:
    """A FAPI 2.0 agency's token (``private_key_jwt`` + DPoP, agency/keyed.py); present it with :func:`presented`."""
    reply = await agency.token_response(http, info.oidc_issuer, scope, resource)
    assert reply.status_code == 200, reply.text
    token = str(reply.json()["access_token"])
    _BOUND[token] = agency
    return token


def presented(token: str, method: str, service: str = "vault") -> tuple[tuple[str, str], ...]:
    """The metadata of one call of ``method`` (``/package.Service/Method``) with ``token``: ``DPoP`` with a fresh
    proof for an agency's DPoP-bound token got by :func:`agency_token`, ``Bearer`` for any other."""
    agency = _BOUND.get(token)
    return agency.grpc_metadata(token, service, method) if agency is not None else bearer(token)


def keyed_agency(stack: Stack, name: str, *args: str) -> tuple[KeyedAgency, dict[str, Any]]:
    """``dinhdanh clients add-agency --key-out``: a FAPI 2.0 agency with a fresh ES256 key (private_key_jwt)."""
    key_file = stack.var / f"agency-{uuid.uuid4().hex[:12]}.jwk"
    code, made = dinhdanh(stack, "clients", "add-agency", "--name", name, *args, "--key-out", str(key_file))
    assert code == 0, made
    return KeyedAgency.from_file(made["client_id"], key_file), made


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


@dataclass(frozen=True)
class Issuer:
    """An agency registered with ``vault.issue`` and a signing key (its public JWKS given at registration)."""

    client_id: str
    key: ECKey
    agency: KeyedAgency = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "agency", KeyedAgency(self.client_id, self.key))  # private_key_jwt + DPoP

    def signature(
        self, issuer_document_id: str, document_type: DocumentType, content: bytes, issued_on: str = ISSUED_ON
    ) -> bytes:
        issued = Issued(self.client_id, issuer_document_id, b"")
        day = date.fromisoformat(issued_on) if issued_on else None
        return signatures.sign(self.key, "ES256", issued, document_type, hashlib.sha256(content).digest(), (day, None))

    async def token(self, http: httpx.AsyncClient, info: StackInfo, scope: str = "vault.issue") -> str:
        """Its DPoP-bound token (FAPI 2.0: ``private_key_jwt`` with its key): present it with :func:`presented`."""
        return await agency_token(http, info, self.agency, scope)


def register_issuer(stack: Stack, name: str, jwks_uri: str | None = None) -> Issuer:
    """``dinhdanh clients add-agency --jwks`` with a fresh ES256 key, which signs its documents and its
    ``private_key_jwt`` assertions; with ``jwks_uri`` the key is published there instead (no registered keys)."""
    key = ECKey.generate_key("P-256", parameters={"kid": uuid.uuid4().hex[:16], "alg": "ES256"}, private=True)
    jwks = stack.var / f"jwks-{key.kid}.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    keys = ["--jwks-uri", jwks_uri] if jwks_uri else ["--jwks", str(jwks)]
    code, agency = dinhdanh(stack, "clients", "add-agency", "--name", name, "--purpose", "issue", *keys)
    assert code == 0, agency
    return Issuer(agency["client_id"], key)


async def deliver(
    vault: pb_grpc.VaultStub,
    token: str,
    issuer: Issuer,
    id_number: str,
    issuer_document_id: str,
    content: bytes = PDF,
    signature: bytes | None = None,
) -> pb.Document:
    """``issuer`` delivers a criminal record certificate (``ISSUED_TITLE``), signed unless ``signature`` is given."""
    if signature is None:
        signature = issuer.signature(issuer_document_id, DocumentType.CRIMINAL_RECORD_CERTIFICATE, content)
    meta = pb.DeliverMetadata(
        citizen_id_number=id_number,
        issuer_document_id=issuer_document_id,
        document_type=pb.DOCUMENT_TYPE_CRIMINAL_RECORD_CERTIFICATE,
        title=ISSUED_TITLE,
        filename="ly-lich-tu-phap.pdf",
        issuer_signature=signature,
        issued_on=ISSUED_ON,
    )
    requests = stream(pb.DeliverIssuedDocumentRequest, meta, pieces(content, 10))
    metadata = presented(token, "/dinhdanh.vault.v1.Vault/DeliverIssuedDocument")
    return await vault.DeliverIssuedDocument(requests, metadata=metadata, timeout=60)
