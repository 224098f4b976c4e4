"""Identity throttling: attempts are charged before they are checked, and an address is never familiar.

``identity.throttle.pending_until`` is the lease an admitted attempt holds on its own counter (this source
on this account, this factor) while the verifier runs: at most one check at a time per account, source and
factor (issue 9, SP 800-63B-4 §3.2.2). A lease ends when its attempt is settled, or by itself if the process
checking it dies.

Sources remembered as familiar from a bare IP address (``ip:…``) are forgotten: only a device id sealed by
the edge may make a source familiar from now on.

Revision ID: 0008
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE identity.throttle ADD COLUMN pending_until timestamptz")
    op.execute("DELETE FROM identity.known_sources WHERE source LIKE 'ip:%'")


def downgrade() -> None:
    op.execute("ALTER TABLE identity.throttle DROP COLUMN pending_until")
