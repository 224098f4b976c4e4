"""Passkeys: WebAuthn credentials of citizens (issue 13 §4).

(Stub written by the lead so that the revision chain is fixed; the owner of this part fills in upgrade().)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-01
"""

from __future__ import annotations

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass
