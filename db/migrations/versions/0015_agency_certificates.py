"""Agencies' client certificates (RFC 8705).

An agency's X.509 client certificate is issued by the platform CA for the agency's own key
(``dinhdanh clients issue-cert``); the client's registration records what it was issued:

- ``oidc.clients.tls_client_auth_san_uri``: the certificate's URI SAN ``spiffe://dinhdanh.gov.vn/agency/<client_id>``,
  the registration metadata of RFC 8705 §2.1.2; a client that has one may authenticate with ``tls_client_auth``
  (a certificate from the platform CA naming exactly this URI, over the edge's mutual-TLS port). Unique: one
  URI names one client.
- ``cert_sha256``: the last issued certificate's RFC 8705 §3.1 ``x5t#S256`` (base64url SHA-256 of its DER),
  ``cert_serial`` (hex) and ``cert_not_after``: what the operator sees in ``dinhdanh clients list``.

Only the registered certificate counts: the edge's ``tls_client_auth`` and its certificate-bound tokens for an
agency (``identity/oidc/mtls.py``, ``server.py``) and the consent service's agency RPCs (``consent.service``)
require the presented certificate's ``x5t#S256`` to equal ``cert_sha256``, so a reissue retires the previous
certificate at once (it is still from the platform CA and names the same URI until it expires).

The column-level SELECT grants other roles hold on ``oidc.clients`` (the vault's ``client_id, name, kind, jwks,
disabled``, the consent service's the same and ``purposes``, migration 0013, the log's ``client_id, name,
kind``) name their columns, so new columns change nothing for them, except the one granted here: the consent
service also reads ``cert_sha256`` (the certificate an agency must call it with). The edge has the whole
``oidc`` schema.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE oidc.clients"
        " ADD COLUMN tls_client_auth_san_uri text UNIQUE"
        " CHECK (tls_client_auth_san_uri IS NULL OR tls_client_auth_san_uri = 'spiffe://dinhdanh.gov.vn/agency/'"
        " || client_id),"
        " ADD COLUMN cert_sha256 text,"
        " ADD COLUMN cert_serial text,"
        " ADD COLUMN cert_not_after timestamptz"
    )
    op.execute("GRANT SELECT (cert_sha256) ON oidc.clients TO dinhdanh_consent")  # the role of migration 0013


def downgrade() -> None:
    op.execute("REVOKE SELECT (cert_sha256) ON oidc.clients FROM dinhdanh_consent")
    op.execute(
        "ALTER TABLE oidc.clients DROP COLUMN cert_not_after, DROP COLUMN cert_serial, DROP COLUMN cert_sha256,"
        " DROP COLUMN tls_client_auth_san_uri"
    )
