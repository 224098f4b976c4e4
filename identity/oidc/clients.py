"""OAuth clients (RFC 6749 §2): government portals (relying parties) and agencies.

Portals are confidential clients of the authorization code flow; agencies use ``client_credentials``.
Scopes are read with the kind of token they sit in. A portal's scopes travel in *citizen* tokens (authorization
code: the citizen consented), an agency's in *client* tokens (``client_credentials``: no citizen involved); a
portal cannot use ``client_credentials`` nor an agency the code flow (``grant_types``), and every service policy
names the kind of token it admits (core.callers.Allow). So ``vault.read`` in a citizen token is "this citizen
let the portal see their papers", in an agency's token it opens no citizen's papers at all.

Each client is registered with the resources (RFC 8707 resource indicators, the platform services) it may ask
for as audiences of its access tokens; none by default.

Client secrets are 256-bit random values, so a SHA-256 digest stores them safely (SP 800-63B-4 §3.1.1.2
applies salted slow hashes to low-entropy secrets only) and checking one costs microseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin

PORTAL_SCOPES = ("openid", "profile", "address", "phone", "national_id", "offline_access", "vault.read", "vault.write",
                 "consent.manage", "log.read", "issuance.apply", "health.read")  # fmt: skip
PORTAL_DEFAULT_SCOPES = ("openid", "profile")  # the least; an operator adds the others explicitly
AGENCY_SCOPES = ("vault.read", "vault.issue", "registry.read")
# What a registered agency is, beyond a client (migration 0016, ``oidc.clients.roles``): a health facility, the
# Judicial Records Centre's officers, a procedural authority (Law on Judicial Records 2009 Art. 7(2)), an agency a
# law allows to obtain Form No. 1 (Art. 7(3)). A portal has none.
AGENCY_ROLES = ("facility", "officer", "procedural_authority", "authorised_by_law")
CLIENT_SCOPES_SUPPORTED = tuple(dict.fromkeys(PORTAL_SCOPES + AGENCY_SCOPES))
RESOURCES = tuple(f"urn:dinhdanh:service:{s}" for s in ("vault", "consent", "issuance", "registry", "log", "health"))
SECRET_AUTH = "client_secret_basic"  # noqa: S105 - a method name
KEY_AUTH = "private_key_jwt"
TLS_AUTH = "tls_client_auth"  # RFC 8705 §2.1: PKI mutual-TLS client authentication
PLAIN = "plain"  # the client profiles (migration 0020)
FAPI2 = "fapi2"  # FAPI 2.0 Security Profile: required for agencies, available to portals


def new_client_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


def new_secret() -> tuple[str, bytes]:
    """A fresh secret and its stored digest."""
    secret = secrets.token_urlsafe(32)
    return secret, digest(secret)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    name: str
    kind: str  # "portal" or "agency"
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    auth_method: str
    secret_hash: bytes | None = None
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    jwks: dict[str, Any] | None = None
    id_token_alg: str = "RS256"  # noqa: S105 - an algorithm name
    purposes: tuple[str, ...] = ()
    refresh_policy: bool = False  # refresh tokens without asking for offline_access
    resources: tuple[str, ...] = ()  # RFC 8707 resource indicators this client may ask for
    min_acr: int = 1  # the assurance level every sign-in of this client needs (Core §2 acr; 2: verified in person)
    disabled: bool = False
    tls_client_auth_san_uri: str | None = None  # RFC 8705 §2.1.2: the URI SAN of its platform-issued certificate
    cert_sha256: str | None = None  # x5t#S256 (RFC 8705 §3.1) of the certificate issued last
    roles: tuple[str, ...] = ()  # AGENCY_ROLES an agency is registered with (migration 0016); a portal has none
    # issue 13 (migration 0020)
    profile: str = PLAIN  # PLAIN or FAPI2 (the FAPI 2.0 Security Profile, identity/oidc/fapi.py)
    jwks_uri: str | None = None  # RFC 7591 §2: the client's published keys, for private_key_jwt
    dpop_bound_access_tokens: bool = False  # RFC 9449 §5.2
    sector_identifier: str | None = None  # OIDC Core §8.1: the sector its pairwise subjects are computed for
    subject_type: str = "pairwise"  # "public" or "pairwise" (OIDC Core §8)
    userinfo_signed_response_alg: str | None = None  # OIDC Registration §2
    userinfo_encrypted_response_alg: str | None = None
    userinfo_encrypted_response_enc: str | None = None
    consent_ttl: int = 180 * 86400  # seconds a remembered consent to this client lasts
    public_sub_until: int | None = None  # a switched portal's previous_sub window ends (migration 0022)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    # -- authlib ClientMixin ---------------------------------------------------------------

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # redirect_uri is always required, and must match exactly

    def get_allowed_scope(self, scope: str) -> str:
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string match (OAuth 2.0 Security BCP, RFC 9700 §4.1.3)."""
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret_hash is None:
            return False
        return hmac.compare_digest(digest(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """The registered method; and ``tls_client_auth`` (RFC 8705 §2.1) besides it once the platform CA issued
        the client a certificate (``tls_client_auth_san_uri``): possession of that certificate's key is as strong
        a credential as the registered one, and the agency need not pick one for every use."""
        if self.disabled:
            return False
        return method == self.auth_method or (method == TLS_AUTH and self.tls_client_auth_san_uri is not None)

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return not self.disabled and grant_type in self.grant_types
