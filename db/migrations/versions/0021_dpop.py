"""DPoP: the proof jti replay cache shared by every edge process (issue 13 §1).

(Stub written by the lead so that the revision chain is fixed; the owner of this part fills in upgrade().)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01
"""

from __future__ import annotations

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass
