"""Registering clients: what an operator may create, checked before it reaches the store."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from core.callers import AGENCY_URI_PREFIX
from core.errors import InvalidArgument, NotFound
from identity.oidc import client_keys, fapi, userinfo_jwt
from identity.oidc.clients import (
    AGENCY_ROLES,
    AGENCY_SCOPES,
    FAPI2,
    KEY_AUTH,
    PLAIN,
    PORTAL_DEFAULT_SCOPES,
    PORTAL_SCOPES,
    RESOURCES,
    SECRET_AUTH,
    TLS_AUTH,
    Client,
    new_client_id,
    new_secret,
)
from identity.oidc.store import ClientStore
from identity.oidc.subjects import PAIRWISE, SUBJECT_TYPES, SectorError, sector_for
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
    id_token_alg: str | None = None,  # RS256, or ES256 (the default on the FAPI 2.0 profile)
    refresh: bool = False,
    scopes: list[str] | None = None,
    resources: list[str] | None = None,
    min_acr: int = 1,
    sector: str | None = None,
    subject_type: str = PAIRWISE,
    consent_ttl: int | None = None,
    *,
    profile: str = PLAIN,
    jwks_uri: str | None = None,
    jwks: dict[str, Any] | None = None,
) -> tuple[Client, str]:
    """A confidential portal client (authorization code + PKCE); returns it and its secret. ``min_acr``: the
    assurance level every sign-in there needs (2: accounts verified in person only; see assurance.py).

    Subjects are pairwise by default (OpenID Connect Core §8.1): ``sector`` is the portal's sector identifier (a
    host; portals registered under one sector share their citizens' ``sub``), else the one host of all its
    redirect URIs; it is recorded, so that adding a redirect URI later never changes a citizen's ``sub``.
    ``consent_ttl``: seconds a remembered consent to it lasts (default 180 days).

    It may ask for ``openid profile`` and the ``scopes`` added here (``national_id`` only when named), and
    for the ``resources`` named here only (none by default)."""
    if not name.strip() or len(name) > MAX_NAME:
        raise InvalidArgument("a portal needs a name (at most 200 characters)")
    if not redirect_uris:
        raise InvalidArgument("a portal needs at least one redirect URI")
    if profile not in (PLAIN, FAPI2):
        raise InvalidArgument("the client profile is plain or fapi2")
    id_token_alg = id_token_alg or ("ES256" if profile == FAPI2 else "RS256")
    if id_token_alg not in ("RS256", "ES256"):
        raise InvalidArgument("ID token algorithm is RS256 or ES256")
    if min_acr not in (1, 2):
        raise InvalidArgument("the minimum assurance level (--min-acr) is 1 or 2")
    unknown = [s for s in scopes or () if s not in PORTAL_SCOPES]
    if unknown:
        raise InvalidArgument(f"unknown portal scopes: {', '.join(unknown)}; known: {', '.join(PORTAL_SCOPES)}")
    if subject_type not in SUBJECT_TYPES:
        raise InvalidArgument("the subject type is public or pairwise (OpenID Connect Core section 8)")
    if consent_ttl is not None and not 0 < consent_ttl <= 2**31 - 1:
        raise InvalidArgument("a remembered consent lasts a positive number of seconds")
    checked = tuple(check_redirect_uri(u) for u in redirect_uris)
    try:
        sector_identifier = sector_for(checked, sector) if subject_type == PAIRWISE or sector else None
    except SectorError as error:
        raise InvalidArgument(str(error)) from None
    keyed = profile == FAPI2 or jwks_uri is not None or jwks is not None  # private_key_jwt, no secret
    secret, digest = ("", None) if keyed else new_secret()
    client = Client(
        client_id=new_client_id("portal"),
        name=name.strip(),
        kind="portal",
        grant_types=("authorization_code", "refresh_token"),
        scopes=tuple(dict.fromkeys([*PORTAL_DEFAULT_SCOPES, *(scopes or ())])),
        resources=check_resources(resources or ()),
        auth_method=KEY_AUTH if keyed else SECRET_AUTH,
        secret_hash=digest,
        jwks=check_client_jwks(jwks) if jwks is not None else None,
        jwks_uri=check_jwks_uri(jwks_uri) if jwks_uri else None,
        profile=profile,
        redirect_uris=checked,
        post_logout_redirect_uris=tuple(check_redirect_uri(u) for u in post_logout_uris or ()),
        id_token_alg=id_token_alg,
        refresh_policy=refresh,
        min_acr=min_acr,
        sector_identifier=sector_identifier,
        subject_type=subject_type,
        **({"consent_ttl": consent_ttl} if consent_ttl is not None else {}),
    )
    return _on_profile(client), secret


def _on_profile(client: Client) -> Client:
    """A client on the FAPI 2.0 profile meets it from registration on (fapi.py: an RS256 ``id_token_alg`` or a
    client secret is refused here as at use)."""
    why = fapi.refusal(client)
    if why is not None:
        raise InvalidArgument(why)
    return client


def check_jwks_uri(uri: str) -> str:
    """RFC 7591 §2 ``jwks_uri``: an absolute https URL (http on loopback, for development), no fragment."""
    parts = urlsplit(uri)
    if parts.fragment or not parts.netloc or parts.scheme not in ("https", "http") or len(uri) > 2000:
        raise InvalidArgument(f"jwks_uri must be an absolute https URL without a fragment: {uri!r}")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise InvalidArgument(f"an http jwks_uri is allowed on loopback only: {uri!r}")
    return uri


def check_client_jwks(jwks: Any) -> dict[str, Any]:
    """A client's registered public keys (RFC 7591 §2 ``jwks``) for ``private_key_jwt``."""
    try:
        return client_keys.public_key_set(jwks)
    except ValueError as error:
        raise InvalidArgument(f"jwks: {error}") from None


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
    *,
    profile: str | None = None,
    jwks_uri: str | None = None,
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
    # FAPI 2.0 (fapi.py): an agency with a key (jwks_uri: private_key_jwt) is on the profile by default; one
    # registered with --profile fapi2 and no key authenticates with the certificate issue-cert gives it
    # (tls_client_auth, RFC 8705 §2.1); one without either keeps a client secret (plain) until it has one.
    profile = profile or (FAPI2 if jwks_uri else PLAIN)
    if profile not in (PLAIN, FAPI2):
        raise InvalidArgument("the client profile is plain or fapi2")
    method = KEY_AUTH if jwks_uri else TLS_AUTH if profile == FAPI2 else SECRET_AUTH
    secret, digest = new_secret() if method == SECRET_AUTH else ("", None)
    client = Client(
        client_id=new_client_id("agency"),
        name=name.strip(),
        kind="agency",
        grant_types=("client_credentials",),
        scopes=granted,
        resources=check_resources(resources) if resources else agency_resources(granted),
        auth_method=method,
        secret_hash=digest,
        purposes=tuple(p.strip() for p in purposes if p.strip()),
        roles=checked_roles,
        profile=profile,
        jwks_uri=check_jwks_uri(jwks_uri) if jwks_uri else None,
    )
    return _on_profile(client), secret


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


def userinfo_response(client: Client, signed_alg: str | None = None, encrypted_alg: str | None = None,
                      encrypted_enc: str | None = None, encryption_jwks: Any = None) -> Client:  # fmt: skip
    """A portal's signed and/or encrypted userinfo responses (OpenID Connect Dynamic Client Registration 1.0 §2
    ``userinfo_signed_response_alg``, ``userinfo_encrypted_response_alg``, ``_enc``; Core §5.3.2): the algorithms
    are checked (userinfo_jwt.py) and ``encryption_jwks`` (public keys with ``use`` ``enc``) join its registered
    keys; encrypting needs such a key here, among its ``jwks``, or a ``jwks_uri``."""
    keys = list((client.jwks or {}).get("keys", []))
    if encryption_jwks is not None:
        keys.extend(check_encryption_jwks(encryption_jwks, {k.get("kid") for k in keys}))
    jwks = {"keys": keys} if keys else None
    try:
        signed, alg, enc = userinfo_jwt.check_registration(signed_alg, encrypted_alg, encrypted_enc, jwks,
                                                           client.jwks_uri)  # fmt: skip
    except ValueError as error:
        raise InvalidArgument(str(error)) from None
    return dataclasses.replace(client, jwks=jwks, userinfo_signed_response_alg=signed,
                               userinfo_encrypted_response_alg=alg, userinfo_encrypted_response_enc=enc)  # fmt: skip


def check_encryption_jwks(jwks: Any, taken: set[Any]) -> list[dict[str, Any]]:
    """Public encryption keys (RFC 7517 §4.2 ``use`` ``enc``), each with a kid not already registered."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise InvalidArgument('a JWKS is {"keys": [...]} with at least one key')
    out = []
    for key in jwks["keys"]:
        if not isinstance(key, dict) or key.get("use") != "enc" or not key.get("kid") or key["kid"] in taken:
            raise InvalidArgument("every encryption key needs use enc and a kid of its own")
        if {"d", "p", "q", "dp", "dq", "qi", "k"} & key.keys():
            raise InvalidArgument("the JWKS must hold public keys only")
        try:
            KeySet.import_key_set({"keys": [key]})
        except (JoseError, ValueError, TypeError) as error:
            raise InvalidArgument(f"an encryption key does not import ({type(error).__name__})") from None
        taken.add(key["kid"])
        out.append(dict(key))
    return out
