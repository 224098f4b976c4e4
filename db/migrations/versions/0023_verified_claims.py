"""Verified claims (issue 13 §3): the record of each in-person verification of a citizen.

``identity.verifications`` holds one row per in-person verification an operator recorded with
``dinhdanh accounts verify-in-person`` (identity ``SetAssuranceLevel`` to level 2), in the same transaction as
the account's level: who verified (``verifier``, the operator's certificate name), where (``place``, the note),
how (``check_methods``, OpenID Identity Assurance Schema Definition 1.0 check methods: ``vpip`` the physical
card examined in person, ``pvp`` the person compared with the card's photo), the document checked (``idcard``:
the chip citizen identity card, CCCD, whose number is the personal ID number; its issuer and date of issue from
the population registry) and when (``verified_at``). The OpenID Provider returns the newest row of a level-2
account as the ``evidence`` of its ``verified_claims`` (identity/oidc/verified_claims.py, docs/verified-claims.md).

The table is an append-only record: ``dinhdanh_identity`` may read and insert, never change or delete a row.
``oidc.refresh_tokens.userinfo_claims``: the userinfo member of the grant's ``claims`` parameter (OpenID Connect
Core §5.5), so that an access token made by a refresh asks userinfo for what the first one did.

Accounts verified before this migration get a row from what was kept (``verification_note`` as the place, the
account's last update as the time, no verifier on record).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

ROLE = "dinhdanh_identity"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE identity.verifications (
            txn              uuid PRIMARY KEY,
            id_number        char(12) NOT NULL REFERENCES identity.accounts (id_number),
            assurance_level  smallint NOT NULL CHECK (assurance_level = 2),
            verifier         text,
            place            text NOT NULL,
            check_methods    text[] NOT NULL CHECK (cardinality(check_methods) > 0),
            document_type    text NOT NULL CHECK (document_type IN ('idcard', 'passport')),
            document_number  text NOT NULL,
            document_issuer  text NOT NULL,
            document_issued  date,
            verified_at      timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX verifications_account ON identity.verifications (id_number, verified_at DESC)")
    op.execute(
        "INSERT INTO identity.verifications (txn, id_number, assurance_level, verifier, place, check_methods,"
        " document_type, document_number, document_issuer, verified_at)"
        " SELECT gen_random_uuid(), id_number, 2, NULL, coalesce(verification_note, ''), '{vpip,pvp}', 'idcard',"
        " id_number, '', updated_at FROM identity.accounts WHERE assurance_level = 2"
    )
    # The schema's default privileges (migration 0011) would grant UPDATE and DELETE too: the record is append-only.
    op.execute(f"REVOKE ALL ON identity.verifications FROM {ROLE}")
    op.execute(f"GRANT SELECT, INSERT ON identity.verifications TO {ROLE}")
    op.execute("ALTER TABLE oidc.refresh_tokens ADD COLUMN userinfo_claims jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE oidc.refresh_tokens DROP COLUMN userinfo_claims")
    op.execute("DROP TABLE identity.verifications")
