"""The citizen's security page: sessions, temporary password lock (issue 13 §5).

(Stub written by the lead so that the revision chain is fixed; the owner of this part fills in upgrade().)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-01
"""

from __future__ import annotations

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass
