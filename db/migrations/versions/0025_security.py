"""The citizen's security page: the SSO sessions started, the temporary lock of password sign-in (issue 13 §5).

- ``oidc.sso_sessions``: one row per SSO session the edge opened (the session itself still travels sealed in
  its cookie, ``identity.oidc.sealed``): ``sid`` (the cookie's ``jti``), ``sub`` (the citizen's subject at the
  OP), when it started and ends, the portal it was opened for and the last one it served (client ids), its
  source (``device``/``address`` only, never the address itself) and a short user-agent summary
  ("Firefox on Linux"), ``ended_at`` once it ended (logout, "sign out everywhere"). Read by ``sub`` for the
  page's list; ended ones also go to ``oidc.ended_sessions``, which ``session_user`` checks. The edge's role
  reads and writes it (the default privileges of the oidc schema, migration 0011).
- ``refresh_tokens_sid``: "sign out everywhere" revokes the refresh tokens bound to the sessions it ends.
- ``identity.password_locks``: a citizen's lock of password sign-in (``identity.security``): while a row exists,
  VerifyPassword refuses. ``locked_by`` is ``citizen`` (from the security page); the row is deleted when the
  citizen lifts it after a step-up, or an operator for a level-2 account. ``identity.totp_replacements``: a
  TOTP re-enrolment begun after a step-up (the pending secret is ``identity.accounts.totp_pending``), valid
  until ``until``. The identity role's default privileges (migration 0011) cover both.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

STATEMENTS: tuple[str, ...] = (
    """
    CREATE TABLE oidc.sso_sessions (
        sid          text PRIMARY KEY,
        sub          text NOT NULL,
        started_at   timestamptz NOT NULL DEFAULT now(),
        ends_at      timestamptz NOT NULL,
        first_portal text NOT NULL DEFAULT '',
        last_portal  text NOT NULL DEFAULT '',
        source_kind  text NOT NULL DEFAULT '' CHECK (source_kind IN ('', 'device', 'address')),
        user_agent   text NOT NULL DEFAULT '' CHECK (length(user_agent) <= 80),
        amr          text[] NOT NULL DEFAULT '{}',
        ended_at     timestamptz
    )
    """,
    "CREATE INDEX sso_sessions_sub ON oidc.sso_sessions (sub, started_at DESC)",
    "CREATE INDEX refresh_tokens_sid ON oidc.refresh_tokens (sid) WHERE sid IS NOT NULL",
    """
    CREATE TABLE identity.password_locks (
        id_number  text PRIMARY KEY REFERENCES identity.accounts (id_number) ON DELETE CASCADE,
        locked_at  timestamptz NOT NULL DEFAULT now(),
        locked_by  text NOT NULL CHECK (locked_by IN ('citizen', 'operator'))
    )
    """,
    """
    CREATE TABLE identity.totp_replacements (
        id_number  text PRIMARY KEY REFERENCES identity.accounts (id_number) ON DELETE CASCADE,
        until      timestamptz NOT NULL
    )
    """,
)


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE identity.totp_replacements")
    op.execute("DROP TABLE identity.password_locks")
    op.execute("DROP INDEX oidc.refresh_tokens_sid")
    op.execute("DROP TABLE oidc.sso_sessions")
