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
