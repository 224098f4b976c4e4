"""A client's published keys (RFC 7591 §2 ``jwks_uri``), for ``private_key_jwt`` (RFC 7523, Core §9).

The edge fetches the client's JWK Set over HTTP(S) with a short timeout, caches it for ``CACHE_SECONDS`` and, when
an assertion names a ``kid`` the cached set lacks (the client rotated its key), fetches it again at once, at most
once every ``REFETCH_SECONDS`` per URI (an assertion with made-up ``kid``s cannot turn the edge into a fetcher).
A set that cannot be read, or that holds a private or symmetric key, counts as no keys: the assertion is refused
(``invalid_client``), never a 500. The cache is per edge process; every process converges within its lifetime.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from core import logs

TIMEOUT = 3.0  # seconds, connect and read together (one assertion waits this long at most)
CACHE_SECONDS = 300.0
REFETCH_SECONDS = 1.0
MAX_BYTES = 64 * 1024
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")
log = logs.get("oidc.client_keys")


class KeyFetcher(Protocol):
    async def __call__(self, uri: str) -> dict[str, Any]:
        """The JWK Set at ``uri`` (raises on any failure)."""


@dataclass
class _Cached:
    keys: dict[str, Any]
    fetched: float  # time.monotonic()


def public_key_set(data: Any) -> dict[str, Any]:
    """A JWK Set (RFC 7517 §5) of public keys, or ValueError."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWK Set")
    for key in data["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC", "OKP"):
            raise ValueError("a JWK Set of RSA, EC or OKP public keys only")
        if any(member in key for member in PRIVATE_MEMBERS):
            raise ValueError("the JWK Set holds private key material")
    return {"keys": list(data["keys"])}


async def fetch_over_http(uri: str) -> dict[str, Any]:
    """GET ``uri`` (no redirects, ``TIMEOUT``, ``MAX_BYTES``) and parse it as a public JWK Set."""
    accept = {"accept": "application/jwk-set+json, application/json"}
    async with (
        httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as http,
        http.stream("GET", uri, headers=accept) as reply,
    ):
        if reply.status_code != 200:
            raise ValueError(f"HTTP {reply.status_code}")
        body = b""
        async for chunk in reply.aiter_bytes():
            body += chunk
            if len(body) > MAX_BYTES:
                raise ValueError("the JWK Set is too large")
    return public_key_set(json.loads(body))


class ClientKeys:
    """The JWK Sets at clients' ``jwks_uri``s, cached."""

    def __init__(self, fetch: KeyFetcher = fetch_over_http) -> None:
        self._fetch = fetch
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def keys(self, uri: str, kid: str | None = None) -> dict[str, Any]:
        """The key set at ``uri``: cached, fetched when absent or stale, or refetched when ``kid`` is not in it."""
        now = time.monotonic()
        cached = self._cache.get(uri)
        if cached is not None and now - cached.fetched < CACHE_SECONDS and _has(cached.keys, kid):
            return cached.keys
        lock = self._locks.setdefault(uri, asyncio.Lock())
        async with lock:  # one fetch per URI at a time; who waited reads what it fetched
            cached = self._cache.get(uri)
            now = time.monotonic()
            fresh = cached is not None and now - cached.fetched < CACHE_SECONDS
            if cached is not None and fresh and (_has(cached.keys, kid) or now - cached.fetched < REFETCH_SECONDS):
                return cached.keys
            try:
                keys = await self._fetch(uri)
            except Exception as error:  # unreachable, slow, not JSON, not a public JWK Set: no keys this time
                log.warning("client_keys.fetch_failed", uri=uri, error=type(error).__name__)
                return cached.keys if cached is not None and fresh else {"keys": []}
            self._cache[uri] = _Cached(keys, time.monotonic())
            return keys


def _has(keys: dict[str, Any], kid: str | None) -> bool:
    return kid is None or any(k.get("kid") == kid for k in keys.get("keys", ()))
