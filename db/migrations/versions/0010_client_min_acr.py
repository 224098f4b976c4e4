"""OpenID Provider: required assurance levels, session-bound refresh tokens, code replay, single-use assertions.

- ``oidc.clients.min_acr``: the assurance level every sign-in of this client needs (1 by default; 2 for a
  portal that issues, say, criminal-record certificates). A level-1 account is refused there.
- ``oidc.refresh_tokens.sid``: the SSO session that minted the token; without ``offline_access`` the token
  ends with that session (OpenID Connect Core §11).
- ``oidc.used_codes.access_jtis`` and ``access_expires_at``: the access tokens a redemption issued, written
  in the same statement that marks the code used, so a second redemption revokes them too (RFC 6749 §4.1.2).
- ``oidc.client_assertions``: ``private_key_jwt`` assertion ids (RFC 7523 §3 ``jti``) seen within their
  acceptance window, one row per (client, jti): insert-or-fail makes an assertion single-use across every
  edge process.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE oidc.clients ADD COLUMN min_acr smallint NOT NULL DEFAULT 1 CHECK (min_acr IN (1, 2))")
    op.execute("ALTER TABLE oidc.refresh_tokens ADD COLUMN sid text")
    op.execute(
        "ALTER TABLE oidc.used_codes ADD COLUMN access_jtis text[] NOT NULL DEFAULT '{}',"
        " ADD COLUMN access_expires_at timestamptz"
    )
    op.execute(
        """
        CREATE TABLE oidc.client_assertions (
            client_id   text NOT NULL,
            jti         text NOT NULL,
            expires_at  timestamptz NOT NULL,
            PRIMARY KEY (client_id, jti)
        )
        """
    )
    op.execute("CREATE INDEX client_assertions_expires_at ON oidc.client_assertions (expires_at)")


def downgrade() -> None:
    op.execute("DROP TABLE oidc.client_assertions")
    op.execute("ALTER TABLE oidc.used_codes DROP COLUMN access_expires_at, DROP COLUMN access_jtis")
    op.execute("ALTER TABLE oidc.refresh_tokens DROP COLUMN sid")
    op.execute("ALTER TABLE oidc.clients DROP COLUMN min_acr")
