"""Signed, and on request encrypted, userinfo responses (OpenID Connect Core 1.0 §5.3.2; Dynamic Client
Registration 1.0 §2 ``userinfo_signed_response_alg``, ``userinfo_encrypted_response_alg`` and ``_enc``).

- Signed: a JWT (``typ`` ``JWT``) of the claims with ``iss`` (this provider) and ``aud`` (the client), signed with
  the provider's current key of the registered algorithm (the keys of /jwks), content type ``application/jwt``.
- Encrypted: a JWE (compact) to the client's registered public key for encryption (its ``jwks``, or the keys its
  ``jwks_uri`` publishes: a key with ``use`` ``enc`` of the algorithm's key type). Signed too, it is a Nested JWT
  (RFC 7519 §5.2, ``cty`` ``JWT``); otherwise its plaintext is the claims' JSON. ``enc`` defaults to
  ``A128CBC-HS256`` as Registration §2 says.

joserfc makes every JOSE object; nothing here is hand-rolled.
"""

from __future__ import annotations

import json
import time
from typing import Any

from joserfc import jwe, jwt
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from identity.oidc import keys
from identity.oidc.clients import Client

ENCRYPTION_ALGS = ("RSA-OAEP-256", "RSA-OAEP", "ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A256KW")
ENCRYPTION_ENCS = ("A128CBC-HS256", "A256CBC-HS512", "A128GCM", "A256GCM")
DEFAULT_ENC = "A128CBC-HS256"
KEY_TYPES = {"RSA-OAEP-256": ("RSA",), "RSA-OAEP": ("RSA",)}  # ECDH-ES*: EC or OKP (X25519)
JWT_MEDIA_TYPE = "application/jwt"


class UserinfoKeyError(ValueError):
    """The client asked for encrypted responses and has no usable encryption key registered."""


def signing_algs() -> tuple[str, ...]:
    """What this provider signs userinfo with: the algorithms it holds keys for (keys.py)."""
    return tuple(keys.ALGORITHMS)


def wants_jwt(client: Client) -> bool:
    return bool(client.userinfo_signed_response_alg or client.userinfo_encrypted_response_alg)


Registered = tuple[str | None, str | None, str | None]


def check_registration(signed_alg: str | None, encrypted_alg: str | None, encrypted_enc: str | None,
                       jwks: dict[str, Any] | None, jwks_uri: str | None) -> Registered:  # fmt: skip
    """The three registration values, checked (Registration §2: ``_enc`` only with ``_alg``, whose default it
    then takes); an encrypting client needs a public key for it (``jwks`` with a ``use: enc`` key, or a
    ``jwks_uri``). Raises ``ValueError`` with the reason."""
    if signed_alg is not None and signed_alg not in signing_algs():
        raise ValueError(f"userinfo signing algorithm is one of {', '.join(signing_algs())}")
    if encrypted_enc is not None and encrypted_alg is None:
        raise ValueError("userinfo_encrypted_response_enc needs userinfo_encrypted_response_alg (Registration §2)")
    if encrypted_alg is None:
        return signed_alg, None, None
    if encrypted_alg not in ENCRYPTION_ALGS:
        raise ValueError(f"userinfo encryption algorithm is one of {', '.join(ENCRYPTION_ALGS)}")
    enc = encrypted_enc or DEFAULT_ENC
    if enc not in ENCRYPTION_ENCS:
        raise ValueError(f"userinfo encryption enc is one of {', '.join(ENCRYPTION_ENCS)}")
    if jwks_uri is None:
        encryption_key(jwks, encrypted_alg)  # raises when there is none
    return signed_alg, encrypted_alg, enc


def encryption_key(jwks: dict[str, Any] | None, alg: str) -> RSAKey | ECKey | OKPKey:
    """The client's public key for ``alg``: ``use`` ``enc`` (or no ``use``), its ``alg`` absent or ``alg``."""
    kinds = KEY_TYPES.get(alg, ("EC", "OKP"))
    for entry in (jwks or {}).get("keys", []):
        if not isinstance(entry, dict) or entry.get("kty") not in kinds or entry.get("use", "enc") != "enc":
            continue
        if entry.get("alg", alg) != alg or (entry.get("use") is None and entry.get("alg") is None):
            continue  # a key must say it is for encryption (use or alg)
        try:
            key = KeySet.import_key_set({"keys": [entry]}).keys[0]
        except (ValueError, TypeError):
            continue
        if isinstance(key, RSAKey | ECKey | OKPKey) and not key.is_private:
            return key
    raise UserinfoKeyError(f"no public key for {alg} (use: enc) among the client's registered keys")


def encode(claims: dict[str, Any], client: Client, issuer: str, keyring: keys.KeyRing,
           published: dict[str, Any] | None = None) -> str:  # fmt: skip
    """The response body (Core §5.3.2): a signed JWT, a JWE of one (Nested JWT), or a JWE of the claims' JSON.
    ``published``: the keys of the client's ``jwks_uri`` when it has one. Raises ``UserinfoKeyError``."""
    body: str
    if client.userinfo_signed_response_alg:
        alg = client.userinfo_signed_response_alg
        kid, key = keyring.signing_key(alg)
        now = int(time.time())
        payload = {**claims, "iss": issuer, "aud": client.client_id, "iat": now}
        body = jwt.encode({"alg": alg, "kid": kid, "typ": "JWT"}, payload, key, algorithms=[alg])
    else:
        body = json.dumps(claims, separators=(",", ":"), ensure_ascii=False)
    enc_alg = client.userinfo_encrypted_response_alg
    if not enc_alg:
        return body
    enc = client.userinfo_encrypted_response_enc or DEFAULT_ENC
    registered = {"keys": [*(client.jwks or {}).get("keys", []), *(published or {}).get("keys", [])]}
    key = encryption_key(registered, enc_alg)
    protected = {"alg": enc_alg, "enc": enc}
    if key.kid:
        protected["kid"] = key.kid
    if client.userinfo_signed_response_alg:
        protected["cty"] = "JWT"  # RFC 7519 §5.2: a Nested JWT
    return jwe.encrypt_compact(protected, body.encode(), key, algorithms=[enc_alg, enc])
