"""The electronic health book (issue 11): the ``health`` schema and the role of the health service.

- ``health.visits``: one row per visit record a facility pushed (issuance/health/visits.py). ``client_id`` is the
  facility's registered client, ``record_id`` its own id for the visit (MA_LK): ``(client_id, record_id)`` makes
  a push idempotent, ``content_sha256`` (of the canonical JSON) tells a replay from a conflict;
  ``(facility_code, record_id)`` is unique too (the book names a visit by it, ``book.visit_ref``), so a client
  stating another facility's Ministry code cannot shadow that facility's record. ``record`` is the
  visit's canonical JSON value (``visits.to_json_value``: it holds the citizen's ID number, as the medical record
  does); ``subject`` the citizen's audit pseudonym, by which the book is read.
- ``health.extracts``: the signed extracts issued into citizens' vaults (which visits, the vault document).

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
TABLES: tuple[str, ...] = (
    """
    CREATE TABLE health.visits (
        id              uuid PRIMARY KEY,
        client_id       text NOT NULL,
        record_id       text NOT NULL,
        facility_code   text NOT NULL CHECK (facility_code ~ '^[0-9]{5}$'),
        subject         text NOT NULL,
        record          jsonb NOT NULL,
        content_sha256  bytea NOT NULL CHECK (length(content_sha256) = 32),
        admitted_at     timestamptz NOT NULL,
        discharged_at   timestamptz NOT NULL,
        received_at     timestamptz NOT NULL,
        UNIQUE (client_id, record_id),
        UNIQUE (facility_code, record_id)
    )
    """,
    "CREATE INDEX visits_book ON health.visits (subject, discharged_at DESC)",
    """
    CREATE TABLE health.extracts (
        id                 uuid PRIMARY KEY,
        subject            text NOT NULL,
        visit_ids          uuid[] NOT NULL,
        vault_document_id  text NOT NULL,
        issued_at          timestamptz NOT NULL
    )
    """,
    "CREATE INDEX extracts_subject ON health.extracts (subject, issued_at DESC)",
)

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
