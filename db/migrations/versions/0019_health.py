"""The electronic health book (issue 11): the ``health`` schema and the role of the health service.

``dinhdanh_health`` reads and writes its schema, appends to ``audit.events``, checks bearer tokens and reads
agencies' registrations with their roles and certificates in ``oidc.clients`` (a facility is an agency with the
role ``facility``, migration 0016).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

ROLE = "dinhdanh_health"
TABLES: tuple[str, ...] = ()  # the visits (helper: health)

GRANTS = (
    f"GRANT USAGE ON SCHEMA health TO {ROLE}",
    f"GRANT USAGE ON SCHEMA audit TO {ROLE}",
    f"GRANT INSERT ON audit.events TO {ROLE}",
    f"GRANT USAGE ON SCHEMA oidc TO {ROLE}",
    f"GRANT SELECT ON oidc.revoked_tokens TO {ROLE}",
    f"GRANT SELECT (kid, alg, state, retire_after) ON oidc.signing_keys TO {ROLE}",
    f"GRANT SELECT (client_id, name, kind, jwks, disabled, cert_sha256, roles) ON oidc.clients TO {ROLE}",
)


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS health")
    op.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}')"
        f" THEN CREATE ROLE {ROLE} NOLOGIN; END IF; END $$"
    )
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA health GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {ROLE}")
    for statement in TABLES:
        op.execute(statement)
    for statement in GRANTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP SCHEMA health CASCADE")
    op.execute(f"DROP OWNED BY {ROLE}")
    op.execute(f"DROP ROLE {ROLE}")
