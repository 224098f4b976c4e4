"""Certificates as SD-JWT VCs: Selective Disclosure JWTs (RFC 9901) of the IETF SD-JWT VC type.

An issued credential is ``<Issuer-signed JWT>~<Disclosure 1>~…~<Disclosure N>~`` (RFC 9901 §4). The JWT's
header is ``{"alg": "ES256", "typ": "dc+sd-jwt", "kid": …}`` (SD-JWT VC §3.2.1: ``typ`` ``dc+sd-jwt``; the
``kid`` names the issuer key in its published JWK Set). Its payload holds in the clear only what SD-JWT VC
§3.2.2.2 forbids to disclose selectively — ``iss``, ``iat``, ``exp`` (optional), ``vct`` (the credential
type, e.g. ``urn:dinhdanh:vct:criminal-record-certificate:1``), ``cnf.jwk`` (the holder's public key, RFC 7800
§3.2, for key binding) and ``status.status_list {idx, uri}`` (the Token Status List entry,
``issuance.status_list``) — with ``_sd_alg: sha-256``. Every claim of the certificate itself (name, birth
date, birthplace, parents' names, the record lines, "Không có án tích"…) is one Disclosure
``[salt, name, value]`` (RFC 9901 §4.2.1, a 128-bit salt) whose digest sits in the top-level ``_sd`` array
with 2–5 decoy digests (§4.2.5), sorted (§4.2.4.1). A claim is disclosed whole: the record lines are one
claim, so a holder can show all convictions or none, never a chosen few that would misstate the record.

Issuance uses the ``sd-jwt`` library (``SDJWTIssuer``), the reference implementation of the IETF drafts, with
``typ`` and ``kid`` given as extra header parameters and decoys added to the top-level ``_sd`` only (the
library would otherwise put decoys into every nested object, ``status`` and ``cnf`` included).

Verification (``verify_credential``) checks, before trusting anything: the header's ``typ`` (exactly
``dc+sd-jwt``) and ``alg`` (exactly ES256), the ``kid`` in the issuer's JWK Set, then the signature (the
library's ``SDJWTVerifier``). The library stops there and unpacks whatever digests match, so this module adds
RFC 9901 §7.1's remaining checks: every Disclosure is well formed and referenced by exactly one digest
(a tampered or foreign Disclosure is refused, not ignored), no Disclosure names ``_sd`` or ``...`` or a
claim SD-JWT VC keeps in the clear, ``_sd_alg`` is sha-256; then the claims: ``iss`` (when expected), ``vct``
among those accepted, ``iat``/``nbf`` not in the future, ``exp`` not passed, a public P-256 ``cnf.jwk``, a
well-formed ``status``. It returns the disclosed claims only.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto.common import JWException
from sd_jwt.common import SDObj
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

from core.errors import InvalidArgument
from issuance.issuer_keys import (
    ALGORITHM,
    SigningKey,
    b64url,
    b64url_decode,
    find_key,
    public_key,
)
from issuance.status_list import StatusReference

TYPE = "dc+sd-jwt"
HASH_ALGORITHM = "sha-256"
VCT_CRIMINAL_RECORD = "urn:dinhdanh:vct:criminal-record-certificate:1"
VCT_HEALTH_BOOK_EXTRACT = "urn:dinhdanh:vct:health-book-extract:1"
KNOWN_VCTS = frozenset({VCT_CRIMINAL_RECORD, VCT_HEALTH_BOOK_EXTRACT})
# claims in the clear (SD-JWT VC §3.2.2.2 and JWT registered claims) and the SD-JWT structure's own names
RESERVED = frozenset({"iss", "iat", "exp", "nbf", "vct", "vct#integrity", "cnf", "status", "sub", "_sd", "_sd_alg"})
DECOYS = (2, 5)  # decoy digests per credential, inclusive (RFC 9901 §4.2.5)
CLOCK_SKEW = timedelta(minutes=5)
MAX_CLAIMS = 100
MAX_SERIALIZED = 256 * 1024
VCT = re.compile(r"[a-z][a-z0-9+.-]*:[\x21-\x7e]{1,250}")
SEPARATOR = "~"


class VerificationFailed(InvalidArgument):
    """A credential or presentation that does not verify; ``message`` says why (and never echoes a claim)."""


@dataclass(frozen=True, slots=True)
class VerifiedCredential:
    """What a verified SD-JWT VC says: its metadata and the disclosed claims (only those)."""

    issuer: str
    vct: str
    kid: str
    issued_at: datetime
    expires_at: datetime | None
    holder_jwk: dict[str, Any]
    status: StatusReference | None
    claims: dict[str, Any]


class _Issuer(SDJWTIssuer):
    """The library's issuer with decoys in the top-level ``_sd`` only (see the module docstring)."""

    def _assemble_sd_jwt_payload(self) -> None:
        super()._assemble_sd_jwt_payload()
        digests = self.sd_jwt_payload.setdefault("_sd", [])
        low, high = DECOYS
        for _ in range(low + secrets.randbelow(high - low + 1)):
            digests.append(self._create_decoy_claim_entry())
        digests.sort()


def issue_credential(
    key: SigningKey,
    *,
    issuer: str,
    vct: str,
    claims: Mapping[str, Any],
    holder_jwk: Mapping[str, Any],
    status: StatusReference,
    issued_at: datetime,
    expires_at: datetime | None = None,
) -> str:
    """The SD-JWT VC (issued form, ending in ``~``) of ``claims``, each selectively disclosable, bound to
    ``holder_jwk`` and to the status list entry ``status``."""
    if not isinstance(issuer, str) or not issuer:
        raise InvalidArgument("the issuer is a non-empty string (its URL)")
    if not isinstance(vct, str) or not VCT.fullmatch(vct):
        raise InvalidArgument("vct must be a URI such as urn:dinhdanh:vct:criminal-record-certificate:1")
    if not isinstance(status, StatusReference):
        raise InvalidArgument("status must be a StatusReference")
    _check_claims(claims)
    iat = _seconds(issued_at)
    payload: dict[Any, Any] = {"iss": issuer, "iat": iat}
    if expires_at is not None:
        if _seconds(expires_at) <= iat:
            raise InvalidArgument("a credential must expire after it is issued")
        payload["exp"] = _seconds(expires_at)
    payload.update(vct=vct, cnf={"jwk": _holder_public(holder_jwk)}, status=status.claim())
    for name, value in claims.items():
        payload[SDObj(name)] = value
    sd_jwt = _Issuer(
        payload,
        key.jwcrypto,
        sign_alg=ALGORITHM,
        add_decoy_claims=False,
        serialization_format="compact",
        extra_header_parameters={"typ": TYPE, "kid": key.kid},
    )
    return str(sd_jwt.sd_jwt_issuance)


def split_key_binding(serialized: Any) -> tuple[str, str]:
    """``(SD-JWT part ending in '~', KB-JWT or '')`` of a serialized SD-JWT or SD-JWT+KB (RFC 9901 §4)."""
    if not isinstance(serialized, str) or not 0 < len(serialized) <= MAX_SERIALIZED or not serialized.isascii():
        raise VerificationFailed("an SD-JWT is ASCII text of at most 256 KiB")
    cut = serialized.rfind(SEPARATOR)
    if cut <= 0:
        raise VerificationFailed("not an SD-JWT (no '~' after the issuer-signed JWT)")
    return serialized[: cut + 1], serialized[cut + 1 :]


def verify_credential(
    serialized: str,
    jwks: dict[str, Any],
    *,
    at: datetime,
    vcts: Collection[str] = KNOWN_VCTS,
    issuer: str | None = None,
) -> VerifiedCredential:
    """The verified credential an issued-form SD-JWT VC (no Key Binding JWT) stands for; see the module
    docstring for the checks. ``VerificationFailed`` says which failed."""
    sd_jwt, key_binding = split_key_binding(serialized)
    if key_binding:
        raise VerificationFailed("this is a presentation with a Key Binding JWT: verify it as a presentation")
    return verify_sd_jwt(sd_jwt, jwks, at=at, vcts=vcts, issuer=issuer)


def verify_sd_jwt(
    sd_jwt: str,
    jwks: dict[str, Any],
    *,
    at: datetime,
    vcts: Collection[str] = KNOWN_VCTS,
    issuer: str | None = None,
) -> VerifiedCredential:
    """The checks of ``verify_credential`` on the SD-JWT part (``<JWT>~<D1>~…~``) of a credential or a
    presentation (``issuance.presentations`` checks the key binding on top)."""
    jwt, *disclosures, empty = sd_jwt.split(SEPARATOR)
    if empty or not jwt:
        raise VerificationFailed("not an SD-JWT (it must be <JWT>~<Disclosure>~…~)")
    segments = jwt.split(".") if jwt.count(".") == 2 else ["", "", ""]
    header = _json_part(segments[0], "the issuer-signed JWT's header")
    if header.get("typ") != TYPE:
        raise VerificationFailed(f"not an SD-JWT VC: typ must be {TYPE}")
    if header.get("alg") != ALGORITHM:
        raise VerificationFailed(f"an SD-JWT VC of this platform is signed {ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise VerificationFailed("the issuer-signed JWT names no key (kid)")
    try:
        issuer_key = jwcrypto_jwk.JWK(**find_key(jwks, kid).as_dict(private=False))
    except InvalidArgument as error:
        raise VerificationFailed(error.message) from None
    _json_part(segments[1], "the issuer-signed JWT's payload")  # an object, before the library reads it
    by_digest = _decode_disclosures(disclosures)
    try:
        verifier = SDJWTVerifier(sd_jwt, lambda _issuer, _header: issuer_key, serialization_format="compact")
    except (JWException, ValueError, TypeError, KeyError, AttributeError) as error:
        raise VerificationFailed(f"the issuer signature does not verify ({type(error).__name__})") from None
    payload = verifier._sd_jwt_payload
    if not isinstance(payload, dict):
        raise VerificationFailed("the issuer-signed JWT's payload is not a JSON object")
    _check_references(payload, by_digest)
    try:
        unpacked = verifier.get_verified_payload()
    except (ValueError, TypeError, KeyError) as error:
        raise VerificationFailed(f"the disclosures do not unpack: {error}") from None
    return _verified(unpacked, kid, at=at, vcts=vcts, issuer=issuer)


def _verified(
    unpacked: dict[str, Any], kid: str, *, at: datetime, vcts: Collection[str], issuer: str | None
) -> VerifiedCredential:
    iss = unpacked.get("iss")
    if not isinstance(iss, str) or not iss:
        raise VerificationFailed("the credential names no issuer (iss)")
    if issuer is not None and iss != issuer:
        raise VerificationFailed("the credential is from another issuer than the one expected")
    vct = unpacked.get("vct")
    if not isinstance(vct, str) or vct not in vcts:
        raise VerificationFailed("the credential's vct is not a type accepted here")
    issued_at = _instant(unpacked.get("iat"), "iat")
    skewed = at + CLOCK_SKEW
    if issued_at > skewed:
        raise VerificationFailed("the credential is issued in the future (iat)")
    if "nbf" in unpacked and _instant(unpacked["nbf"], "nbf") > skewed:
        raise VerificationFailed("the credential is not valid yet (nbf)")
    expires_at = _instant(unpacked["exp"], "exp") if "exp" in unpacked else None
    if expires_at is not None and at >= expires_at:
        raise VerificationFailed("the credential has expired (exp)")
    cnf = unpacked.get("cnf")
    if not isinstance(cnf, dict) or not isinstance(cnf.get("jwk"), dict):
        raise VerificationFailed("the credential binds no holder key (cnf.jwk)")
    try:
        holder_jwk = _holder_public(cnf["jwk"])
    except InvalidArgument as error:
        raise VerificationFailed(f"the credential's cnf.jwk is not usable: {error.message}") from None
    try:
        status = StatusReference.from_claim(unpacked["status"]) if "status" in unpacked else None
    except InvalidArgument as error:
        raise VerificationFailed(error.message) from None
    claims = {name: value for name, value in unpacked.items() if name not in RESERVED}
    return VerifiedCredential(iss, vct, kid, issued_at, expires_at, holder_jwk, status, claims)


def _decode_disclosures(disclosures: list[str]) -> dict[str, list[Any]]:
    """Each disclosure decoded, by digest: well formed (RFC 9901 §4.2.1–2, §7.1 step 3.3), none twice."""
    by_digest: dict[str, list[Any]] = {}
    for disclosure in disclosures:
        decoded = _json_part(disclosure, "a disclosure", kind=list)
        if len(decoded) not in (2, 3) or not isinstance(decoded[0], str):
            raise VerificationFailed("a disclosure is not [salt, name, value] nor [salt, value]")
        if len(decoded) == 3 and (not isinstance(decoded[1], str) or decoded[1] in ("_sd", "...")):
            raise VerificationFailed("a disclosure's claim name is not a string or is _sd or ...")
        digest = _digest(disclosure)
        if digest in by_digest:
            raise VerificationFailed("a disclosure appears twice (duplicate digest)")
        by_digest[digest] = decoded
    return by_digest


def _check_references(payload: dict[str, Any], by_digest: dict[str, list[Any]]) -> None:
    """RFC 9901 §7.1 steps 3–5 that the library leaves unchecked: the hash algorithm, every digest once,
    each disclosure of the right kind for where it is referenced, and every disclosure referenced."""
    if payload.get("_sd_alg", HASH_ALGORITHM) != HASH_ALGORITHM:
        raise VerificationFailed("the disclosures' hash algorithm (_sd_alg) must be sha-256")
    referenced: set[str] = set()

    def walk(node: Any, top: bool) -> None:
        if isinstance(node, dict):
            digests = node.get("_sd", [])
            if not isinstance(digests, list) or not all(isinstance(d, str) for d in digests):
                raise VerificationFailed("an _sd member is not an array of digests")
            for digest in digests:
                if digest in referenced:
                    raise VerificationFailed("a digest appears twice in the credential (duplicate digest)")
                referenced.add(digest)
                if digest in by_digest:
                    decoded = by_digest[digest]
                    if len(decoded) != 3:
                        raise VerificationFailed("an array-element disclosure is referenced from an object")
                    if top and decoded[1] in RESERVED:
                        raise VerificationFailed(
                            "a disclosure names a claim kept in the clear (iss, iat, exp, nbf, vct, cnf, status, sub)"
                        )
                    walk(decoded[2], False)
            for name, value in node.items():
                if name != "_sd":
                    walk(value, False)
        elif isinstance(node, list):
            for element in node:
                if isinstance(element, dict) and list(element) == ["..."] and isinstance(element["..."], str):
                    digest = element["..."]
                    if digest in referenced:
                        raise VerificationFailed("a digest appears twice in the credential (duplicate digest)")
                    referenced.add(digest)
                    if digest in by_digest:
                        if len(by_digest[digest]) != 2:
                            raise VerificationFailed("an object-property disclosure is referenced from an array")
                        walk(by_digest[digest][1], False)
                else:
                    walk(element, False)

    walk(payload, True)
    if not set(by_digest) <= referenced:
        raise VerificationFailed("a disclosure is not referenced by the issuer-signed JWT (tampered or foreign)")


def _digest(disclosure: str) -> str:
    return b64url(hashlib.sha256(disclosure.encode("ascii")).digest())


def _json_part(part: str, what: str, kind: type = dict) -> Any:
    try:
        value = json.loads(b64url_decode(part))
    except (InvalidArgument, ValueError, UnicodeDecodeError):
        raise VerificationFailed(f"{what} is not base64url JSON") from None
    if not isinstance(value, kind):
        raise VerificationFailed(f"{what} is not a JSON {'object' if kind is dict else 'array'}")
    return value


def _check_claims(claims: Any) -> None:
    if not isinstance(claims, Mapping) or not claims:
        raise InvalidArgument("a credential has at least one claim")
    if len(claims) > MAX_CLAIMS:
        raise InvalidArgument(f"a credential has at most {MAX_CLAIMS} claims")
    for name in claims:
        if not isinstance(name, str) or not name:
            raise InvalidArgument("claim names are non-empty strings")
        if name in RESERVED or name == "...":
            raise InvalidArgument(f"the claim name {name!r} is reserved (SD-JWT / SD-JWT VC)")
    try:
        json.dumps(dict(claims), allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidArgument(
            "claim values must be JSON values (strings, numbers, booleans, arrays, objects)"
        ) from None

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "_sd" in node or "..." in node:
                raise InvalidArgument("claim values may not use the names _sd or ... (SD-JWT's own)")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(dict(claims))


def _holder_public(jwk: Any) -> dict[str, Any]:
    if not isinstance(jwk, Mapping):
        raise InvalidArgument("the holder key is a public JWK")
    if "d" in jwk:
        raise InvalidArgument("the holder key must be a public JWK (no private member d)")
    members = public_key(dict(jwk)).as_dict(private=False)
    return {name: members[name] for name in ("kty", "crv", "x", "y")}


def _seconds(at: Any) -> int:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidArgument("instants must be timezone-aware datetimes")
    return int(at.timestamp())


def _instant(value: Any, name: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise VerificationFailed(f"the credential's {name} must be a NumericDate")
    return datetime.fromtimestamp(value, UTC)
