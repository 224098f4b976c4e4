"""Registering clients: what an operator may create, checked before it reaches the store."""

from __future__ import annotations

from urllib.parse import urlsplit

from core.errors import InvalidArgument
from identity.oidc.clients import AGENCY_SCOPES, PORTAL_SCOPES, SECRET_AUTH, Client, new_client_id, new_secret

LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
MAX_NAME = 200


def check_redirect_uri(uri: str) -> str:
    """Absolute, no fragment, https — or http on loopback for development (RFC 9700 §2.1, RFC 8252 §7.3)."""
    parts = urlsplit(uri)
    if parts.fragment or not parts.netloc or parts.scheme not in ("https", "http"):
        raise InvalidArgument(f"redirect URI must be an absolute https URL without a fragment: {uri!r}")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise InvalidArgument(f"http redirect URIs are allowed on loopback only: {uri!r}")
    return uri


def portal(
    name: str,
    redirect_uris: list[str],
    post_logout_uris: list[str] | None = None,
    id_token_alg: str = "RS256",  # noqa: S107 - an algorithm name
    refresh: bool = False,
) -> tuple[Client, str]:
    """A confidential portal client (authorization code + PKCE); returns it and its secret."""
    if not name.strip() or len(name) > MAX_NAME:
        raise InvalidArgument("a portal needs a name (at most 200 characters)")
    if not redirect_uris:
        raise InvalidArgument("a portal needs at least one redirect URI")
    if id_token_alg not in ("RS256", "ES256"):
        raise InvalidArgument("ID token algorithm is RS256 or ES256")
    secret, digest = new_secret()
    client = Client(
        client_id=new_client_id("portal"),
        name=name.strip(),
        kind="portal",
        grant_types=("authorization_code", "refresh_token"),
        scopes=PORTAL_SCOPES,
        auth_method=SECRET_AUTH,
        secret_hash=digest,
        redirect_uris=tuple(check_redirect_uri(u) for u in redirect_uris),
        post_logout_redirect_uris=tuple(check_redirect_uri(u) for u in post_logout_uris or ()),
        id_token_alg=id_token_alg,
        refresh_policy=refresh,
    )
    return client, secret


def agency(name: str, purposes: list[str], scopes: list[str] | None = None) -> tuple[Client, str]:
    """An agency client (``client_credentials``) with the purposes it may state when it fetches."""
    if not name.strip() or len(name) > MAX_NAME:
        raise InvalidArgument("an agency needs a name (at most 200 characters)")
    if not purposes:
        raise InvalidArgument("an agency needs at least one allowed purpose")
    unknown = set(scopes or ()) - set(AGENCY_SCOPES)
    if unknown:
        raise InvalidArgument(f"unknown agency scopes: {', '.join(sorted(unknown))}")
    secret, digest = new_secret()
    client = Client(
        client_id=new_client_id("agency"),
        name=name.strip(),
        kind="agency",
        grant_types=("client_credentials",),
        scopes=tuple(scopes or AGENCY_SCOPES),
        auth_method=SECRET_AUTH,
        secret_hash=digest,
        purposes=tuple(p.strip() for p in purposes if p.strip()),
    )
    return client, secret
