"""Signing keys in a PKCS#11 token (an HSM; SoftHSM2 in tests), through ``python-pkcs11``.

The private keys are generated in the token (``C_GenerateKeyPair``, PKCS#11 v2.40 §5.14) as token objects with
``CKA_SENSITIVE`` true and ``CKA_EXTRACTABLE`` false (§4.9: the value can never be read or wrapped out), found
again by ``CKA_LABEL``; a signature is one ``C_Sign``:

- ES256: ``CKM_ECDSA`` over SHA-256 of the message (RFC 7518 §3.4 hashes first; PKCS#11 Current Mechanisms
  §2.3.6: the output is ``r || s``, each the length of the group order — the JWS format as it is);
- EdDSA: ``CKM_EDDSA`` over the message (PKCS#11 v3.0 §2.3.14; pure Ed25519, RFC 8032 §5.1.6);
- RS256: ``CKM_SHA256_RSA_PKCS`` (RSASSA-PKCS1-v1_5 with SHA-256, RFC 8017 §8.2).

The public halves are read back from the token (``CKA_EC_POINT``, ``CKA_MODULUS``) to publish them as JWKs.

Sessions: one read-write session per ``Token`` (logged in once with the PIN; a login is per application, every
session shares it), and a lock around each call, because a PKCS#11 session must not be used by two threads at
once (v2.40 §5.6). The calls block — a network HSM takes milliseconds — so callers on an event loop sign in a
thread where it matters (``await asyncio.to_thread(signer.sign, message)``) or accept the short block. A
process started with ``spawn`` (the issuance builders) opens its own ``Token``: a session never crosses a fork.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from asn1crypto.core import OctetString
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from core.keys.provider import KeyUnavailable
from core.keys.signing import ALGORITHMS, EDDSA, ES256, RS256, digest, public_jwk

DEFAULT_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
_PRIVATE = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.TOKEN: True, Attribute.SIGN: True,
            Attribute.PRIVATE: True}  # fmt: skip
_PUBLIC = {Attribute.TOKEN: True, Attribute.VERIFY: True}
_CURVES = {ES256: "secp256r1", EDDSA: "1.3.101.112"}  # RFC 8410 §3: id-Ed25519
T = TypeVar("T")
_OPEN: dict[tuple[Path, str], Token] = {}
_OPENING = threading.Lock()


class TokenError(RuntimeError):
    """The token cannot be reached or used as configured (a configuration error, raised at start)."""


def _read_pin(path: Path) -> str:
    try:
        pin = path.read_text().strip()
    except OSError as error:
        raise TokenError(f"the PKCS#11 PIN file {path} cannot be read ({error.strerror})") from None
    if not pin:
        raise TokenError(f"the PKCS#11 PIN file {path} is empty")
    return pin


class Token:
    """One logged-in session with the token labelled ``label`` in the PKCS#11 module at ``module``."""

    def __init__(self, module: Path, label: str, pin: str) -> None:
        if not module.is_file():
            raise TokenError(f"the PKCS#11 module {module} does not exist (DINHDANH_PKCS11_MODULE)")
        if not label:
            raise TokenError("no PKCS#11 token label is set (DINHDANH_PKCS11_TOKEN)")
        self.label = label
        self._lock = threading.Lock()
        try:
            token = pkcs11.lib(str(module)).get_token(token_label=label)
        except pkcs11.NoSuchToken:
            raise TokenError(f"the PKCS#11 module {module} has no token labelled {label!r}") from None
        except pkcs11.PKCS11Error as error:
            raise TokenError(f"the PKCS#11 module {module} cannot be used ({type(error).__name__})") from None
        try:
            self._session = token.open(user_pin=pin, rw=True)
        except pkcs11.UserAlreadyLoggedIn:  # another Token of this process logged in: the login is per process
            self._session = token.open(rw=True)
        except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange):
            raise TokenError(f"the PIN of PKCS#11 token {label!r} was refused (DINHDANH_PKCS11_PIN_FILE)") from None
        except pkcs11.PinLocked:
            raise TokenError(f"the user PIN of PKCS#11 token {label!r} is locked") from None
        except pkcs11.PKCS11Error as error:
            raise TokenError(f"PKCS#11 token {label!r}: cannot open a session ({type(error).__name__})") from None

    @classmethod
    def open(cls, module: Path, label: str, pin_file: Path | None) -> Token:
        """The process's session with that token (opened once: every caller shares it and its lock)."""
        if pin_file is None:
            raise TokenError("no PKCS#11 PIN file is set (DINHDANH_PKCS11_PIN_FILE)")
        with _OPENING:
            if (module, label) not in _OPEN:
                _OPEN[(module, label)] = cls(module, label, _read_pin(pin_file))
            return _OPEN[(module, label)]

    def _call(self, action: Callable[[Any], T]) -> T:
        with self._lock:
            return action(self._session)

    def find(self, label: str) -> TokenSigner | None:
        """The signer of the key pair labelled ``label``, or None when the token holds none."""

        def lookup(session: Any) -> tuple[Any, Any] | None:
            private = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label}))
            public = list(session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: label}))
            if not private:
                return None
            if len(private) > 1 or len(public) != 1:
                raise TokenError(f"PKCS#11 token {self.label!r} holds {len(private)} private and {len(public)} "
                                 f"public keys labelled {label!r}: one pair is expected")  # fmt: skip
            return private[0], public[0]

        found = self._call(lookup)
        return None if found is None else TokenSigner(self, label, *found)

    def generate(self, label: str, alg: str) -> TokenSigner:
        """A new key pair for ``alg`` (ES256, EdDSA, RS256) labelled ``label``, generated in the token."""
        if self._call(lambda s: list(s.get_objects({Attribute.LABEL: label}))):
            raise TokenError(f"PKCS#11 token {self.label!r} already holds a key labelled {label!r}")

        def make(session: Any) -> tuple[Any, Any]:
            if alg == RS256:
                return session.generate_keypair(  # type: ignore[no-any-return]
                    KeyType.RSA, 2048, store=True, label=label, public_template=_PUBLIC, private_template=_PRIVATE
                )
            if alg not in _CURVES:
                raise ValueError(f"unsupported algorithm {alg}")
            kind = KeyType.EC if alg == ES256 else KeyType.EC_EDWARDS
            params = session.create_domain_parameters(
                kind, {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[alg])}, local=True
            )
            return params.generate_keypair(  # type: ignore[no-any-return]
                store=True, label=label, public_template=_PUBLIC, private_template=_PRIVATE
            )

        try:
            public, private = self._call(make)
        except pkcs11.PKCS11Error as error:
            reason = type(error).__name__
            raise TokenError(f"PKCS#11 token {self.label!r}: cannot generate a {alg} key ({reason})") from None
        return TokenSigner(self, label, private, public)

    def signer(self, label: str, alg: str, create: bool = True) -> TokenSigner:
        """The key labelled ``label``, generated on first use when ``create``; its algorithm must be ``alg``."""
        found = self.find(label)
        if found is None:
            if not create:
                raise KeyUnavailable(f"PKCS#11 token {self.label!r} holds no key labelled {label!r}")
            found = self.generate(label, alg)
        if found.alg != alg:
            raise TokenError(f"the key {label!r} in PKCS#11 token {self.label!r} is {found.alg}, not {alg}")
        return found

    def destroy(self, label: str) -> bool:
        """Remove the key pair labelled ``label`` (a revoked OP key); False when there was none."""

        def remove(session: Any) -> bool:
            objects = list(session.get_objects({Attribute.LABEL: label}))
            for obj in objects:
                obj.destroy()
            return bool(objects)

        return self._call(remove)

    def close(self) -> None:
        self._call(lambda s: s.close())


class TokenSigner:
    """A ``core.keys.signing.Signer`` whose private key is an object of the token."""

    def __init__(self, token: Token, label: str, private: Any, public: Any) -> None:
        self.token = token
        self.label = label
        self._private = private
        self.public = token._call(lambda _: _public_key(public))
        self.alg = ES256 if isinstance(self.public, ec.EllipticCurvePublicKey) else (
            EDDSA if isinstance(self.public, ed25519.Ed25519PublicKey) else RS256)  # fmt: skip
        self._jwk = public_jwk(self.public, self.alg)
        self.kid: str = self._jwk["kid"]

    def public_jwk(self) -> dict[str, Any]:
        return dict(self._jwk)

    def sign(self, message: bytes) -> bytes:
        if self.alg == ES256:
            data, mechanism = digest(message), Mechanism.ECDSA
        elif self.alg == EDDSA:
            data, mechanism = message, Mechanism.EDDSA
        else:
            data, mechanism = message, Mechanism.SHA256_RSA_PKCS
        try:
            return self.token._call(lambda _: bytes(self._private.sign(data, mechanism=mechanism)))
        except pkcs11.PKCS11Error as error:
            raise TokenError(f"PKCS#11 token {self.token.label!r}: signing with {self.label!r} failed "
                             f"({type(error).__name__})") from None  # fmt: skip

    def __repr__(self) -> str:
        return f"TokenSigner({self.alg}, label={self.label!r}, kid={self.kid})"


def _public_key(obj: Any) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey:
    """The ``cryptography`` key of a token public-key object (CKA_EC_POINT is a DER OCTET STRING)."""
    if obj.key_type == KeyType.RSA:
        numbers = rsa.RSAPublicNumbers(int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big"),
                                       int.from_bytes(obj[Attribute.MODULUS], "big"))  # fmt: skip
        return numbers.public_key()
    point = OctetString.load(obj[Attribute.EC_POINT]).native
    if obj.key_type == KeyType.EC_EDWARDS:
        return ed25519.Ed25519PublicKey.from_public_bytes(point)
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)


class TokenKeyProvider:
    """The keys of a process whose signing keys are in a token: ``signer(purpose)`` from the token (the label is
    the purpose's name, the key generated on first use), every other key from ``files`` (sealing keys, MACs)."""

    def __init__(self, files: Any, token: Token) -> None:
        self.files = files
        self.token = token

    def key(self, purpose: str) -> bytes:
        return self.files.key(purpose)  # type: ignore[no-any-return]

    def signer(self, purpose: str) -> TokenSigner:
        if purpose not in ALGORITHMS:
            raise KeyUnavailable(f"{purpose!r} is not a signing purpose")
        return self.token.signer(purpose, ALGORITHMS[purpose])
