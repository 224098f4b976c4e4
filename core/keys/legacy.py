"""The one-time split of the single master key of earlier releases (``var/secrets/identity.key``).

Earlier releases derived every key from one 32-byte master with HKDF-SHA-256 (RFC 5869, no salt, info
``dinhdanh/<label>``). To keep what they sealed readable (TOTP secrets, sealed signing keys, ``sub``
values, vault KEKs, audit pseudonyms), each purpose's key is derived once, the same way, at the first
start of this release; the master is then withdrawn and no process receives it again.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.keys import purposes as p

LABELS: dict[str, tuple[str, ...]] = {  # purpose → the HKDF labels whose outputs it concatenates (purposes
    # new in this release, such as ``device-id``, had no key before: they are random)
    p.TOTP_SECRET: ("totp-secret",),
    p.LOGIN_TICKET: ("login-ticket",),
    p.AUDIT_PSEUDONYM: ("audit-pseudonym",),
    p.OIDC_SUBJECT: ("oidc-subject", "oidc-subject-mac"),
    p.OIDC_SIGNING_KEY: ("oidc-signing-key",),
    p.SSO_SESSION: ("oidc/sso-session",),
    p.LOGIN_FLOW: ("oidc/login-flow",),
    p.AUTHORIZATION_CODE: ("oidc/authorization-code",),
    p.VAULT_OWNER: ("vault-owner",),
    p.VAULT_MASTER: ("vault-master",),
}


def derive(master: bytes, purpose: str) -> bytes:
    """The key ``purpose`` had under the old master key."""
    return b"".join(
        HKDF(hashes.SHA256(), 32, salt=None, info=f"dinhdanh/{label}".encode()).derive(master)
        for label in LABELS[purpose]
    )
