"""Forgeries that only a signature check can refuse: well-formed, re-encoded, carrying the original signature.

Flipping a character of a QR text or of a JWT segment breaks the encoding (zlib, Base45, base64url JSON) first,
so a verifier refuses it before it ever looks at the signature. These helpers change a *signed claim* and
re-encode it properly instead — the COSE_Sign1 (RFC 9052 §4.2) of a QR stays valid CBOR, zlib and Base45
(RFC 9285); the issuer-signed JWT of an SD-JWT VC (RFC 9901 §4) stays valid base64url JSON, every Disclosure
referenced by a digest — and keep the old signature, so the signature is what must say no.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib
from typing import Any

import cbor2

from issuance.qr import CLAIM_CERTIFICATE, COSE_SIGN1_TAG, PREFIX, base45_encode
from tests.issuance.sd_jwt_helpers import b64, b64json
from tests.issuance.test_qr import _sign1_of

FORGED_NAME = "Trần Văn Giả"


def forged_qr(text: str, changes: dict[int, Any] | None = None) -> str:
    """QR ``text`` with its certificate fields (CBOR map keys 1–8 of ``issuance.qr.QrFields``) changed as
    ``changes`` says (default: the holder's name, key 2), re-encoded with the original COSE signature."""
    changes = changes or {2: FORGED_NAME}
    protected, unprotected, payload, signature = _sign1_of(text).value
    claims = cbor2.loads(payload)
    before = dict(claims[CLAIM_CERTIFICATE])
    claims[CLAIM_CERTIFICATE] = {**before, **changes}
    assert claims[CLAIM_CERTIFICATE] != before, "the forgery must change a signed field"
    sign1 = cbor2.CBORTag(
        COSE_SIGN1_TAG, [protected, dict(unprotected), cbor2.dumps(claims, canonical=True), signature]
    )
    return PREFIX + base45_encode(zlib.compress(cbor2.dumps(sign1), 9))


def forged_credential(serialized: str, *, claim: str = "full_name", value: Any = FORGED_NAME, **clear: Any) -> str:
    """SD-JWT VC ``serialized`` with one change the issuer never signed, the old signature kept.

    With ``clear`` (e.g. ``status={...}``, ``exp=...``) those claims of the issuer-signed JWT's payload are
    replaced. Otherwise the selectively disclosable ``claim`` gets a new Disclosure ``[salt, claim, value]``
    whose digest takes the place of the original's in ``_sd``: every Disclosure is still referenced exactly
    once (RFC 9901 §7.1), the JWT is valid base64url JSON, and only the issuer signature no longer matches.
    """
    jwt, *disclosures, empty = serialized.split("~")
    assert empty == "", "an issued SD-JWT VC (no Key Binding JWT) ends in '~'"
    header, payload, signature = jwt.split(".")
    claims = b64json(payload)
    if clear:
        claims.update(clear)
    else:
        [index] = [i for i, d in enumerate(disclosures) if b64json(d)[1] == claim]
        replacement = b64([b64(secrets.token_bytes(16)), claim, value])
        claims["_sd"] = sorted(
            _digest(replacement) if digest == _digest(disclosures[index]) else digest for digest in claims["_sd"]
        )
        disclosures[index] = replacement
    forged = f"{header}.{b64(claims)}.{signature}"
    assert forged != jwt
    return "~".join([forged, *disclosures, ""])


def _digest(disclosure: str) -> str:
    """The digest of a Disclosure (RFC 9901 §4.2.3: base64url of SHA-256 over its ASCII)."""
    return b64(hashlib.sha256(disclosure.encode("ascii")).digest())
