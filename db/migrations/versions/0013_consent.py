"""Consent: the ``consent`` schema and its service's role.

(Skeleton: the schema and role; the consent service's tables come with it.)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ROLE = "dinhdanh_consent"


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS consent")
    op.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}')"
        f" THEN CREATE ROLE {ROLE} NOLOGIN; END IF; END $$"
    )
    for statement in (
        "GRANT USAGE ON SCHEMA consent TO {role}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA consent TO {role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA consent GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
        "GRANT USAGE ON SCHEMA audit TO {role}",
        "GRANT INSERT ON audit.events TO {role}",
        "GRANT USAGE ON SCHEMA oidc TO {role}",
        "GRANT SELECT ON oidc.revoked_tokens TO {role}",
        "GRANT SELECT (kid, alg, state, retire_after) ON oidc.signing_keys TO {role}",
        "GRANT SELECT (client_id, name, kind, jwks, disabled) ON oidc.clients TO {role}",
    ):
        op.execute(statement.format(role=ROLE))


def downgrade() -> None:
    op.execute("DROP SCHEMA consent CASCADE")
    op.execute(f"DROP OWNED BY {ROLE}")
    op.execute(f"DROP ROLE {ROLE}")
