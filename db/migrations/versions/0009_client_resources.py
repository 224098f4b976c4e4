"""OpenID Provider: the resources (RFC 8707) a client may ask for, the ones a citizen consented to, and the
ones a refresh token's grant holds.

``oidc.clients.resources`` lists the resource indicators (``urn:dinhdanh:service:vault`` …) a client is
registered for; none by default, so a client registered before this revision may ask for none until an
operator adds them. ``oidc.consents.resources`` is remembered beside the scopes: a consent covers a request
only when both its scopes and its resources were consented to. ``oidc.refresh_tokens.resources`` is the
grant's resources: a refresh may narrow the access token's audiences to a subset, never add one
(RFC 8707 §2.2).

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("clients", "consents", "refresh_tokens")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE oidc.{table} ADD COLUMN resources text[] NOT NULL DEFAULT '{{}}'")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE oidc.{table} DROP COLUMN resources")
