"""``verified_claims`` (OpenID Connect for Identity Assurance 1.0, final; OpenID Identity Assurance Schema
Definition 1.0 for the objects); pure.

**Trust framework** ``vn_eid``: this platform's name (not in the OpenID Foundation's registry of predefined
values) for identity verification under Vietnam's electronic identification rules (Decree 69/2024/ND-CP on
electronic identification and authentication): the national population database (Cơ sở dữ liệu quốc gia về dân
cư) is the authoritative source of the claims, and the assurance level says how the account was bound to the
citizen on record:

- ``"1"``: the citizen activated the account online, giving their ID number and the phone number on record,
  which matched the registry. ``verification.time`` is the activation; the evidence is an ``electronic_record``
  (the registry's record) checked with method ``data`` (Schema Definition §5.1.1.1: the data given was validated
  against an authoritative source). No document was examined, and none is claimed.
- ``"2"``: an operator verified the citizen in person (``dinhdanh accounts verify-in-person``, the
  ``identity.verifications`` record of migration 0023). ``verification.time`` is that verification; the evidence
  is a ``document`` — the chip ID card (CCCD, ``idcard``) or a passport — checked with ``vpip`` (the physical
  document examined in person) and ``pvp`` (the person compared with its photo in person), at the place the
  operator recorded (``check_details[].organization``), with the record's id as ``txn``; ``document_details``
  give the card's type, number (the personal ID number), issuer and date of issue from the registry.

The ID number (``document_number``, ``personal_number``) is released inside the evidence only when the
``national_id`` scope was granted, like the ``national_id`` claim itself.

**Filtering** (IDA 1.0 §6, and §6.5's constraints): nothing is returned unless asked for; a request names the
verification elements and claims it wants (``null`` or a constraint object with ``value``, ``values``,
``max_age``, ``essential``, ``purpose``). The result holds ``trust_framework`` always, the other verification
elements asked for, and of the claims asked for only those this provider verifies (``CLAIMS_SUPPORTED``), whose
scope was granted (claims_request.py), with a value on record that satisfies its constraint. A constraint the
verification does not satisfy (a ``trust_framework`` or ``assurance_level`` other than asked for, a ``time``
older than ``max_age``, no ``evidence`` of the type asked for) omits the whole ``verified_claims``; so does a
request none of whose claims can be released (the ``claims`` element is never empty).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from identity.oidc.claims import SCOPE_CLAIMS

TRUST_FRAMEWORK = "vn_eid"
TRUST_FRAMEWORKS_SUPPORTED = (TRUST_FRAMEWORK,)
EVIDENCE_SUPPORTED = ("document", "electronic_record")
DOCUMENTS_SUPPORTED = ("idcard", "passport")
DOCUMENT_CHECK_METHODS = ("vpip", "pvp")
CLAIMS_SUPPORTED = ("name", "given_name", "family_name", "middle_name", "birthdate", "gender", "nationalities",
                    "address")  # fmt: skip
REGISTRY = "Cơ sở dữ liệu quốc gia về dân cư"  # the national population database
COUNTRY = "VNM"
REQUIRED_IN_ITEMS = ("type", "check_method")
CONSTRAINT_KEYS = frozenset(("value", "values", "max_age", "essential", "purpose"))
NATIONALITY_CODES = {"Việt Nam": "VN"}  # registry wording → ISO 3166-1 alpha-2 (IDA ``nationalities``)
_SCOPE_OF = {claim: scope for scope, claims in SCOPE_CLAIMS.items() for claim in claims}
_SCOPE_OF["nationalities"] = "profile"


class InvalidVerifiedClaimsRequest(ValueError):
    """A ``verified_claims`` request that is not the JSON of IDA 1.0 §6 (OAuth ``invalid_request``)."""


@dataclass(frozen=True)
class InPersonFacts:
    """One in-person verification as the identity service recorded it (identity.verifications)."""

    txn: str
    verified_at: str  # RFC 3339
    place: str
    check_methods: tuple[str, ...]
    document_type: str
    document_number: str
    document_issuer: str
    document_issued: str  # ISO 8601 date, "" when unknown


@dataclass(frozen=True)
class Facts:
    """What the identity service says now about how a citizen's account was verified."""

    assurance_level: int
    activated_at: str  # RFC 3339
    in_person: InPersonFacts | None = None


def parse_request(request: Any, where: str = "verified_claims") -> list[dict[str, Any]]:
    """A ``verified_claims`` request (IDA 1.0 §6: an object, or an array of them), each with a ``verification``
    object that names ``trust_framework`` and a non-empty ``claims`` object; raises ``InvalidVerifiedClaimsRequest``
    (a ``claims_request.InvalidClaimsRequest``) otherwise."""
    from identity.oidc.claims_request import InvalidClaimsRequest

    requests = request if isinstance(request, list) else [request]
    if not requests:
        raise InvalidClaimsRequest(f"{where} is an empty array")
    for one in requests:
        if not isinstance(one, dict):
            raise InvalidClaimsRequest(f"{where} is not an object (IDA 1.0 section 6)")
        verification, claims = one.get("verification"), one.get("claims")
        if not isinstance(verification, dict) or "trust_framework" not in verification:
            raise InvalidClaimsRequest(f"{where}.verification must be an object naming trust_framework")
        if not isinstance(claims, dict) or not claims:
            raise InvalidClaimsRequest(f"{where}.claims must be a non-empty object (IDA 1.0 section 6)")
        _check_constraints(one, where)
    return [{"verification": r["verification"], "claims": r["claims"]} for r in requests]


def _check_constraints(node: Any, where: str) -> None:
    """``value``/``values``/``max_age`` shapes anywhere in the request (IDA 1.0 §6.5)."""
    from identity.oidc.claims_request import InvalidClaimsRequest

    if isinstance(node, list):
        for item in node:
            _check_constraints(item, where)
    elif isinstance(node, dict):
        if "values" in node and not isinstance(node["values"], list):
            raise InvalidClaimsRequest(f"{where}: values must be an array")
        if "max_age" in node and (not isinstance(node["max_age"], int) or isinstance(node["max_age"], bool)
                                  or node["max_age"] < 0):  # fmt: skip
            raise InvalidClaimsRequest(f"{where}: max_age must be a non-negative integer (seconds)")
        if "essential" in node and not isinstance(node["essential"], bool):
            raise InvalidClaimsRequest(f"{where}: essential must be a boolean")
        for value in node.values():
            if isinstance(value, dict | list):
                _check_constraints(value, where)


def _time(value: str) -> str:
    """An RFC 3339 time as IDA writes them (Schema Definition §5.1: ISO 8601 with a time zone), to the second."""
    try:
        return dt.datetime.fromisoformat(value).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return value


def verification_of(facts: Facts, scopes: set[str]) -> dict[str, Any]:
    """The full ``verification`` element (Schema Definition §5.1) for the account's level."""
    reveal_number = "national_id" in scopes
    if facts.in_person is not None:
        facts = Facts(facts.assurance_level, facts.activated_at,
                      dataclasses.replace(facts.in_person, verified_at=_time(facts.in_person.verified_at)))  # fmt: skip
    facts = dataclasses.replace(facts, activated_at=_time(facts.activated_at))
    if facts.assurance_level >= 2 and facts.in_person is not None:
        p = facts.in_person
        document: dict[str, Any] = {"type": p.document_type}
        if reveal_number:
            document["document_number"] = p.document_number
        if p.document_issued:
            document["date_of_issuance"] = p.document_issued
        document["issuer"] = {"name": p.document_issuer, "country_code": COUNTRY} if p.document_issuer else {
            "country_code": COUNTRY}  # fmt: skip
        where = {"organization": p.place} if p.place else {}
        checks = [{"check_method": m, **where, "txn": p.txn, "time": p.verified_at} for m in p.check_methods]
        evidence = {"type": "document", "check_details": checks, "time": p.verified_at, "document_details": document}
        return {"trust_framework": TRUST_FRAMEWORK, "assurance_level": "2", "time": p.verified_at,
                "verification_process": p.txn, "evidence": [evidence]}  # fmt: skip
    record: dict[str, Any] = {"type": "population_register", "source": {"name": REGISTRY, "country_code": COUNTRY}}
    if reveal_number:
        record["personal_number"] = "<id_number>"  # filled in by ``build`` (the facts do not carry it at level 1)
    evidence = {"type": "electronic_record", "check_details": [{"check_method": "data", "time": facts.activated_at}],
                "time": facts.activated_at, "record": record}  # fmt: skip
    if facts.assurance_level >= 2:  # level 2 with no record of it (never after migration 0023): no time, no evidence
        return {"trust_framework": TRUST_FRAMEWORK, "assurance_level": "2"}
    return {"trust_framework": TRUST_FRAMEWORK, "assurance_level": "1", "time": facts.activated_at,
            "evidence": [evidence]}  # fmt: skip


def verifiable_claims(available: dict[str, Any], scopes: set[str]) -> dict[str, Any]:
    """The claims this provider verifies that the granted scopes allow, from the citizen's ``available`` claims."""
    claims = {k: available[k] for k in CLAIMS_SUPPORTED if k in available}
    code = NATIONALITY_CODES.get(str(available.get("nationality", "")))
    if code:
        claims["nationalities"] = [code]
    return {k: v for k, v in claims.items() if _SCOPE_OF.get(k) in scopes}


def build(requests: list[dict[str, Any]] | None, facts: Facts | None, available: dict[str, Any], scopes: set[str],
          id_number: str, now: float) -> dict[str, Any] | list[dict[str, Any]] | None:  # fmt: skip
    """The ``verified_claims`` to return for ``requests`` (one result per request that can be satisfied), or None
    when nothing may be returned (IDA 1.0 §6: then the claim is omitted)."""
    if not requests or facts is None:
        return None
    verification = verification_of(facts, scopes)
    for evidence in verification.get("evidence", []):
        record = evidence.get("record")
        if record and "personal_number" in record:
            record["personal_number"] = id_number
    claims = verifiable_claims(available, scopes)
    results = []
    for request in requests:
        chosen = _verification(verification, request["verification"], now)
        if chosen is None:
            continue
        released = {}
        for name, constraint in request["claims"].items():
            if name in claims and _satisfies(claims[name], constraint, now):
                released[name] = claims[name]
        if released:
            results.append({"verification": chosen, "claims": released})
    if not results:
        return None
    return results[0] if len(requests) == 1 else results


def _verification(data: dict[str, Any], request: dict[str, Any], now: float) -> dict[str, Any] | None:
    chosen = _select(data, request, now)
    if chosen is None:
        return None
    return {"trust_framework": data["trust_framework"], **chosen}


def _is_constraint(request: Any) -> bool:
    return request is None or (isinstance(request, dict) and set(request) <= CONSTRAINT_KEYS)


def _satisfies(value: Any, constraint: dict[str, Any] | None, now: float) -> bool:
    """IDA 1.0 §6.5: ``value``, ``values`` and ``max_age`` (seconds since a ``time``)."""
    if constraint is None:
        return True
    if "value" in constraint and value != constraint["value"]:
        return False
    if "values" in constraint and value not in constraint["values"]:
        return False
    if "max_age" in constraint:
        try:
            at = dt.datetime.fromisoformat(str(value)).timestamp()
        except ValueError:
            return False
        if now - at > constraint["max_age"]:
            return False
    return True


def _select(data: dict[str, Any], request: dict[str, Any], now: float) -> dict[str, Any] | None:
    """The elements of ``data`` that ``request`` names, satisfying their constraints (None: one is not met).
    An element asked for that ``data`` lacks is left out, unless it carries a constraint (then it is not met)."""
    out: dict[str, Any] = {}
    for name, sub in request.items():
        if name not in data:
            if sub is not None and _is_constraint(sub) and set(sub) & {"value", "values", "max_age"}:
                return None
            continue
        value = data[name]
        if _is_constraint(sub):
            if not _satisfies(value, sub, now):
                return None
            out[name] = value
        elif isinstance(sub, list) and isinstance(value, list):
            items = [chosen for item in value if (chosen := _first(item, sub, now)) is not None]
            if not items:
                return None  # evidence asked for, none of the kind asked for
            out[name] = items
        elif isinstance(sub, dict) and isinstance(value, dict):
            chosen = _select(value, sub, now)
            if chosen is None:
                return None
            out[name] = chosen
        else:
            out[name] = value
    return out


def _first(item: Any, requests: list[Any], now: float) -> dict[str, Any] | None:
    """``item`` (an array element: an evidence, a check) as the first of ``requests`` it satisfies selects it."""
    if not isinstance(item, dict):
        return None
    for request in requests:
        if isinstance(request, dict):
            chosen = _select(item, request, now)
            if chosen is not None:  # an element's required member stays (Schema Definition §5.1.1, §5.1.1.1)
                return {**{k: item[k] for k in REQUIRED_IN_ITEMS if k in item}, **chosen}
    return None


class VerificationFacts(Protocol):
    """Where the provider reads the facts (services/edge/verifications.py: the identity service's GetAccount)."""

    async def facts(self, id_number: str) -> Facts | None:
        """How the account was verified, now; None when there is no such account."""
