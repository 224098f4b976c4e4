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
    jwks: dict[str, Any] | None = None,
) -> tuple[Client, str]:
    """An agency client (``client_credentials``) with the purposes it may state when it fetches; its resources
    are the services its scopes name unless ``resources`` says otherwise; ``roles`` what it is (``AGENCY_ROLES``:
    a facility, the records centre's officers, a procedural authority, an agency authorised by law).

    Every agency is on the FAPI 2.0 Security Profile (issue 13 §1, docs/fapi.md "Agencies"): ``profile`` may only
    be ``fapi2`` (``plain`` is ``InvalidArgument``). It authenticates with ``private_key_jwt`` (RFC 7523 §2.2)
    against ``jwks`` (its public keys, which also verify the documents it issues) or ``jwks_uri``, else with
    ``tls_client_auth`` (RFC 8705 §2.1) once ``dinhdanh clients issue-cert`` gave it a certificate. No client secret
    is ever issued to an agency: the second value returned is always ``""``."""
    checked_roles = check_roles(roles)
    if not name.strip() or len(name) > MAX_NAME:
        raise InvalidArgument("an agency needs a name (at most 200 characters)")
    if not purposes:
        raise InvalidArgument("an agency needs at least one allowed purpose")
    unknown = set(scopes or ()) - set(AGENCY_SCOPES)
    if unknown:
        raise InvalidArgument(f"unknown agency scopes: {', '.join(sorted(unknown))}")
    granted = tuple(dict.fromkeys(scopes or AGENCY_SCOPES))
    if profile not in (None, FAPI2):
        raise InvalidArgument(AGENCY_PROFILE_ONLY)
    keys = check_agency_keys(jwks) if jwks is not None else None
    method = KEY_AUTH if keys is not None or jwks_uri else TLS_AUTH
    client = Client(
        client_id=new_client_id("agency"),
        name=name.strip(),
        kind="agency",
        grant_types=("client_credentials",),
        scopes=granted,
        resources=check_resources(resources) if resources else agency_resources(granted),
        auth_method=method,
        secret_hash=None,
        purposes=tuple(p.strip() for p in purposes if p.strip()),
        roles=checked_roles,
        profile=FAPI2,
        jwks=keys,
        jwks_uri=check_jwks_uri(jwks_uri) if jwks_uri else None,
    )
    return _on_profile(client), ""


AGENCY_PROFILE_ONLY = (
    "an agency is on the FAPI 2.0 Security Profile (fapi2) only: it authenticates with private_key_jwt (--jwks, "
    "--jwks-uri or --key-out) or tls_client_auth (issue-cert), never with a client secret (docs/fapi.md, Agencies)"
)


def check_agency_keys(jwks: Any) -> dict[str, Any]:
    """An agency's public keys: at least one with an algorithm of the profile (FAPI 2.0 §5.4.1: PS256, ES256 or
    EdDSA), so it can sign its ``private_key_jwt`` assertions."""
    keys = check_client_jwks(jwks)
    if not any(k.get("alg") in fapi.SIGNING_ALGS or (k.get("alg") is None and k.get("kty") in ("EC", "OKP"))
               for k in keys.get("keys", [])):  # fmt: skip
        raise InvalidArgument(f"an agency needs a key for {', '.join(fapi.SIGNING_ALGS)} (FAPI 2.0 section 5.4.1)")
    return {"keys": [dict(k) for k in jwks["keys"]]}


def move_agency_to_fapi2(client: Client, jwks: dict[str, Any] | None = None, jwks_uri: str | None = None) -> Client:
    """The migration path of an agency registered before issue 13 with a client secret (plain): it moves to the
    profile with ``private_key_jwt`` (``jwks``/``jwks_uri``) or, with neither, ``tls_client_auth`` (it must hold a
    certificate from issue-cert already); its secret is dropped (``dinhdanh clients set-key``)."""
    if client.kind != "agency":
        raise InvalidArgument(f"{client.client_id} is a {client.kind}: set-key moves agencies only")
    keys = check_agency_keys(jwks) if jwks is not None else client.jwks if jwks_uri is None else None
    if jwks is None and jwks_uri is None and client.tls_client_auth_san_uri is None:
        raise InvalidArgument(f"{client.client_id} has no certificate: give --jwks or --jwks-uri, or run issue-cert")
    method = KEY_AUTH if jwks is not None or jwks_uri else TLS_AUTH
    moved = dataclasses.replace(client, profile=FAPI2, auth_method=method, secret_hash=None,
                                jwks=keys if keys is not None else client.jwks,
                                jwks_uri=check_jwks_uri(jwks_uri) if jwks_uri else None)  # fmt: skip
    return _on_profile(moved)


LEGACY_DEADLINE = "2027-06-30"
LEGACY_AGENCY = (
    f"plain agency with a client secret (registered before the FAPI 2.0 profile): move it with `dinhdanh clients "
    f"set-key` (private_key_jwt) or issue-cert + set-key (tls_client_auth) before {LEGACY_DEADLINE}"
)


def legacy_agency(client: Client) -> bool:
    """An agency still on the plain profile with a client secret (registered before issue 13): to be moved."""
    return client.kind == "agency" and client.profile != FAPI2


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
