"""ES256 (P-256) keys for the signed results: the issuer's key and the holder's key.

The issuer signs SD-JWT VCs (``issuance.credentials``), Token Status Lists (``issuance.status_list``) and the
offline QR payload (``issuance.qr``) with one P-256 key (RFC 7518 §3.4 ES256; RFC 9053 §2.1 for COSE). The
holder's key (held by the portal for the citizen, or the citizen's own wallet) signs Key Binding JWTs
(``issuance.presentations``); its public JWK is the credential's ``cnf.jwk`` (RFC 7800 §3.2).

A key derived from a 32-byte seed (``SigningKey.from_seed``) is derived as the consent key is
(``consent.signing``): the P-256 scalar ``int.from_bytes(seed) mod (n − 1) + 1`` (FIPS 186-5 §A.4.2), so every
replica holding the seed holds the same key. The JWS ``kid`` is the RFC 7638 JWK thumbprint (SHA-256,
base64url) of the public key; the COSE ``kid`` (RFC 9052 §3.1, label 4) is the first 8 bytes of that same
thumbprint digest, as the EU Digital COVID Certificate's ``kid`` is the first 8 bytes of its certificate's
SHA-256 (HCERT spec §3.3.1) — short in a QR, and computed from the key itself, so a verifier matches it against
any published JWK without trusting the JWK's ``kid`` string.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from jwcrypto import jwk as jwcrypto_jwk
from pycose.keys.curves import P256
from pycose.keys.ec2 import EC2Key

from core.errors import InvalidArgument
from core.keys.signing import Signer, SignerECKey, SoftSigner, jose_key

ALGORITHM = "ES256"
SEED_BYTES = 32
COSE_KID_BYTES = 8
# the order n of the P-256 group (SEC 2 §2.4.2, FIPS 186-5 §3.2.1.3)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """base64url without padding (RFC 7515 §2); a clear ``InvalidArgument`` on bad input."""
    if not isinstance(text, str) or not text.isascii() or "=" in text:
        raise InvalidArgument("not base64url text")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise InvalidArgument("not base64url text") from None


def thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint (SHA-256, base64url) of a P-256 public JWK."""
    return b64url(_thumbprint_digest(jwk))


def _thumbprint_digest(jwk: dict[str, Any]) -> bytes:
    members = {name: jwk.get(name) for name in ("crv", "kty", "x", "y")}
    if not all(isinstance(value, str) for value in members.values()):
        raise InvalidArgument("a P-256 JWK has kty, crv, x and y")
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("ascii")).digest()


def cose_kid(jwk: dict[str, Any]) -> bytes:
    """The COSE ``kid`` of a public JWK: the first 8 bytes of its RFC 7638 thumbprint digest."""
    return _thumbprint_digest(jwk)[:COSE_KID_BYTES]


def public_key(jwk: Any) -> ECKey:
    """A public P-256 key from its JWK (the private member ``d``, if any, is dropped)."""
    if not isinstance(jwk, dict):
        raise InvalidArgument("a public key is a JWK object")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise InvalidArgument("the key must be an EC P-256 JWK")
    public = {name: jwk[name] for name in ("kty", "crv", "x", "y") if name in jwk}
    try:
        return ECKey.import_key(public, {"kid": str(jwk.get("kid", "")), "use": "sig", "alg": ALGORITHM})
    except (ValueError, TypeError, JoseError) as error:
        raise InvalidArgument(f"the JWK is not a valid P-256 public key ({type(error).__name__})") from None


def public_jwk(jwk: dict[str, Any]) -> dict[str, Any]:
    """The public members of a P-256 JWK, with its thumbprint as ``kid``."""
    key = public_key(jwk)
    public = {name: value for name, value in key.as_dict(private=False).items() if name in ("kty", "crv", "x", "y")}
    return {**public, "kid": thumbprint(public)}


def jwks_keys(jwks: Any) -> list[dict[str, Any]]:
    """The P-256 signing keys of a JWK Set (RFC 7517 §5); other keys are skipped."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise InvalidArgument("the issuer keys must be a JWK Set ({'keys': [...]})")
    return [
        key for key in jwks["keys"] if isinstance(key, dict) and key.get("kty") == "EC" and key.get("crv") == "P-256"
    ]


def find_key(jwks: Any, kid: str) -> ECKey:
    """The key of ``jwks`` whose ``kid`` is ``kid``; ``InvalidArgument`` when none is."""
    for jwk in jwks_keys(jwks):
        if jwk.get("kid") == kid:
            return public_key(jwk)
    raise InvalidArgument("the signature names a key the issuer does not publish (unknown kid)")


def cose_public_key(jwk: dict[str, Any]) -> EC2Key:
    """The pycose verification key of a public P-256 JWK."""
    key = public_key(jwk)
    members = key.as_dict(private=False)
    return EC2Key(crv=P256, x=b64url_decode(str(members["x"])), y=b64url_decode(str(members["y"])))


class _SignerJWK(jwcrypto_jwk.JWK):  # type: ignore[misc]
    """A public jwcrypto JWK whose signing goes through a signer (what ``sd-jwt`` signs with)."""

    def __init__(self, private: SignerECKey, **members: Any) -> None:
        super().__init__(**members)
        self._signer_key = private

    def _get_private_key(self, arg: Any = None) -> SignerECKey:
        return self._signer_key


@dataclass(frozen=True)
class SigningKey:
    """A private P-256 key (issuer or holder) with its key ids and the forms each library takes."""

    private: ECKey
    _jwcrypto: jwcrypto_jwk.JWK = field(init=False, repr=False, compare=False)
    _cose: EC2Key = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.private.private_key, SignerECKey):  # in a token: the libraries sign through it
            members = self.private.as_dict(private=False)
            object.__setattr__(self, "_jwcrypto", _SignerJWK(self.private.private_key, **{**members, "kid": self.kid}))
            object.__setattr__(self, "_cose", cose_public_key(members))  # verifies only: qr.py signs through .private
            return
        members = self.private.as_dict(private=True)
        if members.get("crv") != "P-256" or "d" not in members:
            raise InvalidArgument("a signing key is a private P-256 key")
        object.__setattr__(self, "_jwcrypto", jwcrypto_jwk.JWK(**{**members, "kid": self.kid}))
        cose = EC2Key(
            crv=P256,
            x=b64url_decode(str(members["x"])),
            y=b64url_decode(str(members["y"])),
            d=b64url_decode(str(members["d"])),
        )
        object.__setattr__(self, "_cose", cose)

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """The key a 32-byte seed stands for (see the module docstring)."""
        if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
            raise InvalidArgument(f"a signing key seed is {SEED_BYTES} bytes")
        scalar = int.from_bytes(seed, "big") % (P256_ORDER - 1) + 1
        return cls._of(ec.derive_private_key(scalar, ec.SECP256R1()))

    @classmethod
    def from_signer(cls, signer: Signer) -> SigningKey:
        """The key of ``KeyProvider.signer(ISSUANCE_SIGNING)``: the seed's (the same key as ``from_seed``), or a
        P-256 key in a PKCS#11 token (``core.keys.pkcs11``) that signs every JWS and COSE message in the token."""
        if signer.alg != ALGORITHM:
            raise InvalidArgument(f"an issuer key is {ALGORITHM}, not {signer.alg}")
        if isinstance(signer, SoftSigner):
            assert isinstance(signer.key, ec.EllipticCurvePrivateKey)
            return cls._of(signer.key)
        key = jose_key(signer)
        assert isinstance(key, ECKey)
        return cls(key)

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh random key (a holder key for a wallet, a test key)."""
        return cls.from_seed(secrets.token_bytes(SEED_BYTES))

    @classmethod
    def _of(cls, private: ec.EllipticCurvePrivateKey) -> SigningKey:
        unnamed = ECKey.import_key(private)
        kid = unnamed.thumbprint()
        return cls(ECKey.import_key(private, {"kid": kid, "use": "sig", "alg": ALGORITHM}))

    @property
    def kid(self) -> str:
        """The JWS ``kid``: the RFC 7638 thumbprint of the public key."""
        return thumbprint(self.private.as_dict(private=False))

    @property
    def cose_kid(self) -> bytes:
        """The COSE ``kid``: the first 8 bytes of the thumbprint digest."""
        return cose_kid(self.private.as_dict(private=False))

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public JWK with ``kid``, ``use`` and ``alg`` (what the issuer publishes, what ``cnf.jwk`` holds)."""
        members = self.private.as_dict(private=False)
        public = {name: members[name] for name in ("kty", "crv", "x", "y")}
        return {**public, "kid": self.kid, "use": "sig", "alg": ALGORITHM}

    def jwks(self) -> dict[str, Any]:
        """The JWK Set (RFC 7517 §5) of the public key only."""
        return {"keys": [self.public_jwk]}

    @property
    def jwcrypto(self) -> jwcrypto_jwk.JWK:
        """The key as the ``sd-jwt`` library takes it (jwcrypto)."""
        return self._jwcrypto

    @property
    def cose(self) -> EC2Key:
        """The key as ``pycose`` takes it."""
        return self._cose
