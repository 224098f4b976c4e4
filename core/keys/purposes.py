"""The purposes a key serves, each its own key material (NIST SP 800-57 Part 1 Rev. 5 §5.2: one key, one use).

Which process holds which purpose is decided where processes are deployed (``stack/secrets.py``, the
Kubernetes Secrets), never here.
"""

from __future__ import annotations

TOTP_SECRET = "totp-secret"  # noqa: S105 - a purpose name: TOTP secrets at rest (identity)
LOGIN_TICKET = "login-ticket"  # the password step's sealed ticket (identity)
AUDIT_PSEUDONYM = "audit-pseudonym"  # keyed hashes naming citizens in audit.events (identity, vault)
OIDC_SUBJECT = "oidc-subject"  # sub ↔ ID number, AES-SIV (edge, registry, vault)
OIDC_SIGNING_KEY = "oidc-signing-key"  # seals the OP's private signing keys in oidc.signing_keys (edge)
SSO_SESSION = "sso-session"  # the SSO session cookie (edge)
LOGIN_FLOW = "login-flow"  # the pending sign-in cookie (edge)
AUTHORIZATION_CODE = "authorization-code"  # sealed authorization codes (edge)
DEVICE_ID = "device-id"  # device ids the edge mints and seals (services/edge/sources.py)
VAULT_OWNER = "vault-owner"  # HMAC owner references (vault)
VAULT_MASTER = "vault-master"  # wraps every citizen's KEK (vault)
CONSENT_SIGNING = "consent-signing"  # the P-256 scalar seed of the key signing consent artefacts and statuses (consent)
LOG_SIGNING = "log-signing"  # the Ed25519 seed of the transparency log's checkpoint key (log)
ISSUANCE_SIGNING = "issuance-signing"  # P-256 seed: the certificate issuer (SD-JWT VC, QR, status list) (issuance)
ISSUANCE_DOCUMENT = "issuance-document"  # P-256 seed: the PAdES document-signing key, certified by the CA (issuance)
HEALTH_SIGNING = "health-signing"  # P-256 seed: the health book's signed extracts and their delivery (health)
HOLDER_KEY = "holder-key"  # derives each citizen's P-256 holder key for key-bound presentations (portal)

SIZES: dict[str, int] = {
    TOTP_SECRET: 32,
    LOGIN_TICKET: 32,
    AUDIT_PSEUDONYM: 32,
    OIDC_SUBJECT: 64,  # AES-SIV-256: a MAC key and an encryption key (RFC 5297 §2.2)
    OIDC_SIGNING_KEY: 32,
    SSO_SESSION: 32,
    LOGIN_FLOW: 32,
    AUTHORIZATION_CODE: 32,
    DEVICE_ID: 32,
    VAULT_OWNER: 32,
    VAULT_MASTER: 32,
    CONSENT_SIGNING: 32,
    LOG_SIGNING: 32,
    ISSUANCE_SIGNING: 32,
    ISSUANCE_DOCUMENT: 32,
    HEALTH_SIGNING: 32,
    HOLDER_KEY: 32,
}
