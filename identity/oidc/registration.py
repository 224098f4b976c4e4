"""Registering clients: what an operator may create, checked before it reaches the store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509

from core.callers import AGENCY_URI_PREFIX
from core.errors import InvalidArgument, NotFound
from identity.oidc.clients import (
    AGENCY_ROLES,
    AGENCY_SCOPES,
    PORTAL_DEFAULT_SCOPES,
    PORTAL_SCOPES,
    RESOURCES,
    SECRET_AUTH,
    Client,
    new_client_id,
    new_secret,
)
from identity.oidc.store import ClientStore
from services.tls import thumbprint

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


def check_resources(resources: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Resource indicators (RFC 8707 §2) of this platform's services, each once."""
    unknown = [r for r in resources if r not in RESOURCES]
    if unknown:
        raise InvalidArgument(f"unknown resources: {', '.join(unknown)}; known: {', '.join(RESOURCES)}")
    return tuple(dict.fromkeys(resources))


def agency_resources(scopes: tuple[str, ...]) -> tuple[str, ...]:
    """The services an agency's scopes name (``vault.issue`` → the vault): its resources unless stated."""
    return tuple(dict.fromkeys(f"urn:dinhdanh:service:{s.split('.')[0]}" for s in scopes))


def portal(
    name: str,
    redirect_uris: list[str],
    post_logout_uris: list[str] | None = None,
    id_token_alg: str = "RS256",  # noqa: S107 - an algorithm name
    refresh: bool = False,
    scopes: list[str] | None = None,
    resources: list[str] | None = None,
    min_acr: int = 1,
) -> tuple[Client, str]:
    """A confidential portal client (authorization code + PKCE); returns it and its secret. ``min_acr``: the
    assurance level every sign-in there needs (2: accounts verified in person only; see assurance.py).

    It may ask for ``openid profile`` and the ``scopes`` added here (``national_id`` only when named), and
    for the ``resources`` named here only (none by default)."""
    if not name.strip() or len(name) > MAX_NAME:
        raise InvalidArgument("a portal needs a name (at most 200 characters)")
    if not redirect_uris:
        raise InvalidArgument("a portal needs at least one redirect URI")
    if id_token_alg not in ("RS256", "ES256"):
        raise InvalidArgument("ID token algorithm is RS256 or ES256")
    if min_acr not in (1, 2):
        raise InvalidArgument("the minimum assurance level (--min-acr) is 1 or 2")
    unknown = [s for s in scopes or () if s not in PORTAL_SCOPES]
    if unknown:
        raise InvalidArgument(f"unknown portal scopes: {', '.join(unknown)}; known: {', '.join(PORTAL_SCOPES)}")
    secret, digest = new_secret()
    client = Client(
        client_id=new_client_id("portal"),
        name=name.strip(),
        kind="portal",
        grant_types=("authorization_code", "refresh_token"),
        scopes=tuple(dict.fromkeys([*PORTAL_DEFAULT_SCOPES, *(scopes or ())])),
        resources=check_resources(resources or ()),
        auth_method=SECRET_AUTH,
        secret_hash=digest,
        redirect_uris=tuple(check_redirect_uri(u) for u in redirect_uris),
        post_logout_redirect_uris=tuple(check_redirect_uri(u) for u in post_logout_uris or ()),
        id_token_alg=id_token_alg,
        refresh_policy=refresh,
        min_acr=min_acr,
    )
    return client, secret


def check_roles(roles: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """An agency's roles (migration 0016: ``AGENCY_ROLES``), each once, in the order given."""
    unknown = [r for r in roles if r not in AGENCY_ROLES]
    if unknown:
        raise InvalidArgument(f"unknown agency roles: {', '.join(unknown)}; known: {', '.join(AGENCY_ROLES)}")
    return tuple(dict.fromkeys(roles))


def agency(
    name: str,
    purposes: list[str],
    scopes: list[str] | None = None,
    resources: list[str] | None = None,
    roles: list[str] | tuple[str, ...] = (),
) -> tuple[Client, str]:
    """An agency client (``client_credentials``) with the purposes it may state when it fetches; its resources
    are the services its scopes name unless ``resources`` says otherwise; ``roles`` what it is (``AGENCY_ROLES``:
    a facility, the records centre's officers, a procedural authority, an agency authorised by law)."""
    checked_roles = check_roles(roles)
    if not name.strip() or len(name) > MAX_NAME:
        raise InvalidArgument("an agency needs a name (at most 200 characters)")
    if not purposes:
        raise InvalidArgument("an agency needs at least one allowed purpose")
    unknown = set(scopes or ()) - set(AGENCY_SCOPES)
    if unknown:
        raise InvalidArgument(f"unknown agency scopes: {', '.join(sorted(unknown))}")
    granted = tuple(dict.fromkeys(scopes or AGENCY_SCOPES))
    secret, digest = new_secret()
    client = Client(
        client_id=new_client_id("agency"),
        name=name.strip(),
        kind="agency",
        grant_types=("client_credentials",),
        scopes=granted,
        resources=check_resources(resources) if resources else agency_resources(granted),
        auth_method=SECRET_AUTH,
        secret_hash=digest,
        purposes=tuple(p.strip() for p in purposes if p.strip()),
        roles=checked_roles,
    )
    return client, secret


@dataclass(frozen=True)
class IssuedCertificate:
    """An agency's client certificate as issued and recorded (RFC 8705 §2.1.2, §3.1)."""

    client_id: str
    pem: bytes
    san_uri: str
    sha256: str  # x5t#S256
    serial: str  # hex
    not_after: dt.datetime


async def issue_certificate(
    store: ClientStore, sign: Callable[[str, bytes], bytes], client_id: str, csr_pem: bytes
) -> IssuedCertificate:
    """Have the platform CA sign an agency's CSR (``sign``: ``stack.pki.PlatformCA.sign_agency_csr``, which checks
    the CSR's proof of possession and writes only the URI SAN ``spiffe://dinhdanh.gov.vn/agency/<client_id>``) and
    record it on the client as its ``tls_client_auth_san_uri`` (RFC 8705 §2.1.2) with the certificate's
    thumbprint, serial and expiry. Only for an agency: another client is ``InvalidArgument``, none ``NotFound``."""
    client = await store.get(client_id)
    if client is None:
        raise NotFound(f"no client {client_id}")
    if client.kind != "agency":
        raise InvalidArgument(f"{client_id} is a {client.kind}: only an agency gets a client certificate")
    try:
        pem = sign(client_id, csr_pem)
    except ValueError as error:
        raise InvalidArgument(f"the CSR was refused: {error}") from None
    cert = x509.load_pem_x509_certificate(pem)
    issued = IssuedCertificate(
        client_id=client_id,
        pem=pem,
        san_uri=AGENCY_URI_PREFIX + client_id,
        sha256=thumbprint(cert),
        serial=format(cert.serial_number, "x"),
        not_after=cert.not_valid_after_utc,
    )
    if not await store.set_certificate(client_id, issued.san_uri, issued.sha256, issued.serial, issued.not_after):
        raise NotFound(f"no agency {client_id}")
    return issued
