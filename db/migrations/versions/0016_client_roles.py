"""Agencies' roles (issue 11): what a registered agency is, beyond being a client.

``oidc.clients.roles`` lists the roles an operator registered for an agency (``dinhdanh clients add-agency
--role …``); a service that opens an RPC to agencies by certificate reads the caller's roles and refuses one
without the role the RPC needs (PERMISSION_DENIED):

- ``facility``: a health facility (cơ sở khám, chữa bệnh) that pushes visit records into health books;
- ``officer``: the Judicial Records Centre's officers, who decide on criminal-record dossiers;
- ``procedural_authority``: an investigation body, procuracy or court (Law on Judicial Records Art. 7(2)),
  which may obtain Form No. 2 about a citizen;
- ``authorised_by_law``: a state agency a law allows to obtain Form No. 1 about a citizen (Art. 7(3)).

Portals have none (the CHECK). The roles are readable by the issuance and health services (migrations 0018,
0019 grant them the column) and, like every column, by the edge.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

ROLES = ("facility", "officer", "procedural_authority", "authorised_by_law")


def upgrade() -> None:
    allowed = ", ".join(f"'{role}'" for role in ROLES)
    op.execute(
        "ALTER TABLE oidc.clients ADD COLUMN roles text[] NOT NULL DEFAULT '{}'"
        f" CHECK (roles <@ ARRAY[{allowed}]::text[] AND (kind = 'agency' OR roles = '{{}}'))"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE oidc.clients DROP COLUMN roles")
