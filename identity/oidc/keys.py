"""Signing keys and their rotation, published as a JWKS (RFC 7517).

Each algorithm has a small state machine (RFC 7517 §5 "key rollover" practice, OpenID Connect Core
§10.1.1): ``next`` — published, not yet signing, so relying parties cache it before it is used;
``current`` — signing; ``retired`` — no longer signing, still published until every token it signed
has expired (``retire_after``), and from that instant neither published nor trusted by any verifier
(the edge filters at each request, the services read the live kids from the database). ``rotate``
moves next → current → retired and makes a new next. ``revoke`` removes a compromised key at once; when
it was signing, the published next key takes over (the same publish-before-sign rule, without waiting).
Private keys are stored sealed with the edge's ``oidc-signing-key`` key — or, when the edge's signing keys are
in a PKCS#11 token (``DINHDANH_KEY_BACKEND=pkcs11``, ``TokenKeys``), generated there and never out of it: the
row then holds ``pkcs11:<label>`` instead of a sealed key, and the token signs (``core.keys.signing.jose_key``).
Rows sealed before the switch keep signing until rotated away (the sealing key is still used to open them).

RS256 is the ID token default (OpenID Connect Core §15.1 makes it mandatory to implement); ES256 signs
access tokens and ID tokens on request: about 20 times cheaper to sign here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

from joserfc.jwk import ECKey, KeySet, RSAKey

from core.keys.sealing import Sealer
from core.keys.signing import Signer, jose_key

ALGORITHMS = ("RS256", "ES256")
Key = ECKey | RSAKey
TOKEN_PREFIX = b"pkcs11:"  # sealed_key of a key held in a PKCS#11 token: the prefix and the key's label


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

    async def revoke(self, kid: str, successor: StoredKey | None) -> bool:
        """Remove ``kid``; when it was ``current``, promote its algorithm's ``next``; then add ``successor``
        (a new ``next``) if given — atomically. False when there is no such key."""


def live(stored: list[StoredKey], now: float | None = None) -> list[StoredKey]:
    """The keys still trusted at ``now``: all but retired ones whose ``retire_after`` has passed."""
    at = time.time() if now is None else now
    return [k for k in stored if k.retire_after is None or k.retire_after.timestamp() > at]


def stamp(stored: list[StoredKey]) -> tuple[tuple[str, str, dt.datetime | None], ...]:
    """What a change of the stored keys changes (a reload is needed when it differs)."""
    return tuple(sorted((k.kid, k.state, k.retire_after) for k in stored))


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


class Token(Protocol):
    """What the OP needs of a PKCS#11 token (``core.keys.pkcs11.Token``)."""

    def generate(self, label: str, alg: str) -> Signer: ...
    def signer(self, label: str, alg: str, create: bool = True) -> Signer: ...
    def destroy(self, label: str) -> bool: ...


class TokenKeys:
    """The OP's keys in a PKCS#11 token: new keys are generated there (labelled ``oidc-<alg>-<random>``); the
    ``sealer``, when the edge still holds one, opens the rows sealed before the switch."""

    def __init__(self, token: Token, sealer: Sealer | None) -> None:
        self.token = token
        self.sealer = sealer

    def new(self, alg: str, state: str) -> StoredKey:
        label = f"oidc-{alg.lower()}-{secrets.token_hex(8)}"
        signer = self.token.generate(label, alg)
        return StoredKey(signer.kid, alg, TOKEN_PREFIX + label.encode(), signer.public_jwk(), state)

    def open(self, entry: StoredKey) -> Key | None:
        if not entry.sealed_key.startswith(TOKEN_PREFIX):
            return _open_sealed(entry, self.sealer) if self.sealer is not None else None
        signer = self.token.signer(entry.sealed_key[len(TOKEN_PREFIX) :].decode(), entry.alg, create=False)
        if signer.kid != entry.kid:
            raise ValueError(f"the token's key for {entry.kid} is another key ({signer.kid})")
        return jose_key(signer)  # type: ignore[return-value]

    def forget(self, entry: StoredKey) -> None:
        """A removed key's pair is destroyed in the token too."""
        if entry.sealed_key.startswith(TOKEN_PREFIX):
            self.token.destroy(entry.sealed_key[len(TOKEN_PREFIX) :].decode())


Keys = Sealer | TokenKeys  # where private keys are: sealed in the rows, or in a token


def _open_sealed(entry: StoredKey, sealer: Sealer) -> Key | None:
    pem = sealer.open(entry.sealed_key, entry.kid.encode())
    if pem is None:
        return None
    return ECKey.import_key(pem) if entry.alg == "ES256" else RSAKey.import_key(pem)


def _new(alg: str, state: str, sealer: Keys) -> StoredKey:
    return seal(generate(alg), alg, state, sealer) if isinstance(sealer, Sealer) else sealer.new(alg, state)


class KeyRing:
    """The keys an edge process signs and publishes with, loaded from the store."""

    def __init__(self, stored: list[StoredKey], sealer: Keys) -> None:
        self._stored = stored
        self.stamp = stamp(stored)
        self._signing: dict[str, tuple[str, Key]] = {}
        self._keyset: tuple[frozenset[str], KeySet] | None = None
        for entry in stored:
            if entry.state == "current":
                key = _open_sealed(entry, sealer) if isinstance(sealer, Sealer) else sealer.open(entry)
                if key is None:
                    raise ValueError(f"signing key {entry.kid} cannot be opened with this master key")
                self._signing[entry.alg] = (entry.kid, key)

    def signing_key(self, alg: str) -> tuple[str, Key]:
        """(kid, private key) of the current key for ``alg``."""
        return self._signing[alg]

    def keyset(self) -> KeySet:
        """The published keys, for verifying what this provider signed (imported again only when one retires)."""
        kids = frozenset(k.kid for k in live(self._stored))
        if self._keyset is None or self._keyset[0] != kids:
            self._keyset = (kids, KeySet.import_key_set(self.jwks()))
        return self._keyset[1]

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """Every published key: next, current and retired ones whose ``retire_after`` has not passed."""
        return {"keys": [dict(k.public_jwk) for k in live(self._stored)]}

    def public(self, kid: str) -> dict[str, Any] | None:
        return next((dict(k.public_jwk) for k in live(self._stored) if k.kid == kid), None)


async def ensure(store: KeyStore, sealer: Keys) -> None:
    """First start: a current and a next key for every algorithm."""
    have = {(k.alg, k.state) for k in await store.keys()}
    for alg in ALGORITHMS:
        for state in ("current", "next"):
            if (alg, state) not in have:
                await store.add(await asyncio.to_thread(_new, alg, state, sealer))  # RSA or a token: blocks


async def rotate(store: KeyStore, sealer: Keys, alg: str, longest_token: dt.timedelta) -> None:
    """The published next key starts signing; the old one stays published until its tokens expire."""
    now = dt.datetime.now(dt.UTC)
    await store.prune(now)
    await store.promote(alg, now + longest_token)
    await store.add(await asyncio.to_thread(_new, alg, "next", sealer))


async def revoke(store: KeyStore, sealer: Keys, kid: str) -> StoredKey | None:
    """Remove a compromised key at once (the removed key, or None when unknown). A signing key's successor is
    the published next key; the algorithm gets a fresh next key, so one is always published before it signs."""
    found = next((k for k in await store.keys() if k.kid == kid), None)
    if found is None:
        return None
    fresh = found.state in ("current", "next")
    successor = await asyncio.to_thread(_new, found.alg, "next", sealer) if fresh else None
    if not await store.revoke(kid, successor):
        return None
    if isinstance(sealer, TokenKeys):
        await asyncio.to_thread(sealer.forget, found)
    return found
