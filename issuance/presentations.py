"""Selective disclosure with key binding: an SD-JWT VC presented as SD-JWT+KB (RFC 9901 §4.3, §7.3).

The holder (the portal with the key it holds for the citizen, or the citizen's wallet) keeps only the
Disclosures of the claims it chooses (the ``sd-jwt`` library's ``SDJWTHolder``): the verifier receives the
issuer-signed JWT, which holds digests only, and those Disclosures — the values not chosen appear nowhere in
the presentation. It appends a Key Binding JWT (§4.3): header ``{"alg": "ES256", "typ": "kb+jwt"}``, claims
``iat``, ``aud`` (the verifier), ``nonce`` (the verifier's challenge) and ``sd_hash`` — the base64url SHA-256
of the presentation up to and including the ``~`` before the KB-JWT (§4.3.1) — signed with the private half of
the credential's ``cnf.jwk``. The library's own KB-JWT takes its ``iat`` from the wall clock, so this module
signs it itself (``key_binding_jwt``, a few lines of joserfc) to keep the instant a parameter.

The verifier (``verify_presentation``, §7.3) checks the issuer part as ``issuance.credentials`` does
(signature, ``typ``, disclosures, ``vct``, expiry), then that a KB-JWT is present, its ``typ`` and ``alg``,
its signature with ``cnf.jwk``, ``aud`` and ``nonce`` equal to what it expects, ``iat`` recent (within
``max_age``, and not in the future) and ``sd_hash`` over exactly the presented parts — so no Disclosure can
be added or removed after the holder signed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from sd_jwt.holder import SDJWTHolder

from core.errors import InvalidArgument
from issuance.credentials import (
    KNOWN_VCTS,
    VerificationFailed,
    VerifiedCredential,
    split_key_binding,
    verify_sd_jwt,
)
from issuance.issuer_keys import ALGORITHM, SigningKey, b64url, b64url_decode, public_key, thumbprint

KB_TYPE = "kb+jwt"
MAX_AGE = timedelta(minutes=5)  # how old a KB-JWT may be (the verifier's nonce is fresh anyway)
CLOCK_SKEW = timedelta(seconds=60)
MAX_TEXT = 512


@dataclass(frozen=True, slots=True)
class VerifiedPresentation:
    """A verified presentation: the credential with the disclosed claims only, and what the holder bound."""

    credential: VerifiedCredential
    audience: str
    nonce: str
    presented_at: datetime


def present(
    credential: str,
    holder_key: SigningKey,
    *,
    disclose: Iterable[str],
    audience: str,
    nonce: str,
    at: datetime,
) -> str:
    """The SD-JWT+KB of ``credential`` (issued form) revealing the top-level claims ``disclose`` only, bound
    to ``audience`` and ``nonce`` by ``holder_key`` (which must be the key the credential's ``cnf`` names)."""
    _check_text(audience, "audience")
    _check_text(nonce, "nonce")
    try:
        sd_jwt, key_binding = split_key_binding(credential)
    except VerificationFailed as error:
        raise InvalidArgument(error.message) from None
    if key_binding:
        raise InvalidArgument("present an issued credential, not a presentation")
    try:
        holder = SDJWTHolder(sd_jwt, serialization_format="compact")
    except (ValueError, TypeError, KeyError):
        raise InvalidArgument("the credential is not an SD-JWT") from None
    payload = holder.sd_jwt_payload
    cnf = payload.get("cnf") if isinstance(payload, dict) else None
    jwk = cnf.get("jwk") if isinstance(cnf, dict) else None
    if not isinstance(jwk, dict) or thumbprint(jwk) != thumbprint(holder_key.public_jwk):
        raise InvalidArgument("this is not the holder key the credential is bound to (cnf.jwk)")
    top_level = set(payload.get("_sd", [])) if isinstance(payload.get("_sd"), list) else set()
    names = {
        decoded[1]
        for digest, decoded in holder._hash_to_decoded_disclosure.items()
        if digest in top_level and len(decoded) == 3
    }
    chosen = list(dict.fromkeys(disclose))
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise InvalidArgument(f"the credential has no claim named {', '.join(map(repr, unknown))}")
    try:
        holder.create_presentation({name: True for name in chosen})
    except (ValueError, TypeError, KeyError) as error:
        raise InvalidArgument(f"the disclosures cannot be selected ({type(error).__name__})") from None
    selected = str(holder.sd_jwt_presentation)  # <JWT>~<chosen disclosures>~ (no KB-JWT asked of the library)
    return selected + key_binding_jwt(holder_key, selected, audience=audience, nonce=nonce, at=at)


def key_binding_jwt(holder_key: SigningKey, sd_jwt: str, *, audience: str, nonce: str, at: datetime) -> str:
    """The KB-JWT (RFC 9901 §4.3) over ``sd_jwt`` (``<JWT>~<D1>~…~``) for ``audience`` and ``nonce``."""
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InvalidArgument("instants must be timezone-aware datetimes")
    claims = {"iat": int(at.timestamp()), "aud": audience, "nonce": nonce, "sd_hash": sd_hash(sd_jwt)}
    return jwt.encode({"alg": ALGORITHM, "typ": KB_TYPE}, claims, holder_key.private, algorithms=[ALGORITHM])


def sd_hash(sd_jwt: str) -> str:
    """The base64url SHA-256 of the presented SD-JWT up to its last ``~`` (RFC 9901 §4.3.1)."""
    return b64url(hashlib.sha256(sd_jwt.encode("ascii")).digest())


def verify_presentation(
    presentation: str,
    jwks: dict[str, Any],
    *,
    audience: str,
    nonce: str,
    at: datetime,
    max_age: timedelta = MAX_AGE,
    vcts: Collection[str] = KNOWN_VCTS,
    issuer: str | None = None,
) -> VerifiedPresentation:
    """The verified presentation (see the module docstring); ``VerificationFailed`` says which check failed."""
    sd_jwt, key_binding = split_key_binding(presentation)
    credential = verify_sd_jwt(sd_jwt, jwks, at=at, vcts=vcts, issuer=issuer)
    if not key_binding:
        raise VerificationFailed("the presentation has no Key Binding JWT: the holder did not prove its key")
    header = _header(key_binding)
    if header.get("typ") != KB_TYPE:
        raise VerificationFailed(f"the Key Binding JWT's typ must be {KB_TYPE}")
    if header.get("alg") != ALGORITHM:
        raise VerificationFailed(f"the Key Binding JWT must be signed {ALGORITHM}")
    try:
        decoded = jwt.decode(key_binding, public_key(credential.holder_jwk), algorithms=[ALGORITHM])
    except (JoseError, ValueError, TypeError):
        raise VerificationFailed(
            "the Key Binding JWT's signature does not verify with the holder key the credential names (cnf)"
        ) from None
    claims = dict(decoded.claims)
    if claims.get("aud") != audience:
        raise VerificationFailed("the Key Binding JWT is for another verifier (aud)")
    if claims.get("nonce") != nonce:
        raise VerificationFailed("the Key Binding JWT answers another challenge (nonce)")
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int) or iat < 0:
        raise VerificationFailed("the Key Binding JWT's iat must be a NumericDate")
    presented_at = datetime.fromtimestamp(iat, UTC)
    if presented_at > at + CLOCK_SKEW:
        raise VerificationFailed("the Key Binding JWT is issued in the future (iat)")
    if at - presented_at > max_age:
        raise VerificationFailed("the Key Binding JWT is stale (iat too old): ask the holder again")
    if claims.get("sd_hash") != sd_hash(sd_jwt):
        raise VerificationFailed("the Key Binding JWT's sd_hash does not match the presented disclosures")
    return VerifiedPresentation(credential, audience, nonce, presented_at)


def _header(token: str) -> dict[str, Any]:
    if token.count(".") != 2:
        raise VerificationFailed("the Key Binding JWT is not a compact JWS")
    try:
        header = json.loads(b64url_decode(token.split(".", 1)[0]))
    except (InvalidArgument, ValueError, UnicodeDecodeError):
        raise VerificationFailed("the Key Binding JWT's header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise VerificationFailed("the Key Binding JWT's header is not a JSON object")
    return header


def _check_text(value: Any, name: str) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT:
        raise InvalidArgument(f"the {name} is a non-empty string of at most {MAX_TEXT} characters")
