"""The transparency log's role (audit.events feeds the log).

(Skeleton: the role; the log's tables come with the log service.)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ROLE = "dinhdanh_log"


def upgrade() -> None:
    op.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}')"
        f" THEN CREATE ROLE {ROLE} NOLOGIN; END IF; END $$"
    )
    for statement in (
        "GRANT USAGE ON SCHEMA audit TO {role}",
        "GRANT USAGE ON SCHEMA oidc TO {role}",
        "GRANT SELECT ON oidc.revoked_tokens TO {role}",
        "GRANT SELECT (kid, alg, state, retire_after) ON oidc.signing_keys TO {role}",
        "GRANT SELECT (client_id, name, kind) ON oidc.clients TO {role}",
    ):
        op.execute(statement.format(role=ROLE))


def downgrade() -> None:
    op.execute(f"DROP OWNED BY {ROLE}")
    op.execute(f"DROP ROLE {ROLE}")
