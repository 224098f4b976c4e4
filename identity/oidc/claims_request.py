"""The ``claims`` request parameter (OpenID Connect Core 1.0 §5.5), parsed and validated; pure.

The parameter is a JSON object whose ``userinfo`` and ``id_token`` members each name claims, every one either
``null`` (a voluntary request) or an object with ``essential`` (a boolean, §5.5.1), ``value`` (one JSON value)
or ``values`` (an array of them). ``verified_claims`` (OpenID Connect for Identity Assurance 1.0 §6) is
checked by ``verified_claims.parse_request``.

How this provider honours a request (docs/verified-claims.md):

- **Scopes still decide.** A claim is released only when the scope it belongs to (``claims.SCOPE_CLAIMS``:
  ``given_name`` → ``profile``, ``phone_number`` → ``phone``, …) was granted, i.e. shown on the consent page and
  allowed. The claims parameter chooses *where* a granted claim goes (the ID token as well as userinfo) and
  *which* value is wanted; it never widens what the citizen consented to. ``sub`` and the authentication claims
  (``acr``, ``auth_time``, ``amr``) need no scope.
- ``value`` / ``values``: a claim is returned only when it has the value asked for (one of them), and omitted
  otherwise — in userinfo too, where its scope alone would return it (Core §5.5.1: the request is for a
  particular value).
- ``essential``: recorded; an essential claim this provider cannot release is omitted (Core §5.5.1 lets the
  request succeed). An essential ``acr`` is a requirement (assurance.py).
- Claims this provider does not know are ignored (Core §5.5: "a Claim … not understood … SHOULD be ignored").

A parameter that is not such JSON is ``invalid_request`` (``InvalidClaimsRequest``). The normalised request
(only what this provider acts on) travels sealed in the authorization code and, for userinfo, in the access
token: ``compact`` and ``from_compact``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from identity.oidc import verified_claims
from identity.oidc.claims import SCOPE_CLAIMS

SCOPE_OF: dict[str, str] = {claim: scope for scope, claims in SCOPE_CLAIMS.items() for claim in claims}
AUTHENTICATION_CLAIMS = ("sub", "acr", "auth_time", "amr")
MEMBERS = ("userinfo", "id_token")
ACCESS_TOKEN_CLAIM = "userinfo_claims"  # noqa: S105 - the access token's private claim: the userinfo member, for userinfo
MAX_COMPACT = 1024  # characters of the normalised request: it rides in the code and the access token


class InvalidClaimsRequest(ValueError):
    """The ``claims`` parameter is not the JSON of Core §5.5 (OAuth ``invalid_request``)."""


@dataclass(frozen=True)
class ClaimsRequest:
    """The parts of a ``claims`` parameter this provider acts on, per member: claim name → None or its request
    object (``essential``, ``value``, ``values``); ``verified_claims`` → the list of its IDA requests."""

    userinfo: dict[str, Any] = field(default_factory=dict)
    id_token: dict[str, Any] = field(default_factory=dict)

    def member(self, name: str) -> dict[str, Any]:
        return self.userinfo if name == "userinfo" else self.id_token

    def compact(self) -> dict[str, Any] | None:
        """What the code and the access token carry (None when nothing is asked for)."""
        out = {name: getattr(self, name) for name in MEMBERS if getattr(self, name)}
        return out or None

    @staticmethod
    def from_compact(value: Any) -> ClaimsRequest:
        """The inverse of ``compact`` (a value this provider sealed or signed; nothing else reaches it)."""
        if not isinstance(value, dict):
            return ClaimsRequest()
        return ClaimsRequest(dict(value.get("userinfo") or {}), dict(value.get("id_token") or {}))


def parse(raw: str | None) -> ClaimsRequest:
    """Read the parameter (Core §5.5); raises ``InvalidClaimsRequest``."""
    if raw is None or not raw.strip():
        return ClaimsRequest()
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise InvalidClaimsRequest("claims is not a JSON object (OpenID Connect Core section 5.5)") from None
    if not isinstance(parsed, dict):
        raise InvalidClaimsRequest("claims is not a JSON object (OpenID Connect Core section 5.5)")
    members = {}
    for name in MEMBERS:
        requested = parsed.get(name)
        if requested is None:
            members[name] = {}
            continue
        if not isinstance(requested, dict):
            raise InvalidClaimsRequest(f"claims.{name} is not a JSON object")
        members[name] = _member(name, requested)
    request = ClaimsRequest(members["userinfo"], members["id_token"])
    if len(json.dumps(request.compact() or {}, separators=(",", ":"))) > MAX_COMPACT:
        raise InvalidClaimsRequest(f"the claims request is too large (at most {MAX_COMPACT} characters of it)")
    return request


def _member(name: str, requested: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for claim, request in requested.items():
        if claim == "verified_claims":
            out[claim] = verified_claims.parse_request(request, f"claims.{name}.verified_claims")
            continue
        if request is not None and not isinstance(request, dict):
            raise InvalidClaimsRequest(f"claims.{name}.{claim} is neither null nor an object (Core section 5.5.1)")
        if claim not in SCOPE_OF and claim not in AUTHENTICATION_CLAIMS:
            continue  # not understood: ignored (Core §5.5)
        out[claim] = individual(request, f"claims.{name}.{claim}")
    return out


def individual(request: dict[str, Any] | None, where: str) -> dict[str, Any] | None:
    """One claim's request (Core §5.5.1): ``essential`` a boolean, ``values`` an array; normalised to the members
    this provider reads (others, such as IDA's ``purpose``, are dropped)."""
    if request is None:
        return None
    out: dict[str, Any] = {}
    if "essential" in request:
        if not isinstance(request["essential"], bool):
            raise InvalidClaimsRequest(f"{where}.essential is not a boolean")
        out["essential"] = request["essential"]
    if "value" in request:
        out["value"] = request["value"]
    if "values" in request:
        if not isinstance(request["values"], list):
            raise InvalidClaimsRequest(f"{where}.values is not an array")
        out["values"] = request["values"]
    return out or None


def matches(request: dict[str, Any] | None, actual: Any) -> bool:
    """Whether ``actual`` is what the request asks for (Core §5.5.1 ``value``/``values``; anything otherwise)."""
    if request is None:
        return True
    if "value" in request and actual != request["value"]:
        return False
    return not ("values" in request and actual not in request["values"])


def select(member: dict[str, Any], available: dict[str, Any], scopes: set[str]) -> dict[str, Any]:
    """The plain claims (not ``verified_claims``) one member asks for that may be released: its scope granted,
    a value on record, and the value asked for. ``available`` are every claim of the citizen this provider has."""
    out = {}
    for claim, request in member.items():
        if claim == "verified_claims" or claim not in SCOPE_OF or SCOPE_OF[claim] not in scopes:
            continue
        if claim in available and matches(request, available[claim]):
            out[claim] = available[claim]
    return out


def refused_by_value(member: dict[str, Any], released: dict[str, Any]) -> dict[str, Any]:
    """``released`` (what the scopes give) without the claims whose requested value they do not have."""
    return {k: v for k, v in released.items() if k not in member or k == "sub" or matches(member[k], v)}
