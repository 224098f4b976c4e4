"""The FAPI 2.0 Security Profile (FAPI 2.0 Security Profile, Final, February 2025) as a named client profile.

A client registered with ``profile = fapi2`` (``identity.oidc.clients.FAPI2``) is held, wherever the rule applies,
to what the profile requires of an authorization server (§5.3.2):

- §5.3.2.1: confidential clients authenticated with ``private_key_jwt`` or ``tls_client_auth`` only (a client on
  the profile registered with ``client_secret_*`` is refused, ``invalid_client``, at every endpoint where clients
  authenticate); the client assertion's ``aud`` is the issuer identifier (RFC 8414) and nothing else (item 8,
  ``assertion_audiences``); sender-constrained access tokens (DPoP, RFC 9449, or mutual TLS, RFC 8705: the part
  of identity/oidc/dpop.py and mtls.py).
- §5.3.2.2: ``response_type=code`` only; pushed authorization requests (RFC 9126) required, so the authorization
  endpoint refuses unpushed requests (``requires_par``) and a ``request_uri`` lives under 600 s (par.py:
  ``PAR_TTL``); PKCE with S256 (server.py ``RequiredS256``, for every client here); ``iss`` in the authorization
  response (RFC 9207, server.py ``Issuer``); authorization codes used once and valid for at most 60 s
  (``MAX_CODE_AGE``, checked on the code's own ``iat`` beside the sealed expiry).
- §5.4.1: PS256, ES256 or EdDSA only (``SIGNING_ALGS``): the client's assertions and the ID tokens signed for it
  (a client on the profile whose ``id_token_alg`` is RS256 is refused at registration and at use).
"""

from __future__ import annotations

from typing import Any

from identity.oidc.clients import FAPI2, KEY_AUTH, TLS_AUTH, Client

SIGNING_ALGS = ("PS256", "ES256", "EdDSA")  # §5.4.1
PLAIN_ASSERTION_ALGS = ("ES256", "PS256", "EdDSA", "RS256")  # a plain client's private_key_jwt (Core §9)
AUTH_METHODS = (KEY_AUTH, TLS_AUTH)  # §5.3.2.1 item 4
MAX_CODE_AGE = 60  # §5.3.2.2: "shall issue authorization codes with a maximum lifetime of 60 seconds"
PROFILE_ERROR = "invalid_client"


def on_profile(client: Client | None) -> bool:
    return client is not None and client.profile == FAPI2


def requires_par(client: Client) -> bool:
    """RFC 9126 §6 ``require_pushed_authorization_requests``: true for every client on the profile (§5.3.2.2)."""
    return on_profile(client)


def refusal(client: Client) -> str | None:
    """Why ``client``'s registered metadata does not meet the profile, or None (always None off the profile)."""
    if not on_profile(client):
        return None
    if client.auth_method not in AUTH_METHODS:
        return (f"a FAPI 2.0 client authenticates with private_key_jwt or tls_client_auth only, not "
                f"{client.auth_method} (FAPI 2.0 Security Profile section 5.3.2.1)")  # fmt: skip
    if client.auth_method == KEY_AUTH and not (client.jwks or client.jwks_uri):
        return "a private_key_jwt client needs registered keys (jwks or jwks_uri)"
    if "authorization_code" in client.grant_types and client.id_token_alg not in SIGNING_ALGS:
        return (f"a FAPI 2.0 client's ID tokens are signed with {', '.join(SIGNING_ALGS)}, not "
                f"{client.id_token_alg} (FAPI 2.0 Security Profile section 5.4.1)")  # fmt: skip
    return None


def assertion_algs(client: Client) -> list[str]:
    """The JWS algorithms a client's ``private_key_jwt`` assertion may use (never ``none`` nor an HMAC one)."""
    return list(SIGNING_ALGS if on_profile(client) else PLAIN_ASSERTION_ALGS)


def assertion_audiences(client: Client, issuer: str) -> list[str]:
    """The ``aud`` values a client assertion may carry: the issuer identifier only on the profile (§5.3.2.1
    item 8); the issuer or the endpoint's URL otherwise (RFC 7523 §3, Core §9)."""
    if on_profile(client):
        return [issuer]
    return [issuer, f"{issuer}/token", f"{issuer}/par"]


def audience_ok(client: Client, issuer: str, aud: Any) -> bool:
    """On the profile the issuer must be the assertion's sole audience (a string or a one-element array)."""
    if not on_profile(client):
        return True
    return aud == issuer or aud == [issuer]


def code_too_old(client: Client, claims: dict[str, Any], now: float) -> bool:
    """§5.3.2.2: a code older than ``MAX_CODE_AGE`` s (by its ``iat``) is refused for a client on the profile."""
    if not on_profile(client):
        return False
    iat = claims.get("iat")
    return not isinstance(iat, int | float) or now - iat > MAX_CODE_AGE
