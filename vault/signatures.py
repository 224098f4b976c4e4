"""The issuer's signature on a document it delivers into a citizen's vault, and its verification.

The signature is a JWT (RFC 7519) in JWS Compact Serialization (RFC 7515 §7.1), signed with a key of the
agency's registered JWKS (``dinhdanh clients add-agency --jwks``):

- header: ``alg`` (ES256, EdDSA, PS256 or RS256; never ``none`` nor an HMAC), ``kid`` (a key of the JWKS),
  ``typ`` = ``issued-document+jwt`` (explicit typing, RFC 8725 §3.11, so no other JWT of the agency's
  passes for one);
- claims: ``iss`` the agency's client id, ``jti`` its own document id (``issuer_document_id``), ``iat``,
  ``document_type`` (the catalog value, e.g. ``criminal_record_certificate``), ``content_sha256``, the
  base64url SHA-256 of the exact bytes delivered, and ``issued_on`` / ``expires_on`` (``YYYY-MM-DD``)
  exactly when the delivery states those dates.

The citizen is not named in it: the content names them, and the signature binds the content. The vault
verifies before it stores anything; the stored signature lets anyone holding the agency's public keys
verify the document again later (the QR of an issued certificate points there).
"""

from __future__ import annotations

import base64
import time
from datetime import date
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from core.errors import FailedPrecondition, InvalidArgument
from vault.documents import DocumentType, Issued

ALGORITHMS = ("ES256", "EdDSA", "PS256", "RS256")
TYPE = "issued-document+jwt"
DATE_CLAIMS = ("issued_on", "expires_on")
Dates = tuple[date | None, date | None]
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def content_digest(sha256: bytes) -> str:
    return base64.urlsafe_b64encode(sha256).decode().rstrip("=")


def sign(
    key: ECKey | RSAKey | OKPKey,
    alg: str,
    issued: Issued,
    document_type: DocumentType,
    sha256: bytes,
    dates: Dates = (None, None),
) -> bytes:
    """What an agency sends as ``issuer_signature`` (tests and the platform's own issuing services use it)."""
    header = {"alg": alg, "kid": key.kid, "typ": TYPE}
    claims: dict[str, Any] = {
        "iss": issued.issuer_client_id,
        "jti": issued.issuer_document_id,
        "iat": int(time.time()),
        "document_type": document_type.value,
        "content_sha256": content_digest(sha256),
    }
    claims |= {name: day.isoformat() for name, day in zip(DATE_CLAIMS, dates, strict=True) if day is not None}
    return jwt.encode(header, claims, key, algorithms=[alg]).encode()


def public_key_set(jwks: dict[str, Any] | None) -> KeySet:
    """The agency's registered keys; none registered means it cannot issue (FAILED_PRECONDITION)."""
    if not jwks or not jwks.get("keys"):
        raise FailedPrecondition("the issuer has no registered signing keys (dinhdanh clients add-agency --jwks)")
    return KeySet.import_key_set(jwks)  # type: ignore[arg-type]


def check(keys: KeySet, issued: Issued, document_type: DocumentType, dates: Dates = (None, None)) -> dict[str, Any]:
    """Verify the signature and every claim but the content digest (known only at the end of the upload); the
    claims. INVALID_ARGUMENT with the reason when anything is off."""
    try:
        token = jwt.decode(issued.signature, keys, algorithms=ALGORITHMS)
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidArgument(
            f"issuer_signature does not verify with the issuer's keys ({type(error).__name__})"
        ) from None
    if token.header.get("typ") != TYPE:
        raise InvalidArgument(f"issuer_signature must have typ {TYPE}")
    claims = token.claims
    expected = {"iss": issued.issuer_client_id, "jti": issued.issuer_document_id, "document_type": document_type.value}
    expected |= {name: day.isoformat() if day else None for name, day in zip(DATE_CLAIMS, dates, strict=True)}
    for name, value in expected.items():
        if claims.get(name) != value:
            raise InvalidArgument(f"issuer_signature: claim {name} does not match the delivery")
    if not isinstance(claims.get("iat"), int) or not isinstance(claims.get("content_sha256"), str):
        raise InvalidArgument("issuer_signature lacks iat or content_sha256")
    return claims


def check_content(claims: dict[str, Any], sha256: bytes) -> None:
    if claims["content_sha256"] != content_digest(sha256):
        raise InvalidArgument("issuer_signature: content_sha256 does not match the delivered content")


def check_public_jwks(jwks: Any) -> dict[str, Any]:
    """A JWKS an agency registers: public keys only, each with a unique kid and a signing algorithm."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise InvalidArgument('a JWKS is {"keys": [...]} with at least one key')
    kids = []
    for key in jwks["keys"]:
        if not isinstance(key, dict) or PRIVATE_MEMBERS & key.keys():
            raise InvalidArgument("the JWKS must hold public keys only")
        if not key.get("kid") or key.get("alg") not in ALGORITHMS:
            raise InvalidArgument(f"every key needs a kid and an alg among {', '.join(ALGORITHMS)}")
        kids.append(key["kid"])
    if len(set(kids)) != len(kids):
        raise InvalidArgument("the kids of the JWKS must be unique")
    try:
        KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidArgument(f"the JWKS does not import ({type(error).__name__})") from None
    return {"keys": [dict(key) for key in jwks["keys"]]}
