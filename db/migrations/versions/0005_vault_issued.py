"""Vault: documents issued by agencies, versions of a document, crypto-shredding.

- ``source`` (``uploaded`` | ``issued``) with the issuer's client id, its own document id and the detached
  signature it supplied; one row per (issuer, issuer document id).
- ``logical_id`` and ``version``: every version is its own row (own data key and object); the logical id is
  the id of its first version, the one clients see.
- ``shredded_at``: the citizen's KEK was destroyed (``dinhdanh vault shred``); the foreign key to
  ``vault.citizen_keys`` goes so that the KEK row can be deleted while the metadata stays.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE vault.documents
            ADD COLUMN source             text NOT NULL DEFAULT 'uploaded' CHECK (source IN ('uploaded', 'issued')),
            ADD COLUMN issuer_client_id   text,
            ADD COLUMN issuer_document_id text,
            ADD COLUMN issuer_signature   bytea,
            ADD COLUMN logical_id         uuid,
            ADD COLUMN version            integer NOT NULL DEFAULT 1 CHECK (version > 0),
            ADD COLUMN shredded_at        timestamptz,
            ADD CONSTRAINT issued_has_issuer CHECK (
                source = 'uploaded' OR (issuer_client_id IS NOT NULL AND issuer_document_id IS NOT NULL))
        """
    )
    op.execute("UPDATE vault.documents SET logical_id = id")
    op.execute("ALTER TABLE vault.documents ALTER COLUMN logical_id SET NOT NULL")
    op.execute("ALTER TABLE vault.documents DROP CONSTRAINT IF EXISTS documents_owner_ref_fkey")
    op.execute("CREATE UNIQUE INDEX documents_versions ON vault.documents (logical_id, version)")
    op.execute(
        "CREATE UNIQUE INDEX documents_issued ON vault.documents (issuer_client_id, issuer_document_id) "
        "WHERE source = 'issued'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX vault.documents_issued")
    op.execute("DROP INDEX vault.documents_versions")
    op.execute("ALTER TABLE vault.documents DROP CONSTRAINT issued_has_issuer")
    for column in ("shredded_at", "version", "logical_id", "issuer_signature", "issuer_document_id",
                   "issuer_client_id", "source"):  # fmt: skip
        op.execute(f"ALTER TABLE vault.documents DROP COLUMN {column}")

    op.execute(
        "ALTER TABLE vault.documents ADD CONSTRAINT documents_owner_ref_fkey FOREIGN KEY (owner_ref) "
        "REFERENCES vault.citizen_keys (owner_ref) NOT VALID"
    )
