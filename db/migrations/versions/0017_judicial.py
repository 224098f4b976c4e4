"""Judicial records (issue 11): the ``judicial`` schema and the role of the judicial-records service.

``dinhdanh_judicial`` reads its schema (the records are seeded by the deployment as the schema's owner:
``issuance.judicial_store``); it checks no bearer tokens (only the issuance service and operators call it).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ROLE = "dinhdanh_judicial"
TABLES: tuple[str, ...] = ()  # the tables of the judicial records (helper: judicial)


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS judicial")
    op.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}')"
        f" THEN CREATE ROLE {ROLE} NOLOGIN; END IF; END $$"
    )
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA judicial GRANT SELECT ON TABLES TO {ROLE}")
    op.execute(f"GRANT USAGE ON SCHEMA judicial TO {ROLE}")
    for statement in TABLES:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP SCHEMA judicial CASCADE")
    op.execute(f"DROP OWNED BY {ROLE}")
    op.execute(f"DROP ROLE {ROLE}")
