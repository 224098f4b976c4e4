"""Signing keys and their rotation, published as a JWKS (RFC 7517).

Each algorithm has a small state machine (RFC 7517 §5 "key rollover" practice, OpenID Connect Core
§10.1.1): ``next`` — published, not yet signing, so relying parties cache it before it is used;
``current`` — signing; ``retired`` — no longer signing, still published until every token it signed
has expired. ``rotate`` moves next → current → retired and makes a new next. Private keys are stored
sealed with the identity master key.

RS256 is the ID token default (OpenID Connect Core §15.1 makes it mandatory to implement); ES256 signs
access tokens and ID tokens on request: about 20 times cheaper to sign here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from joserfc.jwk import ECKey, KeySet, RSAKey

from identity.sealing import Sealer

ALGORITHMS = ("RS256", "ES256")
Key = ECKey | RSAKey


@dataclass(frozen=True)
class StoredKey:
    kid: str
    alg: str
    sealed_key: bytes
    public_jwk: dict[str, Any]
    state: str
    retire_after: dt.datetime | None = None


class KeyStore(Protocol):
    async def keys(self) -> list[StoredKey]: ...
    async def add(self, key: StoredKey) -> None: ...
    async def promote(self, alg: str, retire_after: dt.datetime) -> None:
        """current → retired (until ``retire_after``), next → current, atomically."""

    async def prune(self, now: dt.datetime) -> None:
        """Forget retired keys whose tokens have all expired."""


def generate(alg: str) -> Key:
    if alg == "ES256":
        return ECKey.generate_key("P-256")
    if alg == "RS256":
        return RSAKey.generate_key(2048)
    raise ValueError(f"unsupported algorithm {alg}")


def seal(key: Key, alg: str, state: str, sealer: Sealer) -> StoredKey:
    kid = key.thumbprint()
    public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
    return StoredKey(kid, alg, sealer.seal(key.as_pem(private=True), kid.encode()), public, state)


class KeyRing:
    """The keys an edge process signs and publishes with, loaded from the store."""

    def __init__(self, stored: list[StoredKey], sealer: Sealer) -> None:
        self._stored = stored
        self._signing: dict[str, tuple[str, Key]] = {}
        self._keyset: KeySet | None = None
        for entry in stored:
            if entry.state == "current":
                pem = sealer.open(entry.sealed_key, entry.kid.encode())
                if pem is None:
                    raise ValueError(f"signing key {entry.kid} cannot be opened with this master key")
                key = ECKey.import_key(pem) if entry.alg == "ES256" else RSAKey.import_key(pem)
                self._signing[entry.alg] = (entry.kid, key)

    def signing_key(self, alg: str) -> tuple[str, Key]:
        """(kid, private key) of the current key for ``alg``."""
        return self._signing[alg]

    def keyset(self) -> KeySet:
        """The published keys, imported once, for verifying what this provider signed."""
        if self._keyset is None:
            self._keyset = KeySet.import_key_set(self.jwks())
        return self._keyset

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """Every published key: next, current and not yet expired retired ones."""
        return {"keys": [dict(k.public_jwk) for k in self._stored]}

    def public(self, kid: str) -> dict[str, Any] | None:
        return next((dict(k.public_jwk) for k in self._stored if k.kid == kid), None)


async def ensure(store: KeyStore, sealer: Sealer) -> None:
    """First start: a current and a next key for every algorithm."""
    have = {(k.alg, k.state) for k in await store.keys()}
    for alg in ALGORITHMS:
        for state in ("current", "next"):
            if (alg, state) not in have:
                await store.add(seal(generate(alg), alg, state, sealer))


async def rotate(store: KeyStore, sealer: Sealer, alg: str, longest_token: dt.timedelta) -> None:
    """The published next key starts signing; the old one stays published until its tokens expire."""
    now = dt.datetime.now(dt.UTC)
    await store.prune(now)
    await store.promote(alg, now + longest_token)
    await store.add(seal(generate(alg), alg, "next", sealer))
