"""Token revocation: access tokens the OpenID Provider revoked before they expire.

Every service verifying bearer tokens polls this table (rows with ``revoked_at`` after the last one seen)
and refuses a listed ``jti`` until ``expires_at``; rows past ``expires_at`` may be deleted.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS oidc")
    op.execute(
        """
        CREATE TABLE oidc.revoked_tokens (
            jti         text PRIMARY KEY,
            expires_at  timestamptz NOT NULL,
            revoked_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX revoked_tokens_revoked_at ON oidc.revoked_tokens (revoked_at)")


def downgrade() -> None:
    op.execute("DROP TABLE oidc.revoked_tokens")
