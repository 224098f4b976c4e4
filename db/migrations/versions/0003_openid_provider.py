"""OpenID Provider: clients, signing keys, refresh token families, used codes, ended sessions, consents.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS oidc")
    op.execute(
        """
        CREATE TABLE oidc.clients (
            client_id            text PRIMARY KEY,
            secret_hash          bytea,
            name                 text NOT NULL,
            kind                 text NOT NULL CHECK (kind IN ('portal', 'agency')),
            redirect_uris        text[] NOT NULL DEFAULT '{}',
            post_logout_redirect_uris text[] NOT NULL DEFAULT '{}',
            grant_types          text[] NOT NULL,
            scopes               text[] NOT NULL,
            auth_method          text NOT NULL,
            jwks                 jsonb,
            id_token_alg         text NOT NULL DEFAULT 'RS256',
            purposes             text[] NOT NULL DEFAULT '{}',
            refresh_policy       boolean NOT NULL DEFAULT false,
            disabled             boolean NOT NULL DEFAULT false,
            created_at           timestamptz NOT NULL DEFAULT now(),
            updated_at           timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE oidc.signing_keys (
            kid          text PRIMARY KEY,
            alg          text NOT NULL,
            sealed_key   bytea NOT NULL,
            public_jwk   jsonb NOT NULL,
            state        text NOT NULL CHECK (state IN ('next', 'current', 'retired')),
            created_at   timestamptz NOT NULL DEFAULT now(),
            retire_after timestamptz
        )
        """
    )
    op.execute(
        """
        CREATE TABLE oidc.refresh_tokens (
            token_hash  bytea PRIMARY KEY,
            family      uuid NOT NULL,
            client_id   text NOT NULL,
            subject     text NOT NULL,
            scope       text NOT NULL,
            auth_time   bigint NOT NULL,
            acr         text NOT NULL,
            amr         text[] NOT NULL,
            code_id     text,
            expires_at  timestamptz NOT NULL,
            used_at     timestamptz,
            revoked_at  timestamptz
        )
        """
    )
    op.execute("CREATE INDEX refresh_tokens_family ON oidc.refresh_tokens (family)")
    op.execute("CREATE INDEX refresh_tokens_code ON oidc.refresh_tokens (code_id)")
    op.execute("CREATE TABLE oidc.used_codes (code_id text PRIMARY KEY, expires_at timestamptz NOT NULL)")
    op.execute("CREATE TABLE oidc.ended_sessions (sid text PRIMARY KEY, expires_at timestamptz NOT NULL)")
    op.execute(
        """
        CREATE TABLE oidc.consents (
            subject    text NOT NULL,
            client_id  text NOT NULL,
            scopes     text[] NOT NULL,
            granted_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (subject, client_id)
        )
        """
    )


def downgrade() -> None:
    for table in ("consents", "ended_sessions", "used_codes", "refresh_tokens", "signing_keys", "clients"):
        op.execute(f"DROP TABLE oidc.{table}")
