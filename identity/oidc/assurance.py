"""The assurance level an authorization request requires (OpenID Connect Core §2 ``acr``, §3.1.2.1
``acr_values``, §5.5 and §5.5.1.1 the ``claims`` parameter's essential ``acr``).

Levels are ordered: ``"1"`` an account activated online by the citizen, ``"2"`` one an officer verified in
person. An account satisfies every level up to its own, so the ID token's ``acr`` is always the account's level.

A request requires the highest of:

- the client's registered ``min_acr`` (a portal that issues criminal-record certificates registers 2);
- an *essential* ``acr`` in the ``claims`` parameter (``id_token`` or ``userinfo`` member): the lowest level it
  lists (``value`` or ``values``). A voluntary ``acr`` requires nothing, as Core §5.5.1 says;
- ``acr_values``: the lowest supported level it lists. Core makes ``acr_values`` a voluntary request; this
  provider treats it as a requirement for every client, as national e-ID providers commonly do (a portal
  that asks for "2" and silently gets a level-1 token has no use for the answer, and checking ``acr`` in
  every relying party is the mistake the requirement prevents). A portal that wants whatever level the
  citizen has asks for no ``acr_values`` and reads ``acr`` from the ID token.

A request naming only levels this provider does not have, or a ``claims`` parameter that is not the JSON of
Core §5.5, is malformed (``invalid_request``).
"""

from __future__ import annotations

import json
from typing import Any

from identity.oidc import claims_request

LEVELS = ("1", "2")


class AcrRequestError(ValueError):
    """The request's ``acr_values`` or ``claims`` cannot be read (OAuth ``invalid_request``)."""


def level(acr: str | None) -> int:
    """An ``acr`` as a number (0 when it is not one of ours)."""
    return int(acr) if acr in LEVELS else 0


def required_level(acr_values: str | None, claims: str | None, min_acr: int) -> int:
    """The level the request needs (see the module's docstring); raises ``AcrRequestError``, also for a ``claims``
    parameter claims_request.py refuses (every claims parameter is validated where its acr is read)."""
    try:
        claims_request.parse(claims)
    except claims_request.InvalidClaimsRequest as error:
        raise AcrRequestError(str(error)) from None
    required = max(min_acr, 1)
    if acr_values is not None and acr_values.strip():
        required = max(required, _lowest(acr_values.split(), "acr_values"))
    if claims is not None and claims.strip():
        for request in _acr_requests(claims):
            if request.get("essential") is True:
                values = _values(request)
                if values:
                    required = max(required, _lowest(values, "the claims parameter's acr"))
    return required


def _lowest(values: list[str], where: str) -> int:
    known = [int(v) for v in values if v in LEVELS]
    if not known:
        raise AcrRequestError(f"{where}: this provider's assurance levels are {' and '.join(LEVELS)}")
    return min(known)


def _acr_requests(claims: str) -> list[dict[str, Any]]:
    """The ``acr`` members of the ``claims`` parameter (Core §5.5): null or an object, per member."""
    try:
        parsed = json.loads(claims)
    except ValueError:
        raise AcrRequestError("claims is not a JSON object (OpenID Connect Core section 5.5)") from None
    if not isinstance(parsed, dict):
        raise AcrRequestError("claims is not a JSON object (OpenID Connect Core section 5.5)")
    found = []
    for member in ("id_token", "userinfo"):
        requested = parsed.get(member)
        if requested is None:
            continue
        if not isinstance(requested, dict):
            raise AcrRequestError(f"claims.{member} is not a JSON object")
        acr = requested.get("acr")
        if acr is None:
            continue
        if not isinstance(acr, dict):
            raise AcrRequestError(f"claims.{member}.acr is neither null nor an object")
        found.append(acr)
    return found


def _values(request: dict[str, Any]) -> list[str]:
    """``value`` or ``values`` of one claim request (Core §5.5.1), strings only."""
    values: Any = request.get("values", [request["value"]] if "value" in request else [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise AcrRequestError('acr values in claims must be strings, e.g. "2"')
    return values
