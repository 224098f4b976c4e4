"""Issuance of criminal-record certificates (issue 11): the ``issuance`` schema and its role.

- ``issuance.dossiers``: one row per application (issuance/dossiers.py). ``id_number`` is the subject's ID
  number (the certificate is about them and is delivered into their vault); ``requester`` who asked (``SELF``,
  ``REPRESENTATIVE``, ``AGENCY``, ``PROCEDURAL_AUTHORITY``) and ``requester_ref`` the asking citizen's audit
  pseudonym or the agency's client id; ``(requester_ref, request_id)`` makes ``Apply`` idempotent. ``fields``
  holds the 23 filled fields (issuance/application.py), ``fee`` the recorded fee (issuance/fees.py). The
  issuing columns are written once the dossier is APPROVED: ``certificate_id`` (the credential's ``jti``),
  ``status_index`` (its entry in the status list), ``credential`` (the SD-JWT VC), ``qr_text``,
  ``vault_document_id`` once delivered; ``agency_pdf`` keeps the signed PDF of an agency's request (not
  delivered into a vault). ``issue_attempts``/``next_issue_at``/``issue_error`` drive the issuing worker,
  which settles an interrupted issue by doing it again (the vault's delivery is idempotent per
  ``issuer_document_id`` = ``certificate_id``).
- ``issuance.dossier_events``: the status history, one row per change.
- ``issuance.status_lists``: the signed IETF Token Status List (``statuslist+jwt``) per list, rebuilt by the
  issuance service after every revocation or suspension and served by the edge.
- ``issuance.issuer_keys``: the issuer's public keys (JWK) and the document-signing certificate chain, written
  by the issuance service on start and published by the edge.

Roles: ``dinhdanh_issuance`` reads and writes its schema, appends to ``audit.events``, checks bearer tokens and
reads agencies' registrations with their roles and certificates in ``oidc.clients``; ``dinhdanh_edge`` reads the
status lists and the issuer keys.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

ROLE = "dinhdanh_issuance"
STATUSES = "'SUBMITTED', 'VERIFYING', 'APPROVED', 'REJECTED', 'ISSUED'"
REQUESTERS = "'SELF', 'REPRESENTATIVE', 'AGENCY', 'PROCEDURAL_AUTHORITY'"

TABLES = (
    f"""
    CREATE TABLE issuance.dossiers (
        id                 uuid PRIMARY KEY,
        tracking_number    text NOT NULL UNIQUE,
        request_id         uuid NOT NULL,
        requester          text NOT NULL CHECK (requester IN ({REQUESTERS})),
        requester_ref      text NOT NULL,
        client_id          text NOT NULL DEFAULT '',
        authorisation_ref  text NOT NULL DEFAULT '',
        legal_basis        text NOT NULL DEFAULT '',
        id_number          text NOT NULL CHECK (id_number ~ '^[0-9]{{12}}$'),
        subject            text NOT NULL,
        form               smallint NOT NULL CHECK (form IN (1, 2)),
        purpose            text NOT NULL,
        answers            jsonb NOT NULL,
        fields             jsonb NOT NULL,
        fee                jsonb NOT NULL,
        working_days       smallint NOT NULL CHECK (working_days IN (10, 15)),
        deadline           date NOT NULL,
        received_at        timestamptz NOT NULL,
        status             text NOT NULL CHECK (status IN ({STATUSES})),
        status_changed_at  timestamptz NOT NULL,
        rejection_reason   text NOT NULL DEFAULT '',
        clean_record       boolean,
        holder_jwk         jsonb,
        certificate_id     text UNIQUE,
        status_index       integer UNIQUE CHECK (status_index >= 0),
        credential_status  text CHECK (credential_status IN ('VALID', 'REVOKED', 'SUSPENDED')),
        credential         text,
        qr_text            text,
        vault_document_id  text,
        agency_pdf         bytea,
        issued_at          timestamptz,
        issue_attempts     integer NOT NULL DEFAULT 0 CHECK (issue_attempts >= 0),
        next_issue_at      timestamptz,
        issue_error        text NOT NULL DEFAULT '',
        UNIQUE (requester_ref, request_id),
        CHECK ((status = 'ISSUED') = (credential IS NOT NULL AND issued_at IS NOT NULL)),
        CHECK ((credential_status IS NULL) = (credential IS NULL))
    )
    """,
    "CREATE INDEX dossiers_by_requester ON issuance.dossiers (requester_ref, received_at DESC, id DESC)",
    "CREATE INDEX dossiers_by_subject ON issuance.dossiers (subject, received_at DESC, id DESC)",
    "CREATE INDEX dossiers_by_status ON issuance.dossiers (status, deadline, id)",
    "CREATE INDEX dossiers_to_issue ON issuance.dossiers (next_issue_at) WHERE status = 'APPROVED'",
    "CREATE SEQUENCE issuance.tracking_numbers MINVALUE 1 MAXVALUE 999999 CYCLE",
    "CREATE SEQUENCE issuance.status_indexes MINVALUE 0 START 0",
    f"""
    CREATE TABLE issuance.dossier_events (
        dossier_id  uuid NOT NULL REFERENCES issuance.dossiers (id) ON DELETE CASCADE,
        seq         integer NOT NULL CHECK (seq >= 0),
        status      text NOT NULL CHECK (status IN ({STATUSES})),
        at          timestamptz NOT NULL,
        actor       text NOT NULL CHECK (actor IN ('OFFICER', 'SYSTEM')),
        reason      text NOT NULL DEFAULT '',
        officer     text NOT NULL DEFAULT '',
        PRIMARY KEY (dossier_id, seq)
    )
    """,
    """
    CREATE TABLE issuance.status_lists (
        list_id     integer PRIMARY KEY CHECK (list_id >= 0),
        token       text NOT NULL,
        size        integer NOT NULL CHECK (size >= 0),
        version     bigint NOT NULL,
        built_at    timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE issuance.issuer_keys (
        kid         text PRIMARY KEY,
        use         text NOT NULL CHECK (use IN ('credential', 'document')),
        public_jwk  jsonb NOT NULL,
        chain_pem   text NOT NULL DEFAULT '',
        created_at  timestamptz NOT NULL DEFAULT now()
    )
    """,
)

GRANTS = (
    f"GRANT USAGE ON SCHEMA issuance TO {ROLE}",
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA issuance TO {ROLE}",
    f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA issuance TO {ROLE}",
    f"GRANT USAGE ON SCHEMA audit TO {ROLE}",
    f"GRANT INSERT ON audit.events TO {ROLE}",
    f"GRANT USAGE ON SCHEMA oidc TO {ROLE}",
    f"GRANT SELECT ON oidc.revoked_tokens TO {ROLE}",
    f"GRANT SELECT (kid, alg, state, retire_after) ON oidc.signing_keys TO {ROLE}",
    f"GRANT SELECT (client_id, name, kind, jwks, disabled, cert_sha256, roles) ON oidc.clients TO {ROLE}",
    "GRANT USAGE ON SCHEMA issuance TO dinhdanh_edge",
    "GRANT SELECT ON issuance.status_lists, issuance.issuer_keys TO dinhdanh_edge",
)


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS issuance")
    op.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}')"
        f" THEN CREATE ROLE {ROLE} NOLOGIN; END IF; END $$"
    )
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA issuance GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {ROLE}")
    for statement in TABLES:
        op.execute(statement)
    for statement in GRANTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP SCHEMA issuance CASCADE")
    op.execute(f"DROP OWNED BY {ROLE}")
    op.execute(f"DROP ROLE {ROLE}")
