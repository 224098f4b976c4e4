"""Vault: a shredded KEK keeps its version, and titles, filenames and issuer names are sealed.

- ``citizen_keys``: a crypto-shred empties ``nonce`` and ``wrapped`` and sets ``shredded_at`` instead of deleting
  the row, so the citizen's next KEK takes the next version: a data key wrapped under a shredded KEK (an upload
  in flight during the shred) can never pass for one of a later KEK with the same version number.
- ``documents.sealed_names``: title, filename and issuer name sealed under a key derived from the version's data
  key (vault.crypto.names), so a shred erases them with the content. ``title`` and ``filename`` become nullable:
  new rows leave them NULL (and ``issuer_name`` empty); rows written before keep them in the clear until their
  citizen's shred erases them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE vault.citizen_keys
            ALTER COLUMN nonce DROP NOT NULL,
            ALTER COLUMN wrapped DROP NOT NULL,
            ADD COLUMN shredded_at timestamptz,
            ADD CONSTRAINT kek_or_shredded CHECK ((shredded_at IS NULL) = (nonce IS NOT NULL AND wrapped IS NOT NULL))
        """
    )
    op.execute(
        """
        ALTER TABLE vault.documents
            ALTER COLUMN title DROP NOT NULL,
            ALTER COLUMN filename DROP NOT NULL,
            ADD COLUMN sealed_names bytea,
            ADD CONSTRAINT named CHECK (sealed_names IS NOT NULL OR title IS NOT NULL OR shredded_at IS NOT NULL)
        """
    )


def downgrade() -> None:
    op.execute("DELETE FROM vault.citizen_keys WHERE shredded_at IS NOT NULL")
    op.execute(
        """
        ALTER TABLE vault.citizen_keys
            DROP CONSTRAINT kek_or_shredded,
            DROP COLUMN shredded_at,
            ALTER COLUMN nonce SET NOT NULL,
            ALTER COLUMN wrapped SET NOT NULL
        """
    )
    # Sealed names open only with the vault's keys: a downgrade leaves them empty.
    op.execute("UPDATE vault.documents SET title = coalesce(title, ''), filename = coalesce(filename, '')")
    op.execute(
        """
        ALTER TABLE vault.documents
            DROP CONSTRAINT named,
            DROP COLUMN sealed_names,
            ALTER COLUMN title SET NOT NULL,
            ALTER COLUMN filename SET NOT NULL
        """
    )
