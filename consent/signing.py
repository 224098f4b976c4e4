"""The platform's consent key: signs approved artefacts, signed statuses and status notifications (ES256).

The key is derived from the 32 random bytes of the ``CONSENT_SIGNING`` purpose (core.keys.purposes), so every
replica of the consent service holds the same key without a key table: the P-256 scalar is
``int.from_bytes(seed) mod (n − 1) + 1`` (always in [1, n − 1], FIPS 186-5 §A.4.2's reduction), the key id the
RFC 7638 JWK thumbprint (SHA-256) of the public key. Only the public half is published (``jwks``, the
``GetSigningKeys`` RPC) and stored (``consent.signing_keys``) for the vault and the edge, which check stored
artefacts against it.

Besides artefacts (``consent.artefact.sign``: the JWS payload is the canonical JSON itself), the key signs two
JWTs, each with an explicit ``typ`` (RFC 8725 §3.11) so that neither can pass for the other nor for an
artefact:

- a **signed status** (``typ: consent-status+jwt``): ``{iss, sub: consent id, client_id, status, fetches, iat,
  artefact_sha256}``, the evidence an agency keeps of what it was told (``artefact_sha256`` is the base64url
  SHA-256 of the canonical artefact bytes, so the status names exactly one artefact);
- a **Security Event Token** (RFC 8417, ``typ: secevent+jwt``) for status notifications: ``{iss, iat, jti, aud:
  client_id, events: {"urn:dinhdanh:consent:status": {consent_id, status, fetches}}}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from consent.states import Status
from core.errors import InvalidArgument

ALGORITHM = "ES256"
STATUS_TYPE = "consent-status+jwt"
SET_TYPE = "secevent+jwt"
STATUS_EVENT = "urn:dinhdanh:consent:status"
SEED_BYTES = 32
# the order n of the P-256 group (SEC 2 §2.4.2, FIPS 186-5 §3.2.1.3)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def artefact_sha256(canonical_bytes: bytes) -> str:
    """The base64url (no padding) SHA-256 of an artefact's canonical JSON bytes."""
    return b64url(hashlib.sha256(canonical_bytes).digest())


def public_key(jwk: dict[str, Any]) -> ECKey:
    """A public P-256 key from its JWK (a stored or published one), with its ``kid``."""
    public = {name: jwk[name] for name in ("kty", "crv", "x", "y") if name in jwk}
    parameters: Any = {"kid": jwk.get("kid", ""), "use": "sig", "alg": ALGORITHM}
    key = ECKey.import_key(public, parameters)
    if key.curve_name != "P-256":
        raise InvalidArgument("a consent key is a P-256 key")
    return key


def kid_of(token: str) -> str:
    """The ``kid`` of a compact JWS's protected header, unverified ('' when absent or malformed)."""
    try:
        header = json.loads(base64.urlsafe_b64decode(token.split(".", 1)[0] + "=="))
    except (ValueError, UnicodeDecodeError):
        return ""
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else ""


@dataclass(frozen=True, slots=True)
class ConsentKey:
    """The platform's consent signing key (private) with its key id."""

    private: ECKey

    @classmethod
    def from_seed(cls, seed: bytes) -> ConsentKey:
        """The key the 32-byte ``CONSENT_SIGNING`` seed stands for (see the module docstring)."""
        if len(seed) != SEED_BYTES:
            raise ValueError(f"the consent signing seed is {SEED_BYTES} bytes")
        scalar = int.from_bytes(seed, "big") % (P256_ORDER - 1) + 1
        derived = ec.derive_private_key(scalar, ec.SECP256R1())
        unnamed = ECKey.import_key(derived)
        kid = unnamed.thumbprint()  # RFC 7638 over {crv, kty, x, y}, SHA-256, base64url
        return cls(ECKey.import_key(derived, {"kid": kid, "use": "sig", "alg": ALGORITHM}))

    @property
    def kid(self) -> str:
        return str(self.private.kid)

    @property
    def public_jwk(self) -> dict[str, Any]:
        jwk = dict(self.private.as_dict(private=False))
        jwk.update(kid=self.kid, use="sig", alg=ALGORITHM)
        return jwk

    @property
    def public(self) -> ECKey:
        return public_key(self.public_jwk)

    def jwks(self) -> dict[str, Any]:
        """The JWK Set (RFC 7517 §5) of the public key only."""
        return {"keys": [self.public_jwk]}

    def _jwt(self, typ: str, claims: dict[str, Any]) -> str:
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": typ}
        return jwt.encode(header, claims, self.private, algorithms=[ALGORITHM])

    def sign_status(
        self,
        issuer: str,
        consent_id: uuid.UUID,
        client_id: str,
        status: Status,
        fetches: int,
        canonical_bytes: bytes,
        at: datetime,
    ) -> str:
        """The signed status (``typ: consent-status+jwt``) an agency keeps as evidence."""
        claims = {
            "iss": issuer,
            "sub": str(consent_id),
            "client_id": client_id,
            "status": status.value,
            "fetches": fetches,
            "iat": int(at.timestamp()),
            "artefact_sha256": artefact_sha256(canonical_bytes),
        }
        return self._jwt(STATUS_TYPE, claims)

    def status_event(
        self, issuer: str, jti: uuid.UUID, client_id: str, consent_id: uuid.UUID, status: Status, fetches: int,
        at: datetime,
    ) -> str:  # fmt: skip
        """A Security Event Token (RFC 8417 §2.2) telling the agency of a status change."""
        claims = {
            "iss": issuer,
            "iat": int(at.timestamp()),
            "jti": str(jti),
            "aud": client_id,
            "events": {STATUS_EVENT: {"consent_id": str(consent_id), "status": status.value, "fetches": fetches}},
        }
        return self._jwt(SET_TYPE, claims)


def verify_jwt(token: str, jwks: dict[str, Any], typ: str) -> dict[str, Any]:
    """The claims of a status or event JWT after checking its signature against ``jwks`` and its ``typ``
    (for agencies and tests: what a receiver does with the published JWKS)."""
    try:
        decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=[ALGORITHM])  # type: ignore[arg-type]
    except (JoseError, ValueError) as error:
        raise InvalidArgument(f"the consent JWT does not verify ({type(error).__name__})") from None
    if decoded.header.get("typ") != typ:
        raise InvalidArgument(f"expected a JWT of typ {typ}")
    return dict(decoded.claims)
