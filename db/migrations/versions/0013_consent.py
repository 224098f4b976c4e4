"""Consent: the ``consent`` schema, its tables and the grants of the roles that use them (issue 10).

- ``consent.consents``: one row per consent artefact. ``artefact`` holds the canonical JSON bytes
  (``consent.artefact.canonical``; immutable once approved), ``signature`` the platform's compact JWS over them
  ('' until approved); beside them the status (``consent.states``) and the use counters
  (``consent.fetch_policy.Counters``). ``subject`` is the citizen's pseudonymous reference (the namespace of
  ``audit.events.subject``), ``citizen_sub`` the citizen's opaque OpenID Connect ``sub`` (the vault turns it
  back into the ID number to find the owner's documents).
- ``consent.signing_keys``: the public JWKs of the platform's consent keys (``consent.signing``), written by
  the consent service on start, read by whoever checks a stored artefact's JWS (the vault, the edge).
- ``consent.notification_urls``: the URL an agency registered for status notifications.
- ``consent.notifications``: the transactional outbox of status notifications (written in the transaction of
  the status change, sent by ``consent.notifications.Sender``).

Roles: ``dinhdanh_consent`` reads and writes its schema, appends to ``audit.events``, checks bearer tokens and
reads agencies' registrations (with their purposes) in ``oidc.clients`` (and the registered certificate's
``cert_sha256``, granted by migration 0015 which adds the column: an agency calls with that certificate only).
``dinhdanh_vault`` reads the consents and the signing keys and may update only the counters (it charges fetches
itself, ``consent.pg_store.PostgresConsentStore.charge_fetch``); ``dinhdanh_edge`` only reads them (the token
endpoint checks an artefact).

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
STATUSES = "'PENDING', 'ACTIVE', 'PAUSED', 'REJECTED', 'REVOKED', 'EXPIRED'"
OPEN = "'PENDING', 'ACTIVE', 'PAUSED'"  # what the expiry sweeper looks at

TABLES = (
    f"""
    CREATE TABLE consent.consents (
        id                 uuid PRIMARY KEY,
        subject            text NOT NULL,
        citizen_sub        text NOT NULL DEFAULT '',
        client_id          text NOT NULL,
        purpose            text NOT NULL,
        artefact           bytea NOT NULL,
        signature          text NOT NULL DEFAULT '',
        status             text NOT NULL CHECK (status IN ({STATUSES})),
        status_changed_at  timestamptz NOT NULL,
        fetches            integer NOT NULL DEFAULT 0 CHECK (fetches >= 0),
        window_fetches     integer NOT NULL DEFAULT 0 CHECK (window_fetches >= 0 AND window_fetches <= fetches),
        last_fetch         timestamptz,
        created_at         timestamptz NOT NULL,
        expiry             timestamptz NOT NULL,
        CHECK ((last_fetch IS NULL) = (fetches = 0)),
        CHECK (signature = '' OR status NOT IN ('PENDING', 'REJECTED')),
        CHECK (signature <> '' OR status NOT IN ('ACTIVE', 'PAUSED', 'REVOKED'))
    )
    """,
    "CREATE INDEX consents_by_subject ON consent.consents (subject, created_at DESC, id DESC)",
    "CREATE INDEX consents_by_agency ON consent.consents (client_id, created_at DESC, id DESC)",
    f"CREATE INDEX consents_due ON consent.consents (expiry) WHERE status IN ({OPEN})",
    """
    CREATE TABLE consent.signing_keys (
        kid         text PRIMARY KEY,
        public_jwk  jsonb NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE consent.notification_urls (
        client_id   text PRIMARY KEY,
        url         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
        updated_at  timestamptz NOT NULL DEFAULT now()
    )
    """,
    f"""
    CREATE TABLE consent.notifications (
        id               uuid PRIMARY KEY,
        consent_id       uuid NOT NULL REFERENCES consent.consents (id) ON DELETE CASCADE,
        client_id        text NOT NULL,
        status           text NOT NULL CHECK (status IN ({STATUSES})),
        fetches          integer NOT NULL CHECK (fetches >= 0),
        created_at       timestamptz NOT NULL,
        state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        next_attempt_at  timestamptz NOT NULL,
        last_error       text NOT NULL DEFAULT '',
        finished_at      timestamptz
    )
    """,
    "CREATE INDEX notifications_due ON consent.notifications (next_attempt_at) WHERE state = 'pending'",
    "CREATE INDEX notifications_by_consent ON consent.notifications (consent_id, created_at)",
)

GRANTS = (
    # the consent service: its schema (the default privileges above cover the tables made here), audit, tokens
    f"GRANT USAGE ON SCHEMA consent TO {ROLE}",
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA consent TO {ROLE}",
    f"GRANT USAGE ON SCHEMA audit TO {ROLE}",
    f"GRANT INSERT ON audit.events TO {ROLE}",
    f"GRANT USAGE ON SCHEMA oidc TO {ROLE}",
    f"GRANT SELECT ON oidc.revoked_tokens TO {ROLE}",
    f"GRANT SELECT (kid, alg, state, retire_after) ON oidc.signing_keys TO {ROLE}",
    f"GRANT SELECT (client_id, name, kind, jwks, disabled, purposes) ON oidc.clients TO {ROLE}",
    # the vault: reads consents and keys, charges fetches (the counters only)
    "GRANT USAGE ON SCHEMA consent TO dinhdanh_vault",
    "GRANT SELECT ON consent.consents, consent.signing_keys TO dinhdanh_vault",
    "GRANT UPDATE (fetches, window_fetches, last_fetch) ON consent.consents TO dinhdanh_vault",
    # the edge: reads consents and keys (the token endpoint checks an artefact)
    "GRANT USAGE ON SCHEMA consent TO dinhdanh_edge",
    "GRANT SELECT ON consent.consents, consent.signing_keys TO dinhdanh_edge",
)


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS consent")
    op.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}')"
        f" THEN CREATE ROLE {ROLE} NOLOGIN; END IF; END $$"
    )
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA consent GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {ROLE}")
    for statement in TABLES:
        op.execute(statement)
    for statement in GRANTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP SCHEMA consent CASCADE")
    op.execute(f"DROP OWNED BY {ROLE}")
    op.execute(f"DROP ROLE {ROLE}")
