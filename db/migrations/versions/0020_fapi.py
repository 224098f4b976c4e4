"""Client metadata of issue 13, in one migration so that its parts do not race for the revision chain.

- ``profile``: ``plain`` or ``fapi2`` (the FAPI 2.0 Security Profile: pushed authorization requests,
  ``private_key_jwt`` or ``tls_client_auth``, sender-constrained tokens, PS256/ES256/EdDSA only).
- ``jwks_uri``: where a ``private_key_jwt`` client publishes its keys (RFC 7591 §2), beside ``jwks``.
- ``dpop_bound_access_tokens``: RFC 9449 §5.2, the client always presents DPoP proofs.
- ``sector_identifier`` and ``subject_type`` (OpenID Connect Core §8): pairwise subjects per sector. Existing
  portals are ``public`` (their users keep their ``sub``) until migrated (docs/privacy.md); new ones ``pairwise``.
- ``userinfo_signed_response_alg``, ``userinfo_encrypted_response_alg`` and ``_enc`` (OpenID Connect Dynamic
  Client Registration §2): a signed, and on request encrypted, userinfo response.
- ``consent_ttl``: seconds a remembered consent to this portal lasts.
- ``oidc.pushed_requests``: pushed authorization requests (RFC 9126, identity/oidc/par.py), one row per live
  ``request_uri`` (its SHA-256 digest, never the value), the client that pushed it, its parameters and its expiry
  (90 s: FAPI 2.0 §5.3.2.2 wants under 600). Every edge process resolves them; resolving deletes the row, so a
  ``request_uri`` is used once. The edge's role reads and writes it (its schema's default privileges, migration
  0011, and a grant here).
- Existing agencies whose authentication method the FAPI 2.0 Security Profile admits (``private_key_jwt`` or
  ``tls_client_auth``, §5.3.2.1) move to ``profile = 'fapi2'`` (identity/oidc/fapi.py); one with a client secret
  stays ``plain`` (moving it here would break its calls): the stated migration path of docs/fapi.md "Agencies"
  (``dinhdanh clients list`` flags it, ``dinhdanh clients set-key`` moves it, by the deadline there). Every agency
  registered from now on is ``fapi2`` (identity/oidc/registration.py).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE oidc.clients"
        " ADD COLUMN profile text NOT NULL DEFAULT 'plain' CHECK (profile IN ('plain', 'fapi2')),"
        " ADD COLUMN jwks_uri text CHECK (jwks_uri IS NULL OR jwks_uri LIKE 'https://%' OR jwks_uri LIKE 'http://%'),"
        " ADD COLUMN dpop_bound_access_tokens boolean NOT NULL DEFAULT false,"
        " ADD COLUMN sector_identifier text,"
        " ADD COLUMN subject_type text NOT NULL DEFAULT 'public' CHECK (subject_type IN ('public', 'pairwise')),"
        " ADD COLUMN userinfo_signed_response_alg text,"
        " ADD COLUMN userinfo_encrypted_response_alg text,"
        " ADD COLUMN userinfo_encrypted_response_enc text,"
        " ADD COLUMN consent_ttl integer NOT NULL DEFAULT 15552000 CHECK (consent_ttl > 0)"
    )
    # Existing rows took 'public' above (their users' sub does not change); clients registered from now on are
    # pairwise unless registered otherwise.
    op.execute("ALTER TABLE oidc.clients ALTER COLUMN subject_type SET DEFAULT 'pairwise'")
    op.execute(
        """
        CREATE TABLE oidc.pushed_requests (
            uri_hash    bytea PRIMARY KEY CHECK (length(uri_hash) = 32),
            client_id   text NOT NULL,
            params      jsonb NOT NULL,
            expires_at  timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX pushed_requests_client ON oidc.pushed_requests (client_id, expires_at)")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON oidc.pushed_requests TO dinhdanh_edge")
    op.execute(
        "UPDATE oidc.clients SET profile = 'fapi2', updated_at = now()"
        " WHERE kind = 'agency' AND auth_method IN ('private_key_jwt', 'tls_client_auth')"
    )
