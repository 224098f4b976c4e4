"""Passkeys: WebAuthn credentials of citizens (issue 13 §4, identity/passkeys.py).

- ``identity.passkeys``: one row per registered public key credential (WebAuthn Level 3 §7.1 step 27: the RP
  stores the credential id, its public key, its signature counter, the transports, the backup eligibility and
  state flags and whether the user was verified at registration). ``credential_id`` is unique across all
  accounts (§7.1 step 26: a credential id registered to another user is refused). ``user_handle`` is the
  random ``user.id`` of the account's credentials (§14.6.1: never personal data); ``name`` the citizen's label.
- ``identity.passkey_challenges``: the outstanding ceremony challenges (§13.4.3), each taken once
  (``DELETE … RETURNING``) before its ``expires_at``; bound to the request source and, for a registration or a
  second factor, to the account; a source holds at most 20 live ones (identity/passkeys.py MAX_LIVE_CHALLENGES).

``dinhdanh_identity`` reads and writes both (its own schema, migration 0011); nobody else reads them.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

ROLE = "dinhdanh_identity"
TABLES: tuple[str, ...] = (
    """
    CREATE TABLE identity.passkeys (
        credential_id    bytea PRIMARY KEY CHECK (length(credential_id) BETWEEN 16 AND 1023),
        id_number        char(12) NOT NULL REFERENCES identity.accounts (id_number) ON DELETE CASCADE,
        user_handle      bytea NOT NULL CHECK (length(user_handle) BETWEEN 1 AND 64),
        public_key       bytea NOT NULL,
        sign_count       bigint NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
        transports       text[] NOT NULL DEFAULT '{}',
        aaguid           text NOT NULL DEFAULT '',
        backup_eligible  boolean NOT NULL,
        backup_state     boolean NOT NULL,
        user_verified    boolean NOT NULL,
        name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
        created_at       timestamptz NOT NULL DEFAULT now(),
        last_used_at     timestamptz
    )
    """,
    "CREATE INDEX passkeys_account ON identity.passkeys (id_number, created_at)",
    """
    CREATE TABLE identity.passkey_challenges (
        id           uuid PRIMARY KEY,
        purpose      text NOT NULL CHECK (purpose IN ('register', 'second_factor', 'passwordless')),
        challenge    bytea NOT NULL CHECK (length(challenge) >= 16),
        id_number    char(12),
        user_handle  bytea,
        source       text NOT NULL,
        expires_at   timestamptz NOT NULL
    )
    """,
    "CREATE INDEX passkey_challenges_expiry ON identity.passkey_challenges (expires_at)",
    "CREATE INDEX passkey_challenges_source ON identity.passkey_challenges (source, expires_at)",
)
GRANTS = (
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON identity.passkeys TO {ROLE}",
    f"GRANT SELECT, INSERT, DELETE ON identity.passkey_challenges TO {ROLE}",
)


def upgrade() -> None:
    for statement in TABLES:
        op.execute(statement)
    for statement in GRANTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE identity.passkey_challenges")
    op.execute("DROP TABLE identity.passkeys")
