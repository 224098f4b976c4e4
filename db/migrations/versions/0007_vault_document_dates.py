"""Vault: who issued a paper and when it was issued and expires (the catalog's metadata).

``issuer_name`` is what the citizen states for an uploaded paper and the agency's registered name for a
delivered one; ``issued_on`` and ``expires_on`` are calendar dates, both optional.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE vault.documents
            ADD COLUMN issuer_name text NOT NULL DEFAULT '',
            ADD COLUMN issued_on   date,
            ADD COLUMN expires_on  date,
            ADD CONSTRAINT expires_after_issued CHECK (expires_on IS NULL OR issued_on IS NULL
                                                       OR expires_on >= issued_on)
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE vault.documents DROP CONSTRAINT expires_after_issued")
    for column in ("expires_on", "issued_on", "issuer_name"):
        op.execute(f"ALTER TABLE vault.documents DROP COLUMN {column}")
