"""gRPC translation for the personal document vault (protos/vault/v1/vault.proto).

Every RPC but ``DeliverIssuedDocument`` is for a citizen's access token with the audience
``urn:dinhdanh:service:vault`` and the scope the citizen consented to for it: ``vault.read`` to list, get,
download and list versions, ``vault.write`` to upload and delete (the audience alone opens nothing). The
citizen is the token's subject, turned back into their ID number here and into a pseudonymous owner reference
by the domain.

``ListSharedDocuments`` and ``DownloadShared`` are for an agency over mutual TLS with its own certificate, carrying
a consent token bound to it (RFC 8705 §3; ``Allow.bound_agency``) with one ``consent`` authorization detail (RFC
9396): the use cases are vault.sharing's (every fetch decided by consent.fetch_policy in the consent store).

``DeliverIssuedDocument`` is for an agency's ``client_credentials`` token (same audience) with the scope
``vault.issue``; the issuer is the token's client id, the citizen is named by ID number in the metadata.
Issued documents are read-only to the citizen: deleting or versioning one is FAILED_PRECONDITION (the
document exists and is the caller's, the operation is what is refused).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from audit.events import PostgresAuditLog, Pseudonymizer
from consent.pg_store import PostgresConsentStore
from core.callers import Allow, current_principal
from core.errors import InvalidArgument, Unauthenticated
from core.keys import purposes
from core.settings import Settings, key_provider
from db.pool import open_pool
from identity.oidc.subjects import Subjects
from protos.vault.v1 import vault_pb2 as pb
from protos.vault.v1 import vault_pb2_grpc as pb_grpc
from services.server import ServiceSpec, token_verifier
from vault.documents import (
    ISSUED,
    Document,
    DocumentType,
    Issued,
    Upload,
    UploadEnd,
    parse_date,
    parse_id,
)
from vault.issuers import IssuerKeys
from vault.keyring import Keyring
from vault.limits import paced
from vault.objects import ObjectStore, reachable, s3_client
from vault.service import VaultService
from vault.sharing import SharedDocuments, grant_of
from vault.store import VaultStore
from vault.trail import Trail
from vault.upkeep import Janitor
from vault.upkeep_store import UpkeepStore

NAME = pb.DESCRIPTOR.services_by_name["Vault"].full_name
READERS = Allow.of(citizens=True, scopes=("vault.read",))
WRITERS = Allow.of(citizens=True, scopes=("vault.write",))
ISSUERS = Allow.of(clients=True, scopes=("vault.issue",))
POLICY = {f"/{NAME}/{method}": READERS for method in ("ListDocuments", "GetDocument", "Download", "ListVersions")}
POLICY |= {f"/{NAME}/{method}": WRITERS for method in ("Upload", "DeleteDocument")}
POLICY[f"/{NAME}/DeliverIssuedDocument"] = ISSUERS
SHARED = Allow.of(clients=True, bound_agency=True)  # the consent detail is checked by vault.sharing.grant_of
POLICY |= {f"/{NAME}/{method}": SHARED for method in ("ListSharedDocuments", "DownloadShared")}
MAX_MESSAGE = 2 * 1024 * 1024  # chunks of up to 1 MiB, with room for framing

TYPES: dict[int, DocumentType] = {
    pb.DOCUMENT_TYPE_CITIZEN_ID_CARD: DocumentType.CITIZEN_ID_CARD,
    pb.DOCUMENT_TYPE_BIRTH_CERTIFICATE: DocumentType.BIRTH_CERTIFICATE,
    pb.DOCUMENT_TYPE_RESIDENCE_CONFIRMATION: DocumentType.RESIDENCE_CONFIRMATION,
    pb.DOCUMENT_TYPE_DIPLOMA: DocumentType.DIPLOMA,
    pb.DOCUMENT_TYPE_CRIMINAL_RECORD_CERTIFICATE: DocumentType.CRIMINAL_RECORD_CERTIFICATE,
    pb.DOCUMENT_TYPE_HEALTH_BOOK: DocumentType.HEALTH_BOOK,
    pb.DOCUMENT_TYPE_OTHER: DocumentType.OTHER,
}
TYPE_PB = {domain: number for number, domain in TYPES.items()}


def document_pb(d: Document) -> pb.Document:
    created = Timestamp()
    created.FromDatetime(d.created_at)
    return pb.Document(
        id=str(d.id),
        document_type=TYPE_PB[d.document_type],  # type: ignore[arg-type]
        title=d.title,
        filename=d.filename,
        content_type=d.content_type,
        size_bytes=d.size_bytes,
        sha256=d.sha256,
        created_at=created,
        source=pb.DOCUMENT_SOURCE_ISSUED if d.source == ISSUED else pb.DOCUMENT_SOURCE_UPLOADED,
        issuer_client_id=d.issuer_client_id,
        issuer_document_id=d.issuer_document_id,
        issuer_signature=d.issuer_signature,
        version=d.version,
        issuer_name=d.issuer_name,
        issued_on=d.issued_on.isoformat() if d.issued_on else "",
        expires_on=d.expires_on.isoformat() if d.expires_on else "",
    )


async def _content(requests: AsyncIterator[pb.UploadRequest] | AsyncIterator[pb.DeliverIssuedDocumentRequest]
                   ) -> AsyncIterator[bytes | UploadEnd]:  # fmt: skip
    """The chunks and the end message after the first (metadata) message."""
    async for message in requests:
        item = message.WhichOneof("item")
        if item == "chunk":
            chunk = message.chunk  # each access copies the bytes out of the message
            if chunk:
                yield chunk
        elif item == "end":
            yield UploadEnd(message.end.size_bytes, message.end.sha256)
        else:
            raise InvalidArgument("only the first message carries metadata")


def _dates(meta: pb.UploadMetadata | pb.DeliverMetadata) -> tuple[date | None, date | None]:
    return parse_date(meta.issued_on, "issued_on"), parse_date(meta.expires_on, "expires_on")


async def _opening(requests: AsyncIterator[Any]) -> tuple[Any, Any]:
    """The metadata every upload stream must open with, and its document type."""
    first = await anext(aiter(requests), None)
    if first is None or first.WhichOneof("item") != "metadata":
        raise InvalidArgument("the first message must carry the metadata")
    kind = TYPES.get(first.metadata.document_type)
    if kind is None:
        raise InvalidArgument("document_type is required")
    return first.metadata, kind


class VaultServicer(pb_grpc.VaultServicer):
    def __init__(
        self, service: VaultService, subjects: Subjects, shared: SharedDocuments, idle_timeout: float = 30
    ) -> None:
        self._service = service
        self._shared = shared
        self._subjects = subjects
        self._idle = idle_timeout  # seconds an upload stream may send nothing (vault.limits.paced)

    def _citizen(self) -> str:
        principal = current_principal()
        id_number = self._subjects.id_number(principal.subject, principal.sector)  # pairwise: with its sector
        if id_number is None:
            raise Unauthenticated("the token's subject is not a citizen of this platform")
        return id_number

    async def Upload(
        self, request_iterator: AsyncIterator[pb.UploadRequest], context: grpc.aio.ServicerContext
    ) -> pb.Document:
        citizen = self._citizen()
        request_iterator = paced(request_iterator, self._idle)
        meta, kind = await _opening(request_iterator)
        replaces = parse_id(meta.replaces_document_id) if meta.replaces_document_id else None
        upload = Upload(kind, meta.title, meta.filename, replaces, meta.issuer_name, *_dates(meta))
        content = _content(request_iterator)
        return document_pb(await self._service.upload(citizen, upload, content))

    async def DeliverIssuedDocument(
        self, request_iterator: AsyncIterator[pb.DeliverIssuedDocumentRequest], context: grpc.aio.ServicerContext
    ) -> pb.Document:
        principal = current_principal()
        request_iterator = paced(request_iterator, self._idle)
        meta, kind = await _opening(request_iterator)
        upload = Upload(kind, meta.title, meta.filename, None, "", *_dates(meta))
        issued = Issued(principal.client_id, meta.issuer_document_id, meta.issuer_signature)
        content = _content(request_iterator)
        return document_pb(await self._service.deliver(issued, meta.citizen_id_number, upload, content))

    async def ListVersions(
        self, request: pb.ListVersionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListVersionsResponse:
        found = await self._service.versions(self._citizen(), parse_id(request.id))
        return pb.ListVersionsResponse(versions=[document_pb(d) for d in found])

    async def ListDocuments(
        self, request: pb.ListDocumentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDocumentsResponse:
        kind = TYPES.get(request.document_type) if request.document_type else None
        if request.document_type and kind is None:
            raise InvalidArgument("unknown document_type")
        found, token = await self._service.documents(self._citizen(), kind, request.page_size, request.page_token)
        return pb.ListDocumentsResponse(documents=[document_pb(d) for d in found], next_page_token=token)

    async def GetDocument(self, request: pb.GetDocumentRequest, context: grpc.aio.ServicerContext) -> pb.Document:
        return document_pb(await self._service.document(self._citizen(), parse_id(request.id)))

    async def Download(
        self, request: pb.DownloadRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.DownloadResponse]:
        document, content = await self._service.download(self._citizen(), parse_id(request.id), request.version)
        yield pb.DownloadResponse(metadata=document_pb(document))
        async for chunk in content:  # DATA_LOSS (vault.documents.Corrupt) if it fails verification
            yield pb.DownloadResponse(chunk=chunk)

    async def ListSharedDocuments(
        self, request: pb.ListSharedDocumentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDocumentsResponse:
        grant = grant_of(current_principal())
        found, token = await self._shared.list(grant, request.page_size, request.page_token)
        return pb.ListDocumentsResponse(documents=[document_pb(d) for d in found], next_page_token=token)

    async def DownloadShared(
        self, request: pb.DownloadSharedRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.DownloadResponse]:
        grant = grant_of(current_principal())
        document, content = await self._shared.download(grant, parse_id(request.id))
        yield pb.DownloadResponse(metadata=document_pb(document))
        async for chunk in content:  # a use is spent once charged, whatever happens to the stream (vault.sharing)
            yield pb.DownloadResponse(chunk=chunk)

    async def DeleteDocument(
        self, request: pb.DeleteDocumentRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteDocumentResponse:
        await self._service.delete(self._citizen(), parse_id(request.id))
        return pb.DeleteDocumentResponse()


async def build(settings: Settings) -> ServiceSpec:
    if not settings.s3_endpoint:
        raise SystemExit("vault: DINHDANH_S3_ENDPOINT is not set")
    pool = await open_pool(settings.postgres_dsn, settings.db_pool_size)
    keys = key_provider(settings)
    store = VaultStore(pool, timedelta(days=settings.vault_retention_days))
    s3 = (settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_secure)
    objects = ObjectStore(s3_client(*s3))
    probe = s3_client(*s3, probe=True)
    audit_log, refs = PostgresAuditLog(pool), Pseudonymizer(keys.key(purposes.AUDIT_PSEUDONYM))
    trail = Trail(audit_log, refs)
    keyring = Keyring(keys, store)
    service = VaultService(store, objects, keyring, IssuerKeys(pool), trail, settings.vault_max_bytes,
                           settings.vault_max_open_uploads)  # fmt: skip
    subjects = Subjects(keys.key(purposes.OIDC_SUBJECT))
    shared = SharedDocuments(PostgresConsentStore(pool), service, subjects.id_number, refs, audit_log)
    servicer = VaultServicer(service, subjects, shared, settings.vault_upload_idle_timeout)
    janitor = Janitor(UpkeepStore(pool), objects.remove, timedelta(seconds=settings.vault_upload_grace))
    rounds = asyncio.create_task(janitor.run_forever(settings.vault_upkeep_interval)) if (
        settings.vault_upkeep_interval) else None  # fmt: skip

    async def close_objects() -> None:
        if rounds is not None:
            rounds.cancel()
            await asyncio.gather(rounds, return_exceptions=True)
        objects.close()

    return ServiceSpec(
        name="vault",
        service_names=(NAME,),
        register=lambda server: pb_grpc.add_VaultServicer_to_server(servicer, server),
        policy=POLICY,
        on_stop=[close_objects, pool.close],
        max_message=MAX_MESSAGE,
        verifier=token_verifier(settings, "vault", pool),
        probes={"s3": lambda: reachable(probe)},
    )
