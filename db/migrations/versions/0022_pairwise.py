"""Pairwise subjects: sector identifiers and subject types of portals, remembered-consent lifetime (issue 13 §2).

(Stub written by the lead so that the revision chain is fixed; the owner of this part fills in upgrade().)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01
"""

from __future__ import annotations

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass
