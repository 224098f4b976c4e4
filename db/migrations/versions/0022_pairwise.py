"""Pairwise subjects and remembered-consent lifetime (issue 13 §2; the client columns are migration 0020's).

- ``oidc.clients.public_sub_until``: when a portal switched from public to pairwise subjects
  (``dinhdanh clients subjects CLIENT --pairwise``), the end of the transition window during which its ID tokens
  still carry the citizen's previous public ``sub`` in the ``previous_sub`` claim (docs/privacy.md); NULL for
  every other client.
- ``oidc.consents_client``: the remembered consents of one portal, read when it switches (the old → new ``sub``
  mapping of its citizens is exported for it); the primary key (subject, client_id) serves a citizen's own list.
- ``oidc.refresh_tokens_subject``: a citizen's live refresh tokens for one portal, revoked when they withdraw
  their consent to it (/account/portals).

A remembered consent lasts the portal's ``consent_ttl`` from its ``granted_at`` (no column: a shorter
``consent_ttl`` applies at once to consents already remembered). ``dinhdanh_edge`` already reads and writes all of
``oidc.*`` (migration 0011's default privileges); no other role reads these columns.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE oidc.clients ADD COLUMN public_sub_until timestamptz")
    op.execute("CREATE INDEX consents_client ON oidc.consents (client_id)")
    op.execute(
        "CREATE INDEX refresh_tokens_subject ON oidc.refresh_tokens (subject, client_id) WHERE revoked_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX oidc.refresh_tokens_subject")
    op.execute("DROP INDEX oidc.consents_client")
    op.execute("ALTER TABLE oidc.clients DROP COLUMN public_sub_until")
