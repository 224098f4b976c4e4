"""The transparency log: ``audit.events`` feeds it, the ``tlog`` schema holds it (issue 10 item 6).

- ``audit.events.xid``: the id of the transaction that inserted the event (``pg_current_xact_id()``, filled in
  by default, so no writer changes). Events commit out of id order; the sequencer takes every visible event
  not yet sequenced whose transaction is at or above ``tlog.state.scan_xid``, and raises that floor to its
  snapshot's ``xmin`` after a scan that found less than a batch: every transaction below it had ended when
  the snapshot was taken, so its events were seen.
- ``tlog.entries``: one row per leaf, ``idx`` its index in the tree (dense from 0), ``event_id`` the event it
  came from (unique: the "sequenced" marker, audit.events is never updated), the leaf bytes and their RFC 9162
  leaf hash, and the pseudonymous subject (for a citizen's listing; it is also in the leaf).
- ``tlog.nodes``: the hashes of the full subtrees above the leaves, ``node(level, idx)`` as audit/merkle.py
  names them (level ≥ 1), written with the leaves that complete them, so proofs need no recomputation.
- ``tlog.checkpoints``: every signed checkpoint (C2SP tlog-checkpoint signed note) by tree size.
- ``tlog.state``: one row: the tree size, the size whose tiles are in S3, the scan floor.

``dinhdanh_log``: reads ``audit.events`` (never writes it); appends to ``tlog.entries``, ``tlog.nodes`` and
``tlog.checkpoints`` (no UPDATE or DELETE: the log is append-only for its own role too) and updates
``tlog.state``; reads the agencies' names in ``oidc.clients``, the revoked-token list and the key states.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ROLE = "dinhdanh_log"


def upgrade() -> None:
    op.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}')"
        f" THEN CREATE ROLE {ROLE} NOLOGIN; END IF; END $$"
    )
    op.execute("ALTER TABLE audit.events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id()")
    op.execute("CREATE INDEX events_xid ON audit.events (xid)")
    op.execute("CREATE SCHEMA tlog")
    op.execute(
        """
        CREATE TABLE tlog.entries (
            idx       bigint PRIMARY KEY CHECK (idx >= 0),
            event_id  bigint NOT NULL UNIQUE,
            subject   text,
            leaf      bytea NOT NULL,
            leaf_hash bytea NOT NULL CHECK (length(leaf_hash) = 32)
        )
        """
    )
    op.execute("CREATE INDEX entries_subject ON tlog.entries (subject, idx DESC) WHERE subject IS NOT NULL")
    op.execute(
        """
        CREATE TABLE tlog.nodes (
            level smallint NOT NULL CHECK (level BETWEEN 1 AND 63),
            idx   bigint NOT NULL CHECK (idx >= 0),
            hash  bytea NOT NULL CHECK (length(hash) = 32),
            PRIMARY KEY (level, idx)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE tlog.checkpoints (
            size      bigint PRIMARY KEY CHECK (size >= 0),
            root_hash bytea NOT NULL CHECK (length(root_hash) = 32),
            note      text NOT NULL,
            at        timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE tlog.state (
            one        boolean PRIMARY KEY DEFAULT true CHECK (one),
            size       bigint NOT NULL DEFAULT 0,
            tiles_size bigint NOT NULL DEFAULT 0,
            scan_xid   xid8 NOT NULL DEFAULT '0'
        )
        """
    )
    op.execute("INSERT INTO tlog.state DEFAULT VALUES")
    for statement in (
        "GRANT USAGE ON SCHEMA audit TO {role}",
        "GRANT SELECT ON audit.events TO {role}",
        "GRANT USAGE ON SCHEMA tlog TO {role}",
        "GRANT SELECT, INSERT ON tlog.entries, tlog.nodes, tlog.checkpoints TO {role}",  # append-only
        "GRANT SELECT, UPDATE ON tlog.state TO {role}",
        "GRANT USAGE ON SCHEMA oidc TO {role}",
        "GRANT SELECT ON oidc.revoked_tokens TO {role}",
        "GRANT SELECT (kid, alg, state, retire_after) ON oidc.signing_keys TO {role}",
        "GRANT SELECT (client_id, name, kind) ON oidc.clients TO {role}",
    ):
        op.execute(statement.format(role=ROLE))


def downgrade() -> None:
    op.execute("DROP SCHEMA tlog CASCADE")
    op.execute("DROP INDEX audit.events_xid")
    op.execute("ALTER TABLE audit.events DROP COLUMN xid")
    op.execute(f"DROP OWNED BY {ROLE}")
    op.execute(f"DROP ROLE {ROLE}")
