"""Bearer access tokens: RFC 9068 JWTs from the platform's OpenID Provider, verified in-process.

``TokenVerifier.verify`` is local on its fast path: the signature is checked against a cached JWKS,
the claims against this service's issuer and audience, and the ``jti`` against an in-memory set of
revoked tokens. Nothing per request touches the network or the database:

* JWKS: fetched from ``{issuer}/jwks`` (httpx) on first need and cached. A token whose ``kid`` is not
  in the cache triggers one refetch, at most once every ``refetch_interval`` seconds however many
  unknown kids arrive (so garbage kids cannot make a service hammer the OP). A cache older than
  ``jwks_max_age`` is refreshed in the background, so keys the OP retires stop verifying.
* Verified tokens: the last ``VERIFIED_CACHE`` tokens that passed are remembered (by their exact text), so
  a token used again skips the signature and claims checks (expiry and revocation are checked every
  time); the memory is cleared whenever the JWKS changes.
* Signing keys: the same poll reads which kids of ``oidc.signing_keys`` are still live (not past their
  ``retire_after``; a revoked key's row is gone): a token signed by any other key is refused, whatever the
  cached JWKS says. So a retired key stops verifying the moment its ``retire_after`` passes and a revoked one
  (``dinhdanh keys revoke``) within one poll, at every service (``key_states=False`` skips this check, for a
  verifier whose OP keeps its keys elsewhere).
* Revocation: a background task reads ``oidc.revoked_tokens`` every ``poll_interval`` (0.5 s) for rows
  with ``revoked_at`` after the last one seen (minus a small overlap, for transactions that commit late),
  and reloads every unexpired row every ``resync_every`` seconds. Entries leave the set once their token
  could no longer pass the ``exp`` check. If no poll has succeeded for ``stale_after`` seconds, every
  bearer call fails closed with ``TokenCheckUnavailable`` (gRPC ``UNAVAILABLE``): a token revoked in the
  meantime must not pass.

Rejections raise ``core.callers.TokenRejected`` with a fixed description: never the token, never a claim.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import re
import time
from collections.abc import Iterable
from typing import Any

import asyncpg
import httpx
from joserfc import jwk, jws
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyCurveError,
    InvalidKeyTypeError,
    JoseError,
    MissingClaimError,
    UnsupportedKeyAlgorithmError,
    UnsupportedKeyUseError,
)
from joserfc.jwt import JWTClaimsRegistry

from core import logs
from core.callers import CONSENT_DETAIL, AuthorizationDetail, Principal, TokenRejected
from core.errors import DomainError
from identity.oidc import dpop

log = logs.get("bearer")

ALGORITHMS = ("ES256", "RS256")
TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
LEEWAY = 30  # seconds of clock skew allowed on exp, nbf and iat
MAX_AUTHORIZATION = 8 * 1024  # bytes of authorization metadata read at all
MAX_JWKS = 256 * 1024
VERIFIED_CACHE = 4096  # tokens whose signature and claims already verified
MIN_RSA_BITS = 2048
ACR_VALUES = frozenset({"1", "2"})
SUBJECT = re.compile(r"[A-Za-z0-9_-]{16,64}")  # opaque: the ID number under AES-SIV (identity.oidc.subjects)
SECTOR = re.compile(r"[a-z0-9.-]{1,253}")  # a pairwise subject's sector identifier: a host (OIDC Core §8.1)
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url SHA-256, no padding (RFC 8705 §3.1)
DETAIL_TYPE = re.compile(r"[\x21-\x7e]{1,64}")
MAX_DETAILS = 8
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PURPOSE = re.compile(r"[A-Z0-9_]{1,64}")
OVERLAP = dt.timedelta(seconds=10)  # re-read recent rows: a revocation whose transaction commits late

INCREMENTAL = "SELECT jti, expires_at, revoked_at FROM oidc.revoked_tokens WHERE revoked_at > $1"
LIVE_KEYS = "SELECT kid FROM oidc.signing_keys WHERE retire_after IS NULL OR retire_after > now()"
FULL = (
    "SELECT jti, expires_at, revoked_at FROM oidc.revoked_tokens WHERE expires_at > now() - make_interval(secs => $1)"
)


class TokenCheckUnavailable(DomainError):
    """Tokens cannot be checked right now (revocation list stale, no verifier): the interceptor answers
    ``UNAVAILABLE``, a status clients may retry, instead of accepting a possibly revoked token."""


class _UnknownKey(Exception):
    pass


class DpopRejected(TokenRejected):
    """A DPoP-bound token without a good proof, or a proof without a DPoP-bound token (RFC 9449 §7.1): the challenge
    is in the ``DPoP`` scheme, with the algorithms a proof may use."""

    def __init__(self, description: str, error: str = "invalid_dpop_proof") -> None:
        super().__init__(description, error)
        algs = " ".join(dpop.ALGORITHMS)
        self.challenge = f'DPoP error="{error}", error_description="{description}", algs="{algs}"'
        self.message = self.challenge


def parse_authorization(value: str | bytes) -> str:
    """The token of an ``authorization: Bearer <token>`` value (RFC 6750 §2.1); ``TokenRejected`` otherwise."""
    scheme, token = parse_authorization_scheme(value)
    if scheme != "bearer":
        raise TokenRejected("the authorization metadata must use the Bearer scheme", error="invalid_request")
    return token


def parse_authorization_scheme(value: str | bytes) -> tuple[str, str]:
    """``("bearer" | "dpop", token)`` of an ``authorization`` value: the Bearer scheme (RFC 6750 §2.1) or the DPoP
    scheme (RFC 9449 §7.1), same token syntax; ``TokenRejected`` otherwise."""
    if len(value) > MAX_AUTHORIZATION:
        raise TokenRejected("the authorization metadata is too large", error="invalid_request")
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise TokenRejected("the authorization metadata is not ASCII", error="invalid_request") from None
    scheme, _, rest = value.strip(" ").partition(" ")
    if scheme.lower() not in ("bearer", "dpop"):
        raise TokenRejected("the authorization metadata must use the Bearer scheme (or DPoP: RFC 9449 section 7.1)",
                            error="invalid_request")  # fmt: skip
    token = rest.strip(" ")
    if not token:
        raise TokenRejected("the authorization carries no token", error="invalid_request")
    if not B64TOKEN.fullmatch(token):
        raise TokenRejected("the bearer token is malformed")
    return scheme.lower(), token


class TokenVerifier:
    """Verifies access tokens for one service (``audience``, e.g. ``urn:dinhdanh:service:vault``).

    ``pool_or_dsn`` is the service's asyncpg pool (the poller borrows a connection for one short query
    every ``poll_interval``) or a DSN (the verifier then keeps a one-connection pool of its own).
    Call ``start()`` once the event loop runs (``verify`` starts the verifier itself if needed) and
    ``stop()`` on shutdown.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str | None,
        pool_or_dsn: asyncpg.Pool | str,
        *,
        leeway: int = LEEWAY,
        poll_interval: float = 0.5,
        stale_after: float = 3.0,
        resync_every: float = 60.0,
        refetch_interval: float = 5.0,
        jwks_max_age: float = 300.0,
        http_timeout: float = 2.0,
        key_states: bool = True,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url or issuer.rstrip("/") + "/jwks"
        self._pool: asyncpg.Pool | None = None if isinstance(pool_or_dsn, str) else pool_or_dsn
        self._dsn = pool_or_dsn if isinstance(pool_or_dsn, str) else None
        self._owns_pool = isinstance(pool_or_dsn, str)
        self._leeway = leeway
        self._poll_interval = poll_interval
        self._poll_timeout = max(poll_interval * 3, 1.5)
        self._stale_after = stale_after
        self._resync_every = resync_every
        self._refetch_interval = refetch_interval
        self._jwks_max_age = jwks_max_age
        self._http_timeout = http_timeout
        self._claims = JWTClaimsRegistry(
            leeway=leeway,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            **{name: {"essential": True} for name in ("sub", "client_id", "exp", "iat", "jti")},
        )
        self._registry = jws.JWSRegistry(algorithms=ALGORITHMS, strict_check_header=False)
        # JWKS cache
        self._keys: dict[str, jwk.Key] = {}
        self._keys_at: float | None = None  # monotonic time of the last successful fetch
        self._fetch_attempt: float | None = None  # monotonic time of the last fetch attempt
        self._fetch_lock = asyncio.Lock()
        self._background_fetch: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._verified: dict[str, tuple[Principal, str]] = {}  # token → (principal, kid), VERIFIED_CACHE at most
        self._key_states = key_states
        self._live_kids: frozenset[str] = frozenset()  # as of the last poll
        # revocation list: jti → Unix time after which the token cannot pass the exp check anyway
        self._revoked: dict[str, float] = {}
        self._seen: dt.datetime | None = None
        self._last_ok: float | None = None  # monotonic time of the last successful poll
        self._last_full: float | None = None
        self._failing = False
        self._task: asyncio.Task[None] | None = None
        self._start_lock = asyncio.Lock()
        self._dpop: dpop.DpopChecker | None = None  # made at first use, on the verifier's pool (oidc.dpop_proofs)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the revocation list (a failure is logged, not raised: bearer calls then fail closed
        until the poller reaches the database) and start the poller."""
        async with self._start_lock:
            if self._task is not None:
                return
            self._http = httpx.AsyncClient(timeout=self._http_timeout, follow_redirects=False)
            await self._poll_safely()
            self._task = asyncio.create_task(self._poll_loop(), name="revocation-poller")

    async def stop(self) -> None:
        for task in (self._task, self._background_fetch):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task})
        self._task = None
        self._background_fetch = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._owns_pool and self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def revocations_fresh(self) -> bool:
        """Has the revocation list been read from the database within ``stale_after`` seconds?"""
        return self._last_ok is not None and time.monotonic() - self._last_ok <= self._stale_after

    @property
    def revoked_count(self) -> int:
        return len(self._revoked)

    def is_revoked(self, jti: str) -> bool:
        """Is ``jti`` in the in-memory revocation list (as of the last poll)?"""
        return jti in self._revoked

    # -- verification ----------------------------------------------------------------------

    async def verify(self, token: str) -> Principal:
        """The principal of a valid, unrevoked access token for this service; ``TokenRejected`` (or
        ``TokenCheckUnavailable`` when revocations cannot be checked) otherwise."""
        if self._task is None:
            await self.start()
        try:
            return self.verify_local(token)
        except _UnknownKey:
            await self._refresh_keys()
        try:
            return self.verify_local(token)
        except _UnknownKey:
            raise TokenRejected("the access token is signed with an unknown key") from None

    def verify_local(self, token: str) -> Principal:
        """``verify`` without any I/O; raises ``_UnknownKey`` when the JWKS cache lacks the token's kid.

        A token that verified before (the same string: same signature, same claims) is not verified
        again while the JWKS is unchanged; its expiry and revocation are checked on every call."""
        if len(token) > MAX_AUTHORIZATION:
            raise TokenRejected("the access token is too large")
        self._maybe_refresh_in_background()
        known = self._verified.get(token)
        if known is None:
            principal, kid = self._verify_signed(token)
            if len(self._verified) >= VERIFIED_CACHE:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = (principal, kid)
        else:
            principal, kid = known
            if principal.expires_at <= int(time.time()) - self._leeway:
                del self._verified[token]
                raise TokenRejected("the access token has expired")
        if not self.revocations_fresh:
            raise TokenCheckUnavailable("bearer tokens cannot be checked now: the revocation list is out of date")
        if self._key_states and kid not in self._live_kids:
            raise TokenRejected("the access token is signed with a retired or revoked key")
        if principal.jti in self._revoked:
            raise TokenRejected("the access token has been revoked")
        return principal

    def _verify_signed(self, token: str) -> tuple[Principal, str]:
        header = _header(token)
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise TokenRejected("the access token's signing algorithm is not accepted")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in TOKEN_TYPES:
            raise TokenRejected("the token is not a JWT access token (typ at+jwt)")
        if "crit" in header:
            raise TokenRejected("the access token has critical header parameters")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("the access token names no signing key")
        key = self._keys.get(kid)
        if key is None:
            raise _UnknownKey
        try:
            payload = jws.deserialize_compact(token, key, registry=self._registry).payload
        except BadSignatureError:
            raise TokenRejected("the access token's signature does not verify") from None
        except (InvalidKeyTypeError, InvalidKeyCurveError, UnsupportedKeyAlgorithmError, UnsupportedKeyUseError):
            raise TokenRejected("the access token's signing key does not fit its algorithm") from None
        except (JoseError, ValueError, TypeError):
            raise TokenRejected("the access token is malformed") from None
        try:
            claims = json.loads(payload or b"")
        except ValueError:
            raise TokenRejected("the access token is malformed") from None
        if not isinstance(claims, dict):
            raise TokenRejected("the access token is malformed")
        return self._principal(claims), kid

    def _principal(self, claims: dict[str, Any]) -> Principal:
        try:
            self._claims.validate(claims)
        except ExpiredTokenError:
            raise TokenRejected("the access token has expired") from None
        except MissingClaimError:
            raise TokenRejected("the access token lacks a required claim") from None
        except ClaimError as error:
            raise TokenRejected(CLAIM_PROBLEMS.get(error.claim, "the access token has a malformed claim")) from None
        sub, client_id, jti = claims["sub"], claims["client_id"], claims["jti"]
        if not isinstance(client_id, str):
            raise TokenRejected("the access token's client_id is malformed")
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise TokenRejected("the access token's scope is malformed")
        aud = claims["aud"]
        audience = (aud,) if isinstance(aud, str) else tuple(aud)
        auth_time = claims.get("auth_time")
        if auth_time is not None and (isinstance(auth_time, bool) or not isinstance(auth_time, int | float)):
            raise TokenRejected("the access token's auth_time is malformed")
        if sub == client_id:
            kind, acr = "client", None
        else:
            kind, acr = "citizen", claims.get("acr")
            if not SUBJECT.fullmatch(sub):
                raise TokenRejected("the access token's subject is malformed")
            if acr not in ACR_VALUES:
                raise TokenRejected("the access token's acr is missing or unknown")
        sector = claims.get("sector")  # identity.oidc.subjects.SECTOR_CLAIM
        if sector is not None and (kind != "citizen" or not isinstance(sector, str) or not SECTOR.fullmatch(sector)):
            raise TokenRejected("the access token's sector is malformed")
        return Principal(
            kind=kind,
            subject=sub,
            client_id=client_id,
            scopes=frozenset(scope.split()),
            audience=audience,
            acr=acr,
            jti=jti,
            expires_at=int(claims["exp"]),
            auth_time=int(auth_time) if auth_time is not None else None,
            cnf_x5t=_confirmation(claims.get("cnf")),
            cnf_jkt=_jkt(claims.get("cnf")),
            authorization_details=_details(claims.get("authorization_details")),
            sector=sector,
        )

    # -- DPoP (RFC 9449 §7) ------------------------------------------------------------------

    @property
    def service(self) -> str:
        """The service's name, the host of the ``htu`` of its DPoP proofs (``dpop.grpc_htu``)."""
        return self.audience.rsplit(":", 1)[-1]

    async def check_dpop(self, scheme: str, token: str, principal: Principal, proofs: list[str], method: str) -> None:
        """RFC 9449 §7.1 over gRPC: a DPoP-bound token (``cnf.jkt``) only with the DPoP scheme and one proof in the
        ``dpop`` metadata, by the key the token names, for this call (``htm`` POST, ``htu`` ``dpop.grpc_htu``), with
        the token's ``ath``, fresh (``iat`` within ``dpop.MAX_AGE`` s) and used once (``oidc.dpop_proofs``, shared by
        every process). This server provides no nonces (§9 leaves them to the resource server): the window and the
        shared replay cache bound a proof's use. ``DpopRejected`` otherwise."""
        if principal.dpop_bound and scheme != "dpop":
            raise DpopRejected("the access token is DPoP-bound: present it with the DPoP scheme", "invalid_token")
        if not principal.dpop_bound:
            if scheme == "dpop":
                raise DpopRejected("the access token is not DPoP-bound: present it with the Bearer scheme",
                                   "invalid_token")  # fmt: skip
            if proofs:
                raise DpopRejected("a DPoP proof was sent with a token that is not DPoP-bound", "invalid_request")
            return
        if self._dpop is None:
            if self._pool is None:
                raise TokenCheckUnavailable("DPoP proofs cannot be checked yet")
            self._dpop = dpop.DpopChecker(dpop.PostgresReplayCache(self._pool))
        try:
            await self._dpop.check(proofs, "POST", dpop.grpc_htu(self.service, method), token, principal.cnf_jkt)
        except dpop.InvalidDpopProof as error:
            raise DpopRejected(error.description, error.error) from None
        except (asyncpg.PostgresError, OSError, TimeoutError) as error:
            log.warning("dpop.replay_check_failed", error=type(error).__name__)
            raise TokenCheckUnavailable("DPoP proofs cannot be checked right now") from None

    # -- JWKS ------------------------------------------------------------------------------

    async def _refresh_keys(self) -> None:
        """Fetch the JWKS unless a fetch was attempted less than ``refetch_interval`` ago."""
        async with self._fetch_lock:
            now = time.monotonic()
            if self._fetch_attempt is not None and now - self._fetch_attempt < self._refetch_interval:
                return
            self._fetch_attempt = now
            try:
                keys = await self._fetch_keys()
            except Exception as error:  # unreachable, not JSON, not a JWK Set …: keep the cached keys
                log.warning("jwks.fetch_failed", url=self.jwks_url, error=str(error) or type(error).__name__)
                return
            if _material(keys) != _material(self._keys):
                log.info("jwks.loaded", url=self.jwks_url, kids=sorted(keys))
                self._verified.clear()  # a key the OP dropped must stop verifying at once
            self._keys = keys
            self._keys_at = time.monotonic()

    async def _fetch_keys(self) -> dict[str, jwk.Key]:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._http_timeout, follow_redirects=False)
        response = await self._http.get(self.jwks_url, headers={"accept": "application/json"})
        if response.status_code != 200:
            raise ValueError(f"JWKS answered HTTP {response.status_code}")
        if len(response.content) > MAX_JWKS:
            raise ValueError("JWKS too large")
        data = response.json()
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise ValueError("not a JWK Set")
        return signing_keys(data["keys"])

    def _maybe_refresh_in_background(self) -> None:
        if self._keys_at is None or time.monotonic() - self._keys_at < self._jwks_max_age:
            return
        if self._background_fetch is None or self._background_fetch.done():
            self._background_fetch = asyncio.get_running_loop().create_task(self._refresh_keys())

    # -- revocations -----------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval)
            await self._poll_safely()

    async def _poll_safely(self) -> None:
        full = self._last_full is None or time.monotonic() - self._last_full >= self._resync_every
        try:
            async with asyncio.timeout(self._poll_timeout):
                await self._poll(full)
        except Exception as error:  # any failure: keep polling, fail closed once stale
            if not self._failing:
                log.warning("revocations.poll_failed", error=str(error) or type(error).__name__)
            self._failing = True
            return
        if self._failing:
            log.info("revocations.poll_recovered")
        self._failing = False
        self._last_ok = time.monotonic()
        if full:
            self._last_full = self._last_ok

    async def _poll(self, full: bool) -> None:
        if self._pool is None:
            assert self._dsn is not None
            self._pool = await asyncpg.create_pool(
                self._dsn, min_size=1, max_size=1, timeout=self._poll_timeout, command_timeout=self._poll_timeout
            )
        async with self._pool.acquire() as connection:
            if full:
                rows = await connection.fetch(FULL, float(self._leeway))
                now = await connection.fetchval("SELECT now()")
            else:
                assert self._seen is not None
                rows = await connection.fetch(INCREMENTAL, self._seen - OVERLAP)
            if self._key_states:
                live = frozenset(row["kid"] for row in await connection.fetch(LIVE_KEYS))
                if live != self._live_kids:
                    log.info("signing_keys.live", kids=sorted(live))
                self._live_kids = live
        if full:
            fresh = {row["jti"]: row["expires_at"].timestamp() + self._leeway for row in rows}
            added = fresh.keys() - self._revoked.keys()
            self._revoked = fresh
            self._seen = max((row["revoked_at"] for row in rows), default=now)
            self._seen = max(self._seen, now)
        else:
            added = [row["jti"] for row in rows if row["jti"] not in self._revoked]
            for row in rows:
                self._revoked[row["jti"]] = row["expires_at"].timestamp() + self._leeway
                self._seen = max(self._seen, row["revoked_at"])
        if added:
            log.info("revocations.loaded", added=len(added), total=len(self._revoked))
        self._prune()

    def _prune(self) -> None:
        now = time.time()
        if any(until < now for until in self._revoked.values()):
            self._revoked = {jti: until for jti, until in self._revoked.items() if until >= now}


def _confirmation(cnf: Any) -> str:
    """The ``x5t#S256`` of a ``cnf`` claim (RFC 7800 §3.1, RFC 8705 §3.1), ``""`` without one. A ``cnf`` of another
    form (not an object, no or a malformed thumbprint, a confirmation method this platform does not check) is
    refused: a token bound to something the service cannot verify must not pass as a plain bearer token. ``jkt``
    (RFC 9449 §6.1) is the other method checked here (``_jkt``)."""
    if cnf is None:
        return ""
    if not isinstance(cnf, dict) or not cnf or not set(cnf) <= {"x5t#S256", "jkt"}:
        raise TokenRejected("the access token's cnf claim is malformed or not supported")
    if "x5t#S256" not in cnf:
        return ""
    thumbprint = cnf["x5t#S256"]
    if not isinstance(thumbprint, str) or not THUMBPRINT.fullmatch(thumbprint):
        raise TokenRejected("the access token's cnf claim is malformed or not supported")
    return thumbprint


def _jkt(cnf: Any) -> str:
    """The ``jkt`` of a ``cnf`` claim (RFC 9449 §6.1: the RFC 7638 thumbprint of the DPoP key), ``""`` without one;
    ``_confirmation`` has checked the claim's form."""
    if not isinstance(cnf, dict) or "jkt" not in cnf:
        return ""
    jkt = cnf["jkt"]
    if not isinstance(jkt, str) or not THUMBPRINT.fullmatch(jkt):
        raise TokenRejected("the access token's cnf claim is malformed or not supported")
    return jkt


def _details(details: Any) -> tuple[AuthorizationDetail, ...]:
    """The ``authorization_details`` claim (RFC 9396 §9.1): a JSON array of objects, each with a string ``type``
    (§2); a ``consent`` detail names its artefact (a UUID, lowercase) and the purpose (a catalog code)."""
    if details is None:
        return ()
    if not isinstance(details, list) or not 0 < len(details) <= MAX_DETAILS:
        raise TokenRejected("the access token's authorization_details are malformed")
    parsed = []
    for detail in details:
        if not isinstance(detail, dict) or not isinstance(detail.get("type"), str):
            raise TokenRejected("the access token's authorization_details are malformed")
        kind = detail["type"]
        if not DETAIL_TYPE.fullmatch(kind):
            raise TokenRejected("the access token's authorization_details are malformed")
        if kind != CONSENT_DETAIL:
            parsed.append(AuthorizationDetail(kind))
            continue
        consent_id, purpose = detail.get("consent_id"), detail.get("purpose")
        if not isinstance(consent_id, str) or not UUID.fullmatch(consent_id):
            raise TokenRejected("the access token's authorization_details: a consent detail is malformed")
        if not isinstance(purpose, str) or not PURPOSE.fullmatch(purpose):
            raise TokenRejected("the access token's authorization_details: a consent detail is malformed")
        parsed.append(AuthorizationDetail(kind, consent_id, purpose))
    return tuple(parsed)


def signing_keys(entries: Iterable[Any]) -> dict[str, jwk.Key]:
    """The usable public signing keys of a JWK Set, by kid: EC or RSA (≥ 2048 bits), ``use`` sig or absent.
    Private members are dropped; entries that do not import are skipped."""
    keys: dict[str, jwk.Key] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or kid in keys:
            continue
        if entry.get("kty") not in ("EC", "RSA") or entry.get("use", "sig") != "sig":
            continue
        public = {name: value for name, value in entry.items() if name not in PRIVATE_MEMBERS}
        try:
            key = jwk.import_key(public)
        except (JoseError, ValueError, TypeError):
            log.warning("jwks.key_skipped", kid=kid)
            continue
        if isinstance(key, jwk.RSAKey) and key.public_key.key_size < MIN_RSA_BITS:
            log.warning("jwks.key_skipped", kid=kid, reason="RSA key too small")
            continue
        keys[kid] = key
    return keys


def _material(keys: dict[str, jwk.Key]) -> dict[str, Any]:
    return {kid: key.as_dict(private=False) for kid, key in keys.items()}


def _header(token: str) -> dict[str, Any]:
    segment, dot, _ = token.partition(".")
    if not dot or token.count(".") != 2 or len(segment) > 1024:
        raise TokenRejected("the access token is not a signed JWT")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:
        raise TokenRejected("the access token is malformed") from None
    if not isinstance(header, dict):
        raise TokenRejected("the access token is malformed")
    return header


CLAIM_PROBLEMS = {
    "iss": "the access token was not issued by this platform's OpenID Provider",
    "aud": "the access token is not meant for this service",
    "nbf": "the access token is not valid yet",
    "iat": "the access token's issue time is in the future or malformed",
    "exp": "the access token's expiry is malformed",
}
