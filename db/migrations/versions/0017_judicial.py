"""Judicial records (issue 11): the ``judicial`` schema and the role of the judicial-records service.

``judicial.convictions``: one row per conviction (``issuance.judicial.Conviction``: offence by Penal Code 2015
article, offence date, court, judgment number and date, main penalty, completion, the Art. 41 office ban, a
court's Art. 71 expungement), keyed by ``(id_number, serial)``; no row, a clean record.

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
KINDS = "'WARNING', 'FINE', 'NON_CUSTODIAL', 'SUSPENDED', 'PRISON', 'LIFE'"  # issuance.judicial.SentenceKind

# One row per conviction (issuance.judicial.Conviction), keyed by the person's ID number and the conviction's
# serial in their record (1, 2 … in judgment order). A person without a row has a clean record.
TABLES: tuple[str, ...] = (
    f"""
    CREATE TABLE judicial.convictions (
        id_number           text NOT NULL CHECK (id_number ~ '^[0-9]{{12}}$'),
        serial              smallint NOT NULL CHECK (serial >= 1),
        penal_code_article  smallint NOT NULL CHECK (penal_code_article BETWEEN 1 AND 426),
        offence_date        date NOT NULL,
        court               text NOT NULL CHECK (court <> ''),
        judgment_number     text NOT NULL CHECK (judgment_number <> ''),
        judgment_date       date NOT NULL,
        sentence_kind       text NOT NULL CHECK (sentence_kind IN ({KINDS})),
        sentence_months     smallint NOT NULL DEFAULT 0 CHECK (sentence_months >= 0),
        probation_months    smallint NOT NULL DEFAULT 0 CHECK (probation_months >= 0),
        fine_vnd            bigint NOT NULL DEFAULT 0 CHECK (fine_vnd >= 0),
        completion_date     date NOT NULL,
        ban_position_vi     text,
        ban_years           smallint CHECK (ban_years BETWEEN 1 AND 5),
        court_expunged_on   date,
        PRIMARY KEY (id_number, serial),
        CHECK (offence_date <= judgment_date AND judgment_date <= completion_date),
        CHECK ((ban_position_vi IS NULL) = (ban_years IS NULL))
    )
    """,
)


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
