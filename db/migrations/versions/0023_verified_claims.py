"""Verified claims: in-person verification evidence (issue 13 §3).

(Stub written by the lead so that the revision chain is fixed; the owner of this part fills in upgrade().)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01
"""

from __future__ import annotations

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass
