"""Foundation: population registry, citizen accounts, throttling, audit events.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA registry")
    op.execute("CREATE SCHEMA identity")
    op.execute("CREATE SCHEMA audit")
    op.execute(
        """
        CREATE TABLE registry.citizens (
            id_number           char(12) PRIMARY KEY,
            full_name           text NOT NULL,
            date_of_birth       date NOT NULL,
            sex                 text NOT NULL CHECK (sex IN ('male', 'female')),
            nationality         text NOT NULL,
            ethnicity           text NOT NULL,
            religion            text NOT NULL,
            hometown            text NOT NULL,
            permanent_street    text NOT NULL,
            permanent_commune   text NOT NULL,
            permanent_province  text NOT NULL,
            current_street      text NOT NULL,
            current_commune     text NOT NULL,
            current_province    text NOT NULL,
            id_card_issue_date  date NOT NULL,
            id_card_issue_place text NOT NULL,
            phone               text NOT NULL
        )
        """
    )
    op.execute(
        """
        CREATE TABLE identity.accounts (
            id_number        char(12) PRIMARY KEY,
            password_hash    text NOT NULL,
            totp_secret      bytea,
            totp_pending     bytea,
            totp_last_step   bigint NOT NULL DEFAULT 0,
            assurance_level  smallint NOT NULL DEFAULT 1 CHECK (assurance_level IN (1, 2)),
            verification_note text,
            activated_at     timestamptz NOT NULL DEFAULT now(),
            updated_at       timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # One row per throttling counter: (account, source, factor). Account-wide counters use the
    # sources '*all' and '*unfamiliar'; source-wide counters use the account '*'.
    op.execute(
        """
        CREATE TABLE identity.throttle (
            account       text NOT NULL,
            source        text NOT NULL,
            factor        text NOT NULL,
            failures      integer NOT NULL,
            last_failure  timestamptz NOT NULL,
            PRIMARY KEY (account, source, factor)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE identity.known_sources (
            account       char(12) NOT NULL,
            source        text NOT NULL,
            last_success  timestamptz NOT NULL,
            PRIMARY KEY (account, source)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE audit.events (
            id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at        timestamptz NOT NULL DEFAULT now(),
            actor     text NOT NULL,
            action    text NOT NULL,
            outcome   text NOT NULL,
            subject   text,
            source    text,
            detail    jsonb NOT NULL DEFAULT '{}'
        )
        """
    )
    op.execute("CREATE INDEX events_subject_at ON audit.events (subject, at)")


def downgrade() -> None:
    op.execute("DROP SCHEMA audit CASCADE")
    op.execute("DROP SCHEMA identity CASCADE")
    op.execute("DROP SCHEMA registry CASCADE")
