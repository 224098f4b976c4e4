"""One database role per service, each granted its own schemas only (least privilege, issue 9 item 5).

The roles are created without LOGIN; whoever deploys gives each one a password and LOGIN (the local stack
does so at every start, ``stack/postgres.py``; in Kubernetes the operator, see k8s/README.md). Migrations
keep running as the owner of the schemas, whose default privileges extend the same grants to the tables
later migrations create there.

- ``dinhdanh_registry``: reads ``registry.*``; reads the revoked-token list and the key states (not the
  sealed private keys) to check bearer tokens.
- ``dinhdanh_identity``: ``identity.*``; appends to ``audit.events`` (never reads it back).
- ``dinhdanh_vault``: ``vault.*``; appends to ``audit.events``; reads agencies' names and public keys in
  ``oidc.clients`` (not their secret hashes), the revoked-token list and the key states.
- ``dinhdanh_edge``: ``oidc.*`` (the OpenID Provider's own schema), nothing else.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ROLES = ("dinhdanh_registry", "dinhdanh_identity", "dinhdanh_vault", "dinhdanh_edge")
READ_WRITE = "SELECT, INSERT, UPDATE, DELETE"
TOKEN_CHECKS = (
    "GRANT USAGE ON SCHEMA oidc TO {role}",
    "GRANT SELECT ON oidc.revoked_tokens TO {role}",
    "GRANT SELECT (kid, alg, state, retire_after) ON oidc.signing_keys TO {role}",
)
AUDIT_APPEND = (
    "GRANT USAGE ON SCHEMA audit TO {role}",
    "GRANT INSERT ON audit.events TO {role}",
)


def _own_schema(schema: str, privileges: str) -> tuple[str, ...]:
    return (
        f"GRANT USAGE ON SCHEMA {schema} TO {{role}}",
        f"GRANT {privileges} ON ALL TABLES IN SCHEMA {schema} TO {{role}}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT {privileges} ON TABLES TO {{role}}",
    )


GRANTS: dict[str, tuple[str, ...]] = {
    "dinhdanh_registry": (*_own_schema("registry", "SELECT"), *TOKEN_CHECKS),
    "dinhdanh_identity": (*_own_schema("identity", READ_WRITE), *AUDIT_APPEND),
    "dinhdanh_vault": (
        *_own_schema("vault", READ_WRITE),
        *AUDIT_APPEND,
        *TOKEN_CHECKS,
        "GRANT SELECT (client_id, name, kind, jwks, disabled) ON oidc.clients TO {role}",
    ),
    "dinhdanh_edge": _own_schema("oidc", READ_WRITE),
}


def upgrade() -> None:
    for role in ROLES:
        op.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}')"
            f" THEN CREATE ROLE {role} NOLOGIN; END IF; END $$"
        )
    for role, statements in GRANTS.items():
        for statement in statements:
            op.execute(statement.format(role=role))


def downgrade() -> None:
    for role in ROLES:
        op.execute(f"DROP OWNED BY {role}")  # its privileges and default privileges in this database
        op.execute(f"DROP ROLE {role}")
