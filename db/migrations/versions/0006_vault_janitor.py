"""Vault: objects being written (``vault.pending_objects``), so that no object is ever left without its row.

An upload records its object name here before the object can be completed in S3; the transaction that
inserts the document's row deletes it. A name still here after the grace period belongs to an upload that
failed or was cut off (process killed between S3 and PostgreSQL): the sweeper deletes that object and the
name. A commit whose name is gone (swept) is refused, so a row never points to a deleted object.

``purge_after`` is now set on soft delete and on crypto-shredding alike, and its index covers both.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE vault.pending_objects (
            object_name text PRIMARY KEY,
            started_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX pending_objects_by_age ON vault.pending_objects (started_at)")
    op.execute("DROP INDEX vault.documents_to_purge")
    op.execute("CREATE INDEX documents_to_purge ON vault.documents (purge_after) WHERE purge_after IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX vault.documents_to_purge")
    op.execute("CREATE INDEX documents_to_purge ON vault.documents (purge_after) WHERE deleted_at IS NOT NULL")
    op.execute("DROP TABLE vault.pending_objects")
