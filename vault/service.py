"""Use cases of the personal document vault. The caller is a citizen, named by their ID number.

Upload: the content arrives in chunks, ended by the client's ``UploadEnd``, and goes straight through the
checks of vault.intake (size, type, SHA-256, end message) and the streaming AEAD (a fresh data key per
document, associated data binding owner reference and document id) to S3 (vault.objects). Only after S3
confirmed the object is the metadata row, with the data key wrapped by the citizen's KEK, committed: a failure
in between leaves no visible document. The object's name is recorded as pending before S3 can complete it and
cleared by the commit, so an object whose upload failed (and could not be deleted at once) or whose process
died is swept later (vault.upkeep). Once the commit is sent, the handler waits for its outcome even if the call
is cancelled meanwhile (a deadline while PostgreSQL stalls); the object is deleted only when the commit was
refused, never when its outcome is unknown (a connection lost after sending it): a row that did commit cleared
the pending name and keeps its object, one that did not leaves the name for the sweeper.

Download: ciphertext is read, decrypted and authenticated segment by segment; the final segment is
released only after the end of the object and the plaintext SHA-256 recorded at upload are verified.

Names: a version's title, filename and issuer name are sealed under its data key (vault.crypto.names) and opened
here whenever a document leaves the vault; after a crypto-shred they are gone with the content (shown empty).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from core import logs
from core.aio import uninterrupted
from core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from vault import signatures
from vault.crypto.envelope import Kek, KeyUnwrapError, new_data_key, unwrap_data_key, wrap_data_key
from vault.crypto.names import Names, open_names, seal_names
from vault.crypto.streaming import DEFAULT_SEGMENT_SIZE, CorruptObject, Decryptor, Encryptor
from vault.documents import (
    ISSUED,
    UPLOADED,
    Corrupt,
    Document,
    DocumentType,
    Issued,
    Upload,
    UploadEnd,
    check_id_number,
)
from vault.intake import Intake
from vault.issuers import IssuerKeys
from vault.keyring import Keyring
from vault.limits import OpenUploads
from vault.objects import ObjectMissing, ObjectStore
from vault.store import Cursor, KeyChanged, StoredObject, UploadExpired, VaultStore
from vault.trail import Trail

DEFAULT_PAGE = 20
MAX_PAGE = 100
SEGMENT_SIZE = DEFAULT_SEGMENT_SIZE  # 1 MiB ciphertext segments (Tink's AES256_GCM_HKDF_1MB)
log = logs.get("vault.service")
OFFLOAD = 256 * 1024
ERASED = "the document was erased (its key was destroyed)"
MISSING = "the document's content is missing from the object store"
T = TypeVar("T")
Content = AsyncIterator[bytes | UploadEnd]  # chunks, then the end message


async def _beside_loop(size: int, work: Callable[[], T]) -> T:
    """Run ``work`` (AES-GCM and SHA-256 over ``size`` bytes: both release the GIL) in a worker thread when it is
    large enough to be worth the hop, so the event loop goes on serving gRPC on the other core meanwhile."""
    return await asyncio.to_thread(work) if size >= OFFLOAD else work()


def associated_data(owner_ref: str, document_id: uuid.UUID) -> bytes:
    """Binds an object's ciphertext to its owner and document: it opens for nothing else."""
    return b"dinhdanh/vault/object/v1\0" + owner_ref.encode() + b"\0" + str(document_id).encode()


def _page_token(document: Document) -> str:
    raw = json.dumps([document.created_at.isoformat(), str(document.row_id or document.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(token: str) -> Cursor | None:
    if not token:
        return None
    try:
        created_at, document_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        when = datetime.fromisoformat(created_at)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return Cursor(when, uuid.UUID(document_id))
    except (ValueError, TypeError):
        raise InvalidArgument("invalid page_token") from None


class VaultService:
    def __init__(
        self,
        store: VaultStore,
        objects: ObjectStore,
        keyring: Keyring,
        issuers: IssuerKeys,
        trail: Trail,
        max_bytes: int,
        open_uploads: int = 4,
    ) -> None:
        self._store = store
        self._open = OpenUploads(open_uploads)
        self._issuers = issuers
        self._trail = trail
        self._objects = objects
        self._keyring = keyring
        self.max_bytes = max_bytes

    async def upload(self, id_number: str, upload: Upload, content: Content) -> Document:
        """A citizen's upload: a new document, or a new version of ``upload.replaces``. Only a few of a citizen's
        uploads may be open at once (vault.limits)."""
        owner = self._keyring.owner_ref(id_number)
        with self._open.hold(owner):
            if upload.replaces is not None:
                replaced = await self._stored(owner, upload.replaces)
                if replaced.document.source == ISSUED:
                    raise FailedPrecondition("an issued document is read-only: it has no citizen versions")
            stored = await self._store_content(owner, upload, None, content)
        assert stored is not None
        await self._trail.record("vault.upload", id_number, stored.id, stored.version)
        return stored

    async def deliver(self, issued: Issued, id_number: str, upload: Upload, content: Content) -> Document:
        """An agency's delivery into a citizen's vault, its signature verified (vault.signatures); the same
        (issuer, issuer document id) again is the same document (its content is not read again)."""
        owner = self._keyring.owner_ref(check_id_number(id_number))
        registered = await self._issuers.issuer(issued.issuer_client_id)
        keys = signatures.public_key_set(registered.jwks if registered else None)
        claims = signatures.check(keys, issued, upload.document_type, (upload.issued_on, upload.expires_on))
        assert registered is not None
        upload = dataclasses.replace(upload, issuer_name=registered.name)
        existing = await self._delivered(owner, issued)
        if existing is not None:
            return existing
        accept = partial(signatures.check_content, claims)
        stored = await self._store_content(owner, upload, issued, content, accept)
        if stored is None:  # a concurrent delivery won
            existing = await self._delivered(owner, issued)
            assert existing is not None
            return existing
        await self._trail.record("vault.deliver", id_number, stored.id, stored.version)
        return stored

    async def _delivered(self, owner: str, issued: Issued) -> Document | None:
        found = await self._store.issued(issued.issuer_client_id, issued.issuer_document_id)
        if found is None:
            return None
        if found[0] != owner:
            raise AlreadyExists("this issuer_document_id was delivered to another citizen")
        return _opened(owner, await self._keyring.kek(owner, create=False), found[1])

    async def _store_content(
        self,
        owner: str,
        upload: Upload,
        issued: Issued | None,
        content: Content,
        accept: Callable[[bytes], None] | None = None,
    ) -> Document | None:
        """Store a version; ``accept(sha256)`` may still refuse the complete content before it is committed."""
        row_id, object_name = uuid.uuid4(), str(uuid.uuid4())
        data_key = new_data_key()
        associated = associated_data(owner, row_id)
        encryptor = Encryptor(data_key, associated, SEGMENT_SIZE)
        names = Names(upload.title.strip(), upload.filename, upload.issuer_name.strip())
        intake = Intake(self.max_bytes)

        async def ciphertext() -> AsyncIterator[bytes]:
            def seal(chunk: bytes) -> list[bytes]:
                intake.feed(chunk)
                return encryptor.update(chunk)

            async for item in content:
                if isinstance(item, UploadEnd):
                    intake.end(item)
                    continue
                for piece in await _beside_loop(len(item), partial(seal, item)):
                    yield piece
            intake.finish()
            yield encryptor.finish()

        try:  # from the pending name on, the upkeep sweeps the object unless its row commits
            kek, _ = await asyncio.gather(self._keyring.kek(owner, create=True), self._store.begin_object(object_name))
            assert kek is not None
            await self._objects.put(object_name, ciphertext())
            if accept is not None:
                accept(intake.sha256)
            document = Document(
                id=upload.replaces or row_id,
                document_type=upload.document_type,
                title=names.title,
                issuer_name=names.issuer_name,
                issued_on=upload.issued_on,
                expires_on=upload.expires_on,
                filename=names.filename,
                content_type=intake.content_type,
                size_bytes=intake.size,
                sha256=intake.sha256,
                created_at=datetime.now(UTC),
                row_id=row_id,
                source=ISSUED if issued else UPLOADED,
                issuer_client_id=issued.issuer_client_id if issued else "",
                issuer_document_id=issued.issuer_document_id if issued else "",
                issuer_signature=issued.signature if issued else b"",
                sealed_names=seal_names(data_key, names, associated),
            )
            stored = StoredObject(document, object_name, wrap_data_key(kek, data_key, str(row_id)), SEGMENT_SIZE)
        except BaseException:
            await uninterrupted(self._discard(object_name))
            raise
        added = await self._commit(owner, stored)
        return None if added is None else _named(added, names)

    async def _commit(self, owner: str, stored: StoredObject) -> Document | None:
        """Commit the version's row, waiting for the outcome even if cancelled meanwhile; delete the object
        only if the commit was refused (known not to have happened)."""
        try:
            added = await uninterrupted(self._store.add_document(owner, stored))
        except (KeyChanged, UploadExpired):
            await uninterrupted(self._discard(stored.object_name))
            raise
        except asyncio.CancelledError:  # the commit's outcome is known and kept: the caller is gone
            raise
        except BaseException as error:  # sent, outcome unknown: the row, if it committed, keeps the object
            log.warning("vault.commit_unknown", error_type=type(error).__name__)
            raise
        if added is None:
            await uninterrupted(self._discard(stored.object_name))
        return added

    async def _discard(self, object_name: str) -> None:
        """Delete an object that will have no row, now if possible; else the upkeep sweeps it later."""
        try:
            if await self._objects.delete(object_name):
                await self._store.forget_object(object_name)
        except Exception as error:  # the caller's own error matters more; the sweep remains
            log.warning("vault.discard_failed", error_type=type(error).__name__)

    async def _opened(self, owner: str, documents: Callable[[], Awaitable[list[Document]]]) -> list[Document]:
        """``documents()`` (fetched beside the owner's KEK), their names opened."""
        kek, found = await asyncio.gather(self._keyring.kek(owner, create=False), documents())
        return [_opened(owner, kek, document) for document in found]

    async def document(self, id_number: str, document_id: uuid.UUID) -> Document:
        owner = self._keyring.owner_ref(id_number)

        async def one() -> list[Document]:
            return [(await self._stored(owner, document_id)).document]

        return (await self._opened(owner, one))[0]

    async def documents(
        self, id_number: str, document_type: DocumentType | None, page_size: int, page_token: str
    ) -> tuple[list[Document], str]:
        """One page of the citizen's documents, newest first, and the token of the next page ("" at the end)."""
        if page_size < 0:
            raise InvalidArgument("page_size must not be negative")
        limit = min(page_size or DEFAULT_PAGE, MAX_PAGE)
        owner = self._keyring.owner_ref(id_number)
        after = _cursor(page_token)
        found = await self._opened(owner, partial(self._store.documents, owner, document_type, after, limit + 1))
        page = found[:limit]
        return page, _page_token(page[-1]) if len(found) > limit else ""

    async def versions(self, id_number: str, document_id: uuid.UUID) -> list[Document]:
        owner = self._keyring.owner_ref(id_number)
        found = await self._opened(owner, partial(self._store.versions, owner, document_id))
        if not found:
            raise NotFound("no such document")
        return found

    async def download(
        self, id_number: str, document_id: uuid.UUID, version: int = 0
    ) -> tuple[Document, AsyncIterator[bytes]]:
        """The metadata, and the verified plaintext as it is read (void unless the iterator ends normally).
        The latest version unless ``version`` > 0. A crypto-shredded document is FAILED_PRECONDITION."""
        if version < 0:
            raise InvalidArgument("version must not be negative")
        owner = self._keyring.owner_ref(id_number)
        stored = await self._stored(owner, document_id, version)
        if stored.document.shredded:
            raise FailedPrecondition(ERASED)
        document = stored.document
        record = self._trail.record("vault.download", id_number, document.id, document.version)
        return await self.serve(owner, stored, record)

    async def serve(
        self, owner: str, stored: StoredObject, on_record: Awaitable[None]
    ) -> tuple[Document, AsyncIterator[bytes]]:
        """The one way a document's content leaves the vault (the citizen's Download, an agency's DownloadShared):
        its names opened and its verified plaintext as it is read. ``on_record`` (the access put on record) runs
        beside the KEK's read and completes before anything is returned, so before the first byte leaves."""
        document = stored.document
        kek, _ = await asyncio.gather(self._keyring.kek(owner, create=False), on_record)
        if kek is None:
            raise FailedPrecondition(ERASED)
        row_id = stored.document.row_id
        assert row_id is not None
        try:
            data_key = unwrap_data_key(kek, stored.wrapped_key, str(row_id))
        except KeyUnwrapError:
            raise Corrupt("the document's key does not open") from None
        return _opened(owner, kek, document, data_key), self._plaintext(owner, stored, data_key)

    async def _plaintext(self, owner: str, stored: StoredObject, data_key: bytes) -> AsyncIterator[bytes]:
        document = stored.document
        assert document.row_id is not None
        decryptor = Decryptor(data_key, associated_data(owner, document.row_id), stored.segment_size)
        digest, size = hashlib.sha256(), 0

        def open_(piece: bytes) -> list[bytes]:
            plains = decryptor.update(piece)
            for plain in plains:
                digest.update(plain)
            return plains

        try:
            async for piece in self._objects.chunks(stored.object_name, stored.segment_size):
                for plain in await _beside_loop(len(piece), partial(open_, piece)):
                    size += len(plain)
                    yield plain
            last = decryptor.finish()
        except CorruptObject:
            raise Corrupt("the stored document is damaged") from None
        except ObjectMissing:
            log.error("vault.object_missing", document=str(document.id), version=document.version)
            raise Corrupt(MISSING) from None
        digest.update(last)
        if size + len(last) != document.size_bytes or digest.digest() != document.sha256:
            raise Corrupt("the stored document does not match its checksum")
        if last:
            yield last

    async def shared_documents(
        self,
        owner: str,
        document_ids: tuple[uuid.UUID, ...],
        document_types: tuple[DocumentType, ...],
        page_size: int,
        page_token: str,
    ) -> tuple[list[Document], str]:
        """One page of the owner's documents that a grant names (by id or type), newest first, names opened."""
        if page_size < 0:
            raise InvalidArgument("page_size must not be negative")
        limit = min(page_size or DEFAULT_PAGE, MAX_PAGE)
        after = _cursor(page_token)
        fetch = partial(self._store.shared_documents, owner, document_ids, document_types, after, limit + 1)
        found = await self._opened(owner, fetch)
        page = found[:limit]
        return page, _page_token(page[-1]) if len(found) > limit else ""

    async def latest(self, owner: str, document_id: uuid.UUID) -> StoredObject | None:
        """The owner's document (latest version, not deleted, not shredded), None otherwise."""
        stored = await self._store.document(owner, document_id)
        return None if stored is None or stored.document.shredded else stored

    def owner_ref(self, id_number: str) -> str:
        return self._keyring.owner_ref(id_number)

    async def delete(self, id_number: str, document_id: uuid.UUID) -> None:
        deleted = await self._store.soft_delete(self._keyring.owner_ref(id_number), document_id)
        if deleted is None:
            raise FailedPrecondition("an issued document is read-only: only its issuer can withdraw it")
        if not deleted:
            raise NotFound("no such document")
        await self._trail.record("vault.delete", id_number, document_id)

    async def _stored(self, owner: str, document_id: uuid.UUID, version: int = 0) -> StoredObject:
        stored = await self._store.document(owner, document_id, version)
        if stored is None:
            raise NotFound("no such document")
        return stored


def _named(document: Document, names: Names) -> Document:
    return dataclasses.replace(
        document, title=names.title, filename=names.filename, issuer_name=names.issuer_name, sealed_names=b"",
        wrapped_key=None,
    )  # fmt: skip


def _opened(owner: str, kek: Kek | None, document: Document, data_key: bytes | None = None) -> Document:
    """``document`` with its sealed names opened (through ``data_key``, or its data key under ``kek``); empty
    when they cannot be: shredded, or damaged. Names of rows written before they were sealed stand as stored."""
    if not document.sealed_names:
        return _named(document, Names(document.title, document.filename, document.issuer_name))
    names = Names("", "")
    if not document.shredded and document.row_id is not None and (data_key or (kek and document.wrapped_key)):
        try:
            if data_key is None:
                assert kek is not None
                assert document.wrapped_key is not None
                data_key = unwrap_data_key(kek, document.wrapped_key, str(document.row_id))
            names = open_names(data_key, document.sealed_names, associated_data(owner, document.row_id))
        except KeyUnwrapError:
            log.warning("vault.names_do_not_open", document=str(document.id), version=document.version)
    return _named(document, names)
