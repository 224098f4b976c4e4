"""Signing keys behind one small interface: a ``Signer`` signs, its private key stays where it is.

- ``Signer``: ``alg`` (the JOSE name, RFC 7518 §3.1 / RFC 8037 §3.1), ``kid`` (the RFC 7638 thumbprint of the
  public key), ``public_jwk()`` and ``sign(message)``, whose output is the JWS signature value itself: ES256 the
  raw ``r || s`` of RFC 7518 §3.4 (64 bytes), EdDSA the raw Ed25519 signature (RFC 8037 §3.1, RFC 8032 §5.1.6),
  RS256 the RSASSA-PKCS1-v1_5 signature (RFC 7518 §3.3).
- ``SoftSigner``: a key held in this process (``cryptography``). ``derive(purpose, seed)`` is the key a purpose's
  seed has always stood for — P-256 scalar ``int(seed) mod (n − 1) + 1`` (FIPS 186-5 §A.4.2) for
  ``consent-signing``, ``issuance-signing``, ``issuance-document`` and ``health-signing``; the Ed25519 private key
  whose RFC 8032 seed is the 32 bytes for ``log-signing`` — so the file-backed keys are the keys of before.
- ``core.keys.pkcs11.TokenSigner``: a key in a PKCS#11 token (an HSM), which never leaves it.
- ``private_key(signer)`` and ``jose_key(signer)``: the signer as the libraries take a key — a ``cryptography``
  private-key object (for ``audit.checkpoint``, ``jwcrypto``, COSE) and a ``joserfc`` key (for JWTs) whose
  signing goes through ``Signer.sign``. A ``SoftSigner`` gives its own key, so nothing changes for it.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from joserfc.jwk import ECKey, OKPKey, RSAKey

from core.keys import purposes as p

ES256, EDDSA, RS256 = "ES256", "EdDSA", "RS256"
# the algorithm of each signing purpose (its seed, when file-backed; its key in the token, when in an HSM)
ALGORITHMS: dict[str, str] = {
    p.CONSENT_SIGNING: ES256,
    p.LOG_SIGNING: EDDSA,
    p.ISSUANCE_SIGNING: ES256,
    p.ISSUANCE_DOCUMENT: ES256,
    p.HEALTH_SIGNING: ES256,
}
# the order n of the P-256 group (SEC 2 §2.4.2)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey


class Signer(Protocol):
    alg: str
    kid: str

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK (RFC 7517) with ``kid``, ``alg`` and ``use: sig``."""
        ...

    def sign(self, message: bytes) -> bytes:
        """The JWS signature of ``message`` under ``alg`` (see the module docstring for the formats)."""
        ...


class SigningKeys(Protocol):
    def signer(self, purpose: str) -> Signer:
        """The signer of ``purpose`` (``ALGORITHMS``); ``KeyUnavailable`` when this process holds none."""
        ...


def public_jwk(public: PublicKey, alg: str) -> dict[str, Any]:
    """The JWK of ``public`` with its RFC 7638 thumbprint as ``kid``."""
    key: OKPKey | ECKey | RSAKey
    if isinstance(public, ed25519.Ed25519PublicKey):
        key = OKPKey.import_key(public)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        key = ECKey.import_key(public)
    else:
        key = RSAKey.import_key(public)
    return {**key.as_dict(private=False), "kid": key.thumbprint(), "alg": alg, "use": "sig"}


def algorithm_of(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return EDDSA
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"only P-256 EC keys sign here (ES256), not {key.curve.name}")
        return ES256
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return RS256
    raise ValueError(f"not a signing key: {type(key).__name__}")


class SoftSigner:
    """A key held in this process's memory (file-backed keys, the OP's sealed keys)."""

    def __init__(self, key: PrivateKey) -> None:
        self.key = key
        self.alg = algorithm_of(key)
        self._jwk = public_jwk(key.public_key(), self.alg)
        self.kid: str = self._jwk["kid"]

    def public_jwk(self) -> dict[str, Any]:
        return dict(self._jwk)

    def sign(self, message: bytes) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(message)
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(self.key.sign(message, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def __repr__(self) -> str:
        return f"SoftSigner({self.alg}, kid={self.kid})"


def derive(purpose: str, seed: bytes) -> SoftSigner:
    """The key the 32-byte seed of ``purpose`` stands for (see the module docstring)."""
    alg = ALGORITHMS.get(purpose)
    if alg is None:
        raise ValueError(f"{purpose!r} is not a signing purpose")
    if len(seed) != 32:
        raise ValueError(f"a {purpose} seed is 32 bytes")
    if alg == EDDSA:
        return SoftSigner(ed25519.Ed25519PrivateKey.from_private_bytes(seed))
    scalar = int.from_bytes(seed, "big") % (P256_ORDER - 1) + 1
    return SoftSigner(ec.derive_private_key(scalar, ec.SECP256R1()))


# -- the signer as the libraries take a key --------------------------------------------------------------------
# Each class implements the part of cryptography's private-key interface the libraries call — ``sign`` and
# ``public_key`` — through ``Signer.sign``; whatever would read the private key itself is refused.


class _NotExportable:
    _signer: Signer
    _public: Any

    def public_key(self) -> Any:
        return self._public

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise TypeError(f"the private key {self._signer.kid} is held by its signer and cannot be exported")

    def private_numbers(self) -> Any:
        raise TypeError(f"the private key {self._signer.kid} is held by its signer and cannot be exported")

    def private_bytes_raw(self) -> bytes:
        raise TypeError(f"the private key {self._signer.kid} is held by its signer and cannot be exported")

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self


class SignerECKey(_NotExportable, ec.EllipticCurvePrivateKey):
    """ES256 through a signer: ``sign(data, ECDSA(SHA256()))`` returns DER as ``cryptography`` does."""

    def __init__(self, signer: Signer, public: ec.EllipticCurvePublicKey) -> None:
        self._signer, self._public = signer, public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve  # type: ignore[no-any-return]

    @property
    def key_size(self) -> int:
        return self._public.key_size  # type: ignore[no-any-return]

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:  # type: ignore[override]
        algorithm = getattr(signature_algorithm, "algorithm", None)
        if not isinstance(signature_algorithm, ec.ECDSA) or not isinstance(algorithm, hashes.SHA256):
            raise ValueError("this key signs ES256 only: ECDSA with SHA-256 over the message")
        raw = self._signer.sign(data)
        return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise TypeError("a signing key does not agree keys")


class SignerEd25519Key(_NotExportable, ed25519.Ed25519PrivateKey):
    """EdDSA through a signer: ``sign(data)`` returns the 64-byte signature."""

    def __init__(self, signer: Signer, public: ed25519.Ed25519PublicKey) -> None:
        self._signer, self._public = signer, public

    def sign(self, data: bytes) -> bytes:
        return self._signer.sign(data)


class SignerRSAKey(_NotExportable, rsa.RSAPrivateKey):
    """RS256 through a signer: ``sign(data, PKCS1v15(), SHA256())``."""

    def __init__(self, signer: Signer, public: rsa.RSAPublicKey) -> None:
        self._signer, self._public = signer, public

    @property
    def key_size(self) -> int:
        return self._public.key_size  # type: ignore[no-any-return]

    def sign(self, data: bytes, padding_: Any, algorithm: Any) -> bytes:  # type: ignore[override]
        if not isinstance(padding_, padding.PKCS1v15) or not isinstance(algorithm, hashes.SHA256):
            raise ValueError("this key signs RS256 only: RSASSA-PKCS1-v1_5 with SHA-256")
        return self._signer.sign(data)

    def decrypt(self, ciphertext: bytes, padding_: Any) -> bytes:
        raise TypeError("a signing key does not decrypt")


def public_key_of(signer: Signer) -> PublicKey:
    """The ``cryptography`` public key of ``signer``."""
    jwk = signer.public_jwk()
    key = OKPKey.import_key(jwk) if jwk["kty"] == "OKP" else ECKey.import_key(jwk) if jwk["kty"] == "EC" else None
    return (key or RSAKey.import_key(jwk)).public_key  # type: ignore[return-value]


def private_key(signer: Signer) -> PrivateKey:
    """``signer`` as a ``cryptography`` private key (a ``SoftSigner``'s own key; else one signing through it)."""
    if isinstance(signer, SoftSigner):
        return signer.key
    public = public_key_of(signer)
    if isinstance(public, ed25519.Ed25519PublicKey):
        return SignerEd25519Key(signer, public)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return SignerECKey(signer, public)
    return SignerRSAKey(signer, public)


def jose_key(signer: Signer) -> ECKey | OKPKey | RSAKey:
    """``signer`` as a ``joserfc`` private key with its ``kid``, ``alg`` and ``use`` (for ``jwt.encode``)."""
    jwk = signer.public_jwk()
    cls = {"EC": ECKey, "OKP": OKPKey, "RSA": RSAKey}[jwk["kty"]]
    if isinstance(signer, SoftSigner):
        return cls.import_key(signer.key, {"kid": signer.kid, "alg": signer.alg, "use": "sig"})  # type: ignore[attr-defined, no-any-return]
    return cls(private_key(signer), jwk)  # type: ignore[abstract, no-any-return]


def digest(message: bytes) -> bytes:
    """SHA-256 of ``message`` (what CKM_ECDSA signs for ES256: RFC 7518 §3.4 hashes first)."""
    return hashlib.sha256(message).digest()
