"""PostgreSQL storage of the vault: wrapped KEKs (``vault.citizen_keys``) and metadata (``vault.documents``).

Rows carry the pseudonymous ``owner_ref`` (vault.keyring), never an ID number. Every read and write of a
document is scoped by its owner, so another citizen's id behaves exactly like an unknown one. Titles, filenames
and issuer names are stored sealed (``sealed_names``, vault.crypto.names); documents read here carry the blob and
their wrapped data key, for the use cases to open. A shredded KEK's row stays, emptied, with its version: the
citizen's next KEK takes the next one, so no KEK version is ever used twice.

Deadlines (core.deadline): the request path's one-statement reads and the KEK's creation go through
``db.bounded.BoundedPool`` and end at the caller's deadline (cancelled in PostgreSQL). Not bounded, on purpose:
the document's commit (``add_document``: once sent, its outcome is waited for, vault.service), the cleanup after a
failed upload (``forget_object``), the pending name (``begin_object``) and every transaction on an acquired
connection (``soft_delete``, ``shred``, ``rotate``): they keep the pool's ``command_timeout``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from core.errors import Aborted
from db.bounded import BoundedPool
from vault.crypto.envelope import WrappedDataKey, WrappedKek
from vault.documents import Document, DocumentType

RETENTION = timedelta(days=30)  # a soft-deleted or shredded document is purged (object and row) after this

_COLUMNS = (
    "id, logical_id, version, document_type, title, filename, content_type, size_bytes, sha256, created_at, "
    "source, issuer_client_id, issuer_document_id, issuer_signature, shredded_at, issuer_name, issued_on, expires_on, "
    "sealed_names, kek_version, key_nonce, wrapped_key"
)
_STORED = f"{_COLUMNS}, object_name, segment_size"
_LATEST = """NOT EXISTS (SELECT 1 FROM vault.documents newer WHERE newer.logical_id = d.logical_id
                 AND newer.version > d.version AND newer.deleted_at IS NULL)"""


# One statement, one round trip, atomic: the KEK must still be the one that wrapped the data key (row locked
# FOR SHARE against rotation and shredding), the object must still be pending (locked against the sweeper,
# which deletes the row when it takes the object); then the version is inserted and only if it was, the
# pending name cleared. key_ok / pending_ok say which precondition failed; no id means an issued duplicate.
_ADD_DOCUMENT = f"""
WITH key AS (
    SELECT 1 FROM vault.citizen_keys WHERE owner_ref = $3 AND kek_version = $9 AND shredded_at IS NULL FOR SHARE
), pending AS (
    SELECT 1 FROM vault.pending_objects WHERE object_name = $4 FOR UPDATE
), added AS (
    INSERT INTO vault.documents AS d (id, logical_id, version, owner_ref, object_name, document_type, title,
        filename, content_type, size_bytes, sha256, kek_version, key_nonce, wrapped_key, segment_size, source,
        issuer_client_id, issuer_document_id, issuer_signature, issuer_name, issued_on, expires_on, sealed_names)
    SELECT $1, $2, CASE WHEN $1::uuid = $2::uuid THEN 1 ELSE (SELECT coalesce(max(version), 0) + 1
            FROM vault.documents WHERE logical_id = $2) END,
        $3, $4, $5, NULL, NULL, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, '', $17, $18, $19
    WHERE EXISTS (SELECT 1 FROM key) AND EXISTS (SELECT 1 FROM pending)
    ON CONFLICT (issuer_client_id, issuer_document_id) WHERE source = 'issued' DO NOTHING
    RETURNING {_COLUMNS}
), cleared AS (
    DELETE FROM vault.pending_objects WHERE object_name = $4 AND EXISTS (SELECT 1 FROM added)
)
SELECT EXISTS (SELECT 1 FROM key) AS key_ok, EXISTS (SELECT 1 FROM pending) AS pending_ok, added.*
FROM (SELECT 1) AS one LEFT JOIN added ON true"""


class KeyChanged(Aborted):
    """The citizen's KEK changed (rotation, shredding) while a document was being stored: retry."""


class UploadExpired(Aborted):
    """The upload outlived the sweeper's grace period and its object was swept: retry (``ABORTED``)."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """Where a document's ciphertext is and how to open it."""

    document: Document
    object_name: str
    wrapped_key: WrappedDataKey
    segment_size: int


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after the last document of a page (newest first)."""

    created_at: datetime
    id: uuid.UUID


def _document(row: asyncpg.Record) -> Document:
    return Document(
        id=row["logical_id"],
        document_type=DocumentType(row["document_type"]),
        title=row["title"] or "",  # sealed, or erased
        filename=row["filename"] or "",
        content_type=row["content_type"],
        size_bytes=row["size_bytes"],
        sha256=bytes(row["sha256"]),
        created_at=row["created_at"],
        version=row["version"],
        row_id=row["id"],
        source=row["source"],
        issuer_client_id=row["issuer_client_id"] or "",
        issuer_document_id=row["issuer_document_id"] or "",
        issuer_signature=bytes(row["issuer_signature"] or b""),
        issuer_name=row["issuer_name"],
        issued_on=row["issued_on"],
        expires_on=row["expires_on"],
        shredded=row["shredded_at"] is not None,
        sealed_names=bytes(row["sealed_names"] or b""),
        wrapped_key=WrappedDataKey(row["kek_version"], bytes(row["key_nonce"]), bytes(row["wrapped_key"])),
    )


def _stored(row: asyncpg.Record) -> StoredObject:
    document = _document(row)
    assert document.wrapped_key is not None
    return StoredObject(document, row["object_name"], document.wrapped_key, row["segment_size"])


class VaultStore:
    def __init__(self, pool: asyncpg.Pool, retention: timedelta = RETENTION) -> None:
        self._pool = pool
        self._bounded = BoundedPool(pool)  # the request path's reads: the caller's deadline
        self._retention = retention

    async def wrapped_kek(self, owner_ref: str) -> WrappedKek | None:
        """The owner's KEK, None if they have none (never had one, or it was shredded)."""
        row = await self._bounded.fetchrow(
            """SELECT kek_version, master_version, nonce, wrapped FROM vault.citizen_keys
               WHERE owner_ref = $1 AND shredded_at IS NULL""",
            owner_ref,
        )
        if row is None:
            return None
        return WrappedKek(row["kek_version"], row["master_version"], bytes(row["nonce"]), bytes(row["wrapped"]))

    async def last_kek_version(self, owner_ref: str) -> int:
        """The version of the owner's KEK, live or shredded; 0 if they never had one."""
        found = await self._bounded.fetchval(
            "SELECT kek_version FROM vault.citizen_keys WHERE owner_ref = $1", owner_ref
        )
        return int(found or 0)

    async def add_kek(self, owner_ref: str, wrapped: WrappedKek) -> WrappedKek:
        """Store ``wrapped`` unless the owner has a live KEK already (a shredded one, of a lower version, is
        replaced); the owner's live KEK afterwards. Two racing uploads agree on one. Bounded by the caller's
        deadline: if it is cut, whether the KEK was stored is unknown, and harmless (no document uses it yet; the
        next upload finds it or stores one)."""
        await self._bounded.execute(
            """INSERT INTO vault.citizen_keys AS k (owner_ref, kek_version, master_version, nonce, wrapped)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (owner_ref) DO UPDATE SET kek_version = EXCLUDED.kek_version,
                   master_version = EXCLUDED.master_version, nonce = EXCLUDED.nonce, wrapped = EXCLUDED.wrapped,
                   shredded_at = NULL, created_at = now()
               WHERE k.shredded_at IS NOT NULL AND k.kek_version < EXCLUDED.kek_version""",
            owner_ref,
            wrapped.kek_version,
            wrapped.master_version,
            wrapped.nonce,
            wrapped.wrapped,
        )
        stored = await self.wrapped_kek(owner_ref)
        if stored is None:
            raise KeyChanged("the citizen's key was shredded during the upload")
        return stored

    async def begin_object(self, object_name: str) -> None:
        """Record an object about to be written (``vault.pending_objects``): until its row commits, the
        sweeper may delete it once the grace period is over.

        Committed without waiting for the WAL flush (one round trip, no fsync of its own): the document's
        commit, which is synchronous, flushes the WAL past this row, so every acknowledged upload had it
        durable. Lost only if PostgreSQL crashes within a fraction of a second of it, and then the upload
        fails and deletes its own object; only a vault dying at that same moment leaves an orphan."""
        name = str(uuid.UUID(object_name))  # inlined below: a UUID and nothing else
        async with self._pool.acquire() as connection:
            try:
                await connection.execute(
                    "BEGIN; SET LOCAL synchronous_commit TO OFF; "
                    f"INSERT INTO vault.pending_objects (object_name) VALUES ('{name}'); COMMIT"
                )
            finally:
                if connection.is_in_transaction():  # a statement failed: leave the connection clean
                    await connection.execute("ROLLBACK")

    async def forget_object(self, object_name: str) -> None:
        """The pending object was deleted by its own upload: nothing left to sweep."""
        await self._pool.execute("DELETE FROM vault.pending_objects WHERE object_name = $1", object_name)

    async def add_document(self, owner_ref: str, stored: StoredObject) -> Document | None:
        """Insert one version (``stored.document``: ``row_id`` its own id, ``id`` its document's) and clear its
        pending object (``begin_object``) in the same transaction.

        A version > 1 gets the next free number of its document. An issued document that exists already
        (same issuer and issuer document id) is not inserted: None (its object stays pending). ``KeyChanged``
        when the owner's KEK is no longer the one that wrapped the data key; ``UploadExpired`` when the sweeper
        took the object."""
        d = stored.document
        try:
            row = await self._pool.fetchrow(
                _ADD_DOCUMENT,
                d.row_id,
                d.id,
                owner_ref,
                stored.object_name,
                d.document_type.value,
                d.content_type,
                d.size_bytes,
                d.sha256,
                stored.wrapped_key.kek_version,
                stored.wrapped_key.nonce,
                stored.wrapped_key.wrapped,
                stored.segment_size,
                d.source,
                d.issuer_client_id or None,
                d.issuer_document_id or None,
                d.issuer_signature if d.source == "issued" else None,
                d.issued_on,
                d.expires_on,
                d.sealed_names,
            )
        except asyncpg.UniqueViolationError:
            raise KeyChanged("another version was stored at the same time") from None
        assert row is not None
        if not row["key_ok"]:
            raise KeyChanged("the citizen's key changed during the upload")
        if not row["pending_ok"]:
            raise UploadExpired("the upload took too long and was discarded: send it again")
        return None if row["id"] is None else _document(row)

    async def issued(self, issuer_client_id: str, issuer_document_id: str) -> tuple[str, Document] | None:
        """The owner and document an issuer delivered under its own document id, if any."""
        row = await self._bounded.fetchrow(
            f"""SELECT owner_ref, {_COLUMNS} FROM vault.documents
                WHERE source = 'issued' AND issuer_client_id = $1 AND issuer_document_id = $2""",
            issuer_client_id,
            issuer_document_id,
        )
        return None if row is None else (row["owner_ref"], _document(row))

    async def document(self, owner_ref: str, document_id: uuid.UUID, version: int = 0) -> StoredObject | None:
        """A visible document's latest version, or version ``version`` when > 0."""
        row = await self._bounded.fetchrow(
            f"""SELECT {_STORED} FROM vault.documents d
                WHERE logical_id = $1 AND owner_ref = $2 AND deleted_at IS NULL
                  AND ($3::integer = 0 OR version = $3::integer)
                ORDER BY version DESC LIMIT 1""",
            document_id,
            owner_ref,
            version,
        )
        return None if row is None else _stored(row)

    async def versions(self, owner_ref: str, document_id: uuid.UUID) -> list[Document]:
        rows = await self._bounded.fetch(
            f"""SELECT {_COLUMNS} FROM vault.documents
                WHERE logical_id = $1 AND owner_ref = $2 AND deleted_at IS NULL ORDER BY version DESC""",
            document_id,
            owner_ref,
        )
        return [_document(row) for row in rows]

    async def documents(
        self, owner_ref: str, document_type: DocumentType | None, after: Cursor | None, limit: int
    ) -> list[Document]:
        """Up to ``limit`` visible documents, newest first, after ``after``."""
        rows = await self._bounded.fetch(
            f"""SELECT {_COLUMNS} FROM vault.documents d
                WHERE owner_ref = $1 AND deleted_at IS NULL AND {_LATEST}
                  AND ($2::text IS NULL OR document_type = $2)
                  AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
                ORDER BY created_at DESC, id DESC LIMIT $5""",
            owner_ref,
            document_type.value if document_type else None,
            after.created_at if after else None,
            after.id if after else None,
            limit,
        )
        return [_document(row) for row in rows]

    async def shared_documents(
        self,
        owner_ref: str,
        document_ids: tuple[uuid.UUID, ...],
        document_types: tuple[DocumentType, ...],
        after: Cursor | None,
        limit: int,
    ) -> list[Document]:
        """Up to ``limit`` of the owner's visible documents (latest versions) that a consent's grant names by id
        or by type, newest first, after ``after`` (an agency's listing, vault.sharing)."""
        rows = await self._bounded.fetch(
            f"""SELECT {_COLUMNS} FROM vault.documents d
                WHERE owner_ref = $1 AND deleted_at IS NULL AND shredded_at IS NULL AND {_LATEST}
                  AND (logical_id = ANY($2::uuid[]) OR document_type = ANY($3::text[]))
                  AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::uuid))
                ORDER BY created_at DESC, id DESC LIMIT $6""",
            owner_ref,
            list(document_ids),
            [t.value for t in document_types],
            after.created_at if after else None,
            after.id if after else None,
            limit,
        )
        return [_document(row) for row in rows]

    async def soft_delete(self, owner_ref: str, document_id: uuid.UUID) -> bool | None:
        """Hide every version of the document now; keep them for the retention period. False when there was no
        such visible document, None when it is an issued one (read-only to its owner)."""
        async with self._pool.acquire() as connection, connection.transaction():
            sources = await connection.fetch(
                """SELECT source FROM vault.documents
                   WHERE logical_id = $1 AND owner_ref = $2 AND deleted_at IS NULL FOR UPDATE""",
                document_id,
                owner_ref,
            )
            if not sources:
                return False
            if any(row["source"] != "uploaded" for row in sources):
                return None
            await connection.execute(
                """UPDATE vault.documents SET deleted_at = now(), purge_after = now() + $3::interval
                   WHERE logical_id = $1 AND owner_ref = $2 AND deleted_at IS NULL""",
                document_id,
                owner_ref,
                self._retention,
            )
        return True

    # Operator actions (dinhdanh vault shred / rotate-kek).

    async def shred(self, owner_ref: str) -> tuple[int, int]:
        """Destroy the owner's wrapped KEK (its row stays, with its version, so the next KEK takes the next one) and
        mark their documents shredded, erasing names kept in the clear by earlier versions: (KEKs, documents)."""
        async with self._pool.acquire() as connection, connection.transaction():
            status = await connection.execute(
                """UPDATE vault.citizen_keys SET nonce = NULL, wrapped = NULL, shredded_at = now()
                   WHERE owner_ref = $1 AND shredded_at IS NULL""",
                owner_ref,
            )
            marked = await connection.execute(
                """UPDATE vault.documents SET shredded_at = now(), purge_after = now() + $2::interval,
                       title = NULL, filename = NULL, issuer_name = '', sealed_names = NULL
                   WHERE owner_ref = $1 AND shredded_at IS NULL""",
                owner_ref,
                self._retention,
            )
        return int(status.split()[-1]), int(marked.split()[-1])

    async def rotate(
        self,
        owner_ref: str,
        rotate: Callable[[WrappedKek], tuple[WrappedKek, Callable[[uuid.UUID, WrappedDataKey], WrappedDataKey]]],
    ) -> tuple[WrappedKek, int] | None:
        """In one transaction, with the owner's KEK row locked: ``rotate(old)`` gives the new wrapped KEK and
        the rewrapping of one data key; every (not shredded) data key of the owner is rewrapped, then the KEK
        replaced. None when the owner has no KEK. Returns the new wrapped KEK and the number of data keys."""
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                """SELECT kek_version, master_version, nonce, wrapped FROM vault.citizen_keys
                   WHERE owner_ref = $1 AND shredded_at IS NULL FOR UPDATE""",
                owner_ref,
            )
            if row is None:
                return None
            old = WrappedKek(row["kek_version"], row["master_version"], bytes(row["nonce"]), bytes(row["wrapped"]))
            new, rewrap = rotate(old)
            keys = await connection.fetch(
                """SELECT id, kek_version, key_nonce, wrapped_key FROM vault.documents
                   WHERE owner_ref = $1 AND shredded_at IS NULL FOR UPDATE""",
                owner_ref,
            )
            for key in keys:
                wrapped = WrappedDataKey(key["kek_version"], bytes(key["key_nonce"]), bytes(key["wrapped_key"]))
                moved = rewrap(key["id"], wrapped)
                await connection.execute(
                    "UPDATE vault.documents SET kek_version = $2, key_nonce = $3, wrapped_key = $4 WHERE id = $1",
                    key["id"],
                    moved.kek_version,
                    moved.nonce,
                    moved.wrapped,
                )
            await connection.execute(
                """UPDATE vault.citizen_keys SET kek_version = $2, master_version = $3, nonce = $4, wrapped = $5
                   WHERE owner_ref = $1""",
                owner_ref,
                new.kek_version,
                new.master_version,
                new.nonce,
                new.wrapped,
            )
        return new, len(keys)
