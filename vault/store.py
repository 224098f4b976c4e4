"""PostgreSQL storage of the vault: wrapped KEKs (``vault.citizen_keys``) and metadata (``vault.documents``).

Rows carry the pseudonymous ``owner_ref`` (vault.keyring), never an ID number. Every read and write of a
document is scoped by its owner, so another citizen's id behaves exactly like an unknown one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from vault.crypto.envelope import WrappedDataKey, WrappedKek
from vault.documents import Document, DocumentType

RETENTION = timedelta(days=30)  # a soft-deleted document's object is purged after this (purge: future work)

_COLUMNS = "id, document_type, title, filename, content_type, size_bytes, sha256, created_at"


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
        id=row["id"],
        document_type=DocumentType(row["document_type"]),
        title=row["title"],
        filename=row["filename"],
        content_type=row["content_type"],
        size_bytes=row["size_bytes"],
        sha256=bytes(row["sha256"]),
        created_at=row["created_at"],
    )


class VaultStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def wrapped_kek(self, owner_ref: str) -> WrappedKek | None:
        row = await self._pool.fetchrow(
            "SELECT kek_version, master_version, nonce, wrapped FROM vault.citizen_keys WHERE owner_ref = $1",
            owner_ref,
        )
        if row is None:
            return None
        return WrappedKek(row["kek_version"], row["master_version"], bytes(row["nonce"]), bytes(row["wrapped"]))

    async def add_kek(self, owner_ref: str, wrapped: WrappedKek) -> WrappedKek:
        await self._pool.execute(
            """INSERT INTO vault.citizen_keys (owner_ref, kek_version, master_version, nonce, wrapped)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner_ref) DO NOTHING""",
            owner_ref,
            wrapped.kek_version,
            wrapped.master_version,
            wrapped.nonce,
            wrapped.wrapped,
        )
        stored = await self.wrapped_kek(owner_ref)
        assert stored is not None
        return stored

    async def add_document(self, owner_ref: str, stored: StoredObject) -> Document:
        d = stored.document
        row = await self._pool.fetchrow(
            f"""INSERT INTO vault.documents (id, owner_ref, object_name, document_type, title, filename,
                    content_type, size_bytes, sha256, kek_version, key_nonce, wrapped_key, segment_size)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                RETURNING {_COLUMNS}""",
            d.id,
            owner_ref,
            stored.object_name,
            d.document_type.value,
            d.title,
            d.filename,
            d.content_type,
            d.size_bytes,
            d.sha256,
            stored.wrapped_key.kek_version,
            stored.wrapped_key.nonce,
            stored.wrapped_key.wrapped,
            stored.segment_size,
        )
        return _document(row)

    async def document(self, owner_ref: str, document_id: uuid.UUID) -> StoredObject | None:
        row = await self._pool.fetchrow(
            f"""SELECT {_COLUMNS}, object_name, kek_version, key_nonce, wrapped_key, segment_size
                FROM vault.documents WHERE id = $1 AND owner_ref = $2 AND deleted_at IS NULL""",
            document_id,
            owner_ref,
        )
        if row is None:
            return None
        wrapped = WrappedDataKey(row["kek_version"], bytes(row["key_nonce"]), bytes(row["wrapped_key"]))
        return StoredObject(_document(row), row["object_name"], wrapped, row["segment_size"])

    async def documents(
        self, owner_ref: str, document_type: DocumentType | None, after: Cursor | None, limit: int
    ) -> list[Document]:
        """Up to ``limit`` visible documents, newest first, after ``after``."""
        rows = await self._pool.fetch(
            f"""SELECT {_COLUMNS} FROM vault.documents
                WHERE owner_ref = $1 AND deleted_at IS NULL
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

    async def soft_delete(self, owner_ref: str, document_id: uuid.UUID) -> bool:
        """Hide the document now; keep it for ``RETENTION``. False when there was no such visible document."""
        status = await self._pool.execute(
            """UPDATE vault.documents SET deleted_at = now(), purge_after = now() + $3::interval
               WHERE id = $1 AND owner_ref = $2 AND deleted_at IS NULL""",
            document_id,
            owner_ref,
            RETENTION,
        )
        return status == "UPDATE 1"
