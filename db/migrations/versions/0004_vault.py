"""Personal document vault: wrapped citizen KEKs and document metadata (the content is in S3).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TYPES = (
    "citizen_id_card",
    "birth_certificate",
    "residence_confirmation",
    "diploma",
    "criminal_record_certificate",
    "health_book",
    "other",
)


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS vault")
    # owner_ref: HMAC of the ID number under a vault key (vault.keyring), never the number itself.
    op.execute(
        """
        CREATE TABLE vault.citizen_keys (
            owner_ref      text PRIMARY KEY,
            kek_version    integer NOT NULL,
            master_version integer NOT NULL,
            nonce          bytea NOT NULL,
            wrapped        bytea NOT NULL,
            created_at     timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    allowed = ", ".join(f"'{t}'" for t in TYPES)
    op.execute(
        f"""
        CREATE TABLE vault.documents (
            id            uuid PRIMARY KEY,
            owner_ref     text NOT NULL REFERENCES vault.citizen_keys (owner_ref),
            object_name   text NOT NULL UNIQUE,
            document_type text NOT NULL CHECK (document_type IN ({allowed})),
            title         text NOT NULL,
            filename      text NOT NULL,
            content_type  text NOT NULL,
            size_bytes    bigint NOT NULL CHECK (size_bytes > 0),
            sha256        bytea NOT NULL,
            kek_version   integer NOT NULL,
            key_nonce     bytea NOT NULL,
            wrapped_key   bytea NOT NULL,
            segment_size  integer NOT NULL,
            created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
            deleted_at    timestamptz,
            purge_after   timestamptz
        )
        """
    )
    op.execute(
        "CREATE INDEX documents_by_owner ON vault.documents (owner_ref, created_at DESC, id DESC) "
        "WHERE deleted_at IS NULL"
    )
    op.execute("CREATE INDEX documents_to_purge ON vault.documents (purge_after) WHERE deleted_at IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP TABLE vault.documents")
    op.execute("DROP TABLE vault.citizen_keys")
    op.execute("DROP SCHEMA vault")
