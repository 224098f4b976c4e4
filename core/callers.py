"""Who is calling. Set by the transport (mutual TLS, bearer tokens), read by policies and audit.

Every call has a *peer*: the platform service or operator whose certificate (from the platform CA)
opened the TLS connection (``Caller``). A call may also carry an OAuth access token; once the
transport has verified it, the token's subject travels with the peer as ``Caller.principal``
(``Principal``: a citizen, or an OAuth client using ``client_credentials``).

Policy rule (``Allow.check``):

* A method open only to services and operators is decided by the peer alone: ``current_principal()``
  raises ``Unauthenticated`` in its handler. A token sent with it anyway must still verify (the transport
  refuses a forged, expired or revoked one with ``Unauthenticated``), so a bad token is never ignored.
* A method open to citizens and/or clients admits a call that carries a valid bearer token of an
  admitted kind (with every required scope and, for citizens, the minimum assurance level) arriving
  through *any* peer with a platform certificate (the HTTP edge, a portal backend, another service):
  TLS with a client certificate stays mandatory, the certificate alone does not decide. Such a
  method may also list services/operators, which are then admitted on their own identity when they
  send no token. A call that sends a token is always judged as the token's subject: an invalid
  token is ``Unauthenticated``, a valid one the policy does not admit is ``PermissionDenied``, even
  when the peer alone would have been admitted.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass

from core.errors import PermissionDenied, Unauthenticated

SERVICE_URI_PREFIX = "spiffe://dinhdanh.gov.vn/service/"
OPERATOR_URI_PREFIX = "spiffe://dinhdanh.gov.vn/operator/"
AGENCY_URI_PREFIX = "spiffe://dinhdanh.gov.vn/agency/"  # an agency's client certificate: …/agency/<client_id>
SERVICE_AUDIENCE_PREFIX = "urn:dinhdanh:service:"
REALM = "dinhdanh"


def service_audience(name: str) -> str:
    """The ``aud`` value the OpenID Provider writes for platform service ``name`` (``urn:dinhdanh:service:vault``)."""
    return SERVICE_AUDIENCE_PREFIX + name


def challenge(error: str | None, description: str, **params: str) -> str:
    """A ``WWW-Authenticate`` value for the Bearer scheme (RFC 6750 §3). Values are fixed texts or
    scope names, never anything taken from the request."""
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    parts.append(f'error_description="{description}"')
    parts.extend(f'{name}="{value}"' for name, value in params.items())
    return "Bearer " + ", ".join(parts)


class TokenRejected(Unauthenticated):
    """The bearer token is missing, malformed, or not valid here (expired, wrong issuer or audience,
    bad signature, revoked …). ``challenge`` is the ``WWW-Authenticate`` value; it is also the message."""

    def __init__(self, description: str, error: str | None = "invalid_token") -> None:
        self.challenge = challenge(error, description)
        self.description = description
        super().__init__(self.challenge)


class TokenForbidden(PermissionDenied):
    """A valid token the method's policy does not admit (wrong kind, missing scope, low assurance)."""

    def __init__(self, description: str, error: str = "insufficient_scope", **params: str) -> None:
        self.challenge = challenge(error, description, **params)
        self.description = description
        super().__init__(self.challenge)


@dataclass(frozen=True, slots=True)
class AuthorizationDetail:
    """One RFC 9396 §2 authorization detail of a verified token: its ``type`` and, for type ``consent`` (the
    platform's consent tokens), the artefact it names and the purpose granted; other members are not kept."""

    type: str
    consent_id: str = ""
    purpose: str = ""


CONSENT_DETAIL = "consent"  # the authorization_details type of an agency's consent token


@dataclass(frozen=True, slots=True)
class Principal:
    """The subject of a verified access token (RFC 9068).

    ``kind`` is ``citizen`` (``sub`` is the opaque subject of identity.oidc.subjects, ``sub != client_id``)
    or ``client``
    (a ``client_credentials`` token: ``sub == client_id``). ``acr`` is ``"1"`` or ``"2"`` for citizens
    and ``None`` for clients; ``expires_at`` and ``auth_time`` are Unix times.

    ``cnf_x5t`` is the ``cnf.x5t#S256`` confirmation of a certificate-bound token (RFC 8705 §3.1: the base64url
    SHA-256 thumbprint of the only client certificate it may be presented with), ``""`` for a plain bearer token;
    ``authorization_details`` the token's RFC 9396 details (§9.1: the ``authorization_details`` claim).
    """

    kind: str
    subject: str
    client_id: str
    scopes: frozenset[str]
    audience: tuple[str, ...]
    acr: str | None
    jti: str
    expires_at: int
    auth_time: int | None = None
    cnf_x5t: str = ""
    authorization_details: tuple[AuthorizationDetail, ...] = ()
    sector: str | None = None  # a pairwise ``subject``'s sector (OIDC Core §8.1): what opens it, with the key
    cnf_jkt: str = ""  # ``cnf.jkt`` of a DPoP-bound token (RFC 9449 §6.1): the thumbprint of its proof key

    @property
    def bound(self) -> bool:
        """Is the token certificate-bound (RFC 8705 §3)?"""
        return bool(self.cnf_x5t)

    @property
    def dpop_bound(self) -> bool:
        """Is the token DPoP-bound (RFC 9449 §6)? It is then presented with the DPoP scheme and a proof only."""
        return bool(self.cnf_jkt)

    @property
    def assurance_level(self) -> int:
        """``acr`` as a number (0 for client tokens)."""
        return int(self.acr) if self.acr and self.acr.isdigit() else 0

    @property
    def label(self) -> str:
        """For logs: the kind and client, never a citizen's ID number (``citizen via portal-1a2b``)."""
        return f"{self.kind} via {self.client_id}" if self.kind == "citizen" else f"client:{self.client_id}"

    def has_scopes(self, *scopes: str) -> bool:
        return all(scope in self.scopes for scope in scopes)


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated peer. ``kind`` is ``service``, ``operator`` or ``agency``; ``name`` is its certificate
    name (an agency's: its OAuth client id).

    ``principal`` is the verified bearer token's subject when the call carried one and its method
    admits tokens; ``None`` otherwise. ``cert_sha256`` is the base64url SHA-256 thumbprint of the peer's DER
    certificate (RFC 8705 §3.1 ``x5t#S256``), what a certificate-bound token must name.
    """

    kind: str
    name: str
    principal: Principal | None = None
    cert_sha256: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def from_uri(cls, uri: str) -> Caller | None:
        """Parse the SPIFFE-style URI SAN the platform CA writes into every certificate."""
        prefixes = (("service", SERVICE_URI_PREFIX), ("operator", OPERATOR_URI_PREFIX), ("agency", AGENCY_URI_PREFIX))
        for kind, prefix in prefixes:
            if uri.startswith(prefix) and len(uri) > len(prefix):
                return cls(kind, uri[len(prefix) :])
        return None


@dataclass(frozen=True, slots=True)
class Allow:
    """Who may call one RPC: named services, operators when ``operators`` is true, agencies (by their client
    certificate alone) when ``agencies`` is true, and bearer-token
    holders: citizens when ``citizens``, OAuth clients (``client_credentials``) when ``clients``. A token
    must carry every scope in ``scopes``; a citizen token must have an assurance level ≥ ``min_acr``.
    ``bound_agency`` (RFC 8705 §3): a client token is admitted only when certificate-bound and presented by the
    agency it was issued to, over that agency's own certificate (the transport checked the thumbprint).
    See the module docstring for how peer and token combine."""

    services: frozenset[str] = frozenset()
    operators: bool = False
    citizens: bool = False
    clients: bool = False
    scopes: frozenset[str] = frozenset()
    min_acr: int = 0
    agencies: bool = False
    bound_agency: bool = False

    @classmethod
    def of(
        cls,
        services: Iterable[str] = (),
        operators: bool = False,
        *,
        citizens: bool = False,
        clients: bool = False,
        scopes: Iterable[str] = (),
        min_acr: int = 0,
        agencies: bool = False,
        bound_agency: bool = False,
    ) -> Allow:
        return cls(
            frozenset(services), operators, citizens, clients, frozenset(scopes), min_acr, agencies, bound_agency
        )

    @property
    def accepts_tokens(self) -> bool:
        """Does this method read bearer tokens at all?"""
        return self.citizens or self.clients

    def check(self, caller: Caller | None) -> Caller:
        if caller is None:
            raise Unauthenticated("a client certificate from the platform CA is required")
        principal = caller.principal
        if principal is not None and self.accepts_tokens:
            self._check_token(principal)
            if self.bound_agency:
                _check_bound_agency(caller, principal)
            return caller
        if caller.kind == "operator" and self.operators:
            return caller
        if caller.kind == "service" and caller.name in self.services:
            return caller
        if caller.kind == "agency" and self.agencies:
            return caller
        if self.accepts_tokens:
            raise TokenRejected("this method needs a bearer access token", error=None)
        raise PermissionDenied(f"{caller.label} may not call this method")

    def _check_token(self, principal: Principal) -> None:
        if principal.kind not in ("citizen", "client"):
            raise TokenForbidden("this kind of token may not call this method")
        if principal.kind == "citizen" and not self.citizens:
            raise TokenForbidden("citizen tokens may not call this method")
        if principal.kind == "client" and not self.clients:
            raise TokenForbidden("client tokens may not call this method")
        missing = self.scopes - principal.scopes
        if missing:
            raise TokenForbidden("the token lacks a scope this method needs", scope=" ".join(sorted(self.scopes)))
        if principal.kind == "citizen" and principal.assurance_level < self.min_acr:
            raise TokenForbidden(
                "this method needs a higher authentication assurance level: level 2 is reached when an officer"
                " verifies the account in person (`dinhdanh accounts verify-in-person`), then sign in again",
                error="insufficient_user_authentication",
                acr_values=str(self.min_acr),
            )


def _check_bound_agency(caller: Caller, principal: Principal) -> None:
    """RFC 8705 §3: the token must be bound to a certificate, and the connection's certificate (the same one,
    checked by the transport) must be the agency's the token was issued to."""
    if principal.kind == "client" and not principal.bound:
        raise TokenRejected("this method needs a certificate-bound token (cnf x5t#S256)")
    if caller.kind != "agency":
        raise PermissionDenied("this method is open to an agency calling with its own certificate")
    if principal.client_id != caller.name:
        raise PermissionDenied("the token was issued to another agency than this certificate's")


_current: ContextVar[Caller | None] = ContextVar("dinhdanh_caller", default=None)


def current_caller() -> Caller:
    """The caller of the request being served (set by the transport before the handler runs)."""
    caller = _current.get()
    if caller is None:
        raise Unauthenticated("no authenticated caller")
    return caller


def current_principal() -> Principal:
    """The verified bearer token's subject of the request being served.

    Raises ``Unauthenticated`` when the call carried no token, or its method does not admit tokens."""
    caller = _current.get()
    if caller is None or caller.principal is None:
        raise Unauthenticated("no bearer access token with this call")
    return caller.principal


def bind_caller(caller: Caller | None) -> object:
    return _current.set(caller)


def unbind_caller(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
