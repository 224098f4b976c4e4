"""DPoP: sender-constrained access tokens by proof of possession at the application layer (RFC 9449).

A client holding a key pair sends, with each request, a *DPoP proof*: a JWT it signs with that key, naming the
request's method and URI. The OP binds an access token to the key's RFC 7638 thumbprint (``cnf.jkt``, §6.1) and a
resource server accepts the token only with a fresh proof by that key. What is here:

- ``verify_proof``: the checks of §4.3 that need no state: ``typ`` ``dpop+jwt``; ``alg`` one of ``ALGORITHMS``
  (asymmetric only: never ``none`` nor an HMAC, §4.3 point 5); ``jwk`` a public key only (point 7); the signature
  by that key (point 6); ``htm`` and ``htu`` (points 8, 9: the URI compared without query and fragment, after
  syntax- and scheme-based normalisation, RFC 3986 §6.2.2-6.2.3); ``iat`` within ``MAX_AGE`` seconds back and
  ``SKEW`` ahead (point 11); ``jti`` present; ``ath`` the base64url SHA-256 of the access token when the proof is
  presented with one (point 12, §7.1); and it returns the key's thumbprint (``jkt``).
- ``Nonces``: server-provided nonces (§8, §9), stateless: a nonce is ``{"exp": ...}`` sealed with AES-256-GCM
  under the edge's key with its own associated data (``dpop-nonce``), so any edge process accepts any other's
  until it expires (``NONCE_TTL``) and no nonce needs storing. A process re-mints its nonce half way through its
  life, so clients that keep the last ``DPoP-Nonce`` they were given rarely need a second round trip.
- ``ReplayCache`` / ``PostgresReplayCache``: single use of a proof (§11.1): ``(jkt, jti)`` is inserted into
  ``oidc.dpop_proofs`` (``INSERT ... ON CONFLICT DO NOTHING``) before a request is answered, kept until the proof
  could no longer pass the ``iat`` check; every edge process and every gRPC service share the one table.
- ``DpopChecker``: the three together, for one server.
- ``Proofer``: the client side, for tests, the benchmark and agencies' clients.

Errors are ``InvalidDpopProof`` (``invalid_dpop_proof``, §5 and §7.1) or ``UseDpopNonce`` (``use_dpop_nonce``,
§8, §9); their descriptions are fixed texts, never anything of the proof.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from joserfc import jwk, jws
from joserfc.errors import JoseError, SecurityWarning

from core.keys.sealing import Sealer, b64, unb64

ALGORITHMS = ("ES256", "PS256", "EdDSA")  # the FAPI 2.0 set (§5.4.1), asymmetric only (RFC 9449 §4.3 point 5)
PROOF_TYPE = "dpop+jwt"  # §4.2
MAX_PROOF = 8 * 1024  # bytes of a DPoP header read at all
MAX_AGE = 60  # seconds a proof's iat may lie in the past (§4.3 point 11, §11.1)
SKEW = 5  # seconds it may lie in the future (clock skew)
NONCE_TTL = 120  # seconds a server nonce is accepted
NONCE_AAD = b"dpop-nonce"
MAX_JTI = 256
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
KEY_TYPES = {"ES256": "EC", "PS256": "RSA", "EdDSA": "OKP"}
MIN_RSA_BITS = 2048
SCHEME = "DPoP"  # the authorization scheme (§7.1)
HEADER = "DPoP"  # the HTTP request header carrying the proof (§4.1)
NONCE_HEADER = "DPoP-Nonce"  # the response header carrying the server's nonce (§8.1)
GRPC_METADATA = "dpop"  # the gRPC metadata key carrying the proof (this platform's choice, docs/fapi.md)
GRPC_NONCE_METADATA = "dpop-nonce"

_REGISTRY = jws.JWSRegistry(algorithms=ALGORITHMS, strict_check_header=False)
_REGISTRY.max_header_length = 4096  # an RSA jwk in the header (the default 512 bytes is too little)


@contextmanager
def _quiet(alg: str) -> Iterator[None]:
    """joserfc warns that ``EdDSA`` is deprecated (RFC 9864 names it ``Ed25519``); FAPI 2.0 §5.4.1 names EdDSA."""
    if alg != "EdDSA":
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)
        yield


class InvalidDpopProof(Exception):
    """A missing, malformed or unacceptable DPoP proof (``invalid_dpop_proof``, RFC 9449 §5, §7.1)."""

    error = "invalid_dpop_proof"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class UseDpopNonce(InvalidDpopProof):
    """The proof carries no nonce, or one this server no longer accepts (``use_dpop_nonce``, §8, §9): retry with
    the nonce of the ``DPoP-Nonce`` header (gRPC: the ``dpop-nonce`` trailer)."""

    error = "use_dpop_nonce"


@dataclass(frozen=True)
class Proof:
    """A verified DPoP proof: the key's thumbprint (``jkt``, RFC 7638), its ``jti`` and ``iat``, its nonce."""

    jkt: str
    jti: str
    iat: int
    nonce: str | None


def access_token_hash(token: str) -> str:
    """``ath`` (§4.2): base64url of the SHA-256 of the access token's ASCII text, no padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode("ascii")).digest()).rstrip(b"=").decode()


def normal_uri(uri: str) -> str:
    """The URI as compared for ``htu`` (§4.3 point 9): query and fragment dropped, scheme and host lowercased, the
    scheme's default port dropped and an empty path made ``/`` (RFC 3986 §6.2.2.1, §6.2.3)."""
    parts = urlsplit(uri)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    if port is not None and (scheme, port) not in (("https", 443), ("http", 80)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", "", ""))


def thumbprint(key: jwk.Key) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url): the ``jkt`` a bound token names (§6.1)."""
    return str(key.thumbprint())


def _b64json(segment: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:
        raise InvalidDpopProof("the DPoP proof is not a JWT") from None


_KEYS: dict[str, tuple[jwk.Key, str]] = {}  # the header's jwk text → (key, thumbprint): a client signs many proofs
MAX_KEYS = 4096


def _public_key(header: dict[str, Any]) -> tuple[jwk.Key, str]:
    """The header's ``jwk`` (§4.2) and its thumbprint, imported once per process (``_KEYS``)."""
    text = json.dumps(header.get("jwk"), sort_keys=True, separators=(",", ":"))
    known = _KEYS.get(text + header["alg"])
    if known is not None:
        return known
    key = _import_public_key(header)
    if len(_KEYS) >= MAX_KEYS:
        _KEYS.clear()
    _KEYS[text + header["alg"]] = (key, thumbprint(key))
    return key, _KEYS[text + header["alg"]][1]


def _import_public_key(header: dict[str, Any]) -> jwk.Key:
    """The header's ``jwk`` (§4.2): a public key of the type ``alg`` needs, never a private one (§4.3 point 7)."""
    member = header.get("jwk")
    if not isinstance(member, dict):
        raise InvalidDpopProof("the DPoP proof's header needs a jwk")
    if PRIVATE_MEMBERS & member.keys():
        raise InvalidDpopProof("the DPoP proof's jwk must be a public key")
    if member.get("kty") != KEY_TYPES[header["alg"]]:
        raise InvalidDpopProof("the DPoP proof's jwk does not fit its alg")
    try:
        key = jwk.import_key(member)
    except (JoseError, ValueError, TypeError):
        raise InvalidDpopProof("the DPoP proof's jwk is not a usable key") from None
    if isinstance(key, jwk.RSAKey) and key.public_key.key_size < MIN_RSA_BITS:
        raise InvalidDpopProof("the DPoP proof's RSA key is too small")
    if isinstance(key, jwk.OKPKey) and member.get("crv") != "Ed25519":
        raise InvalidDpopProof("the DPoP proof's OKP key must be Ed25519")
    return key


def verify_proof(
    proof: str, htm: str, htu: str, access_token: str | None = None, now: float | None = None
) -> tuple[Proof, dict[str, Any]]:
    """Check one DPoP proof against the request (RFC 9449 §4.3 points 1-12 except the nonce and replay, which need
    server state: ``DpopChecker``). Returns the proof and its claims; ``InvalidDpopProof`` otherwise."""
    if not proof or len(proof) > MAX_PROOF or proof.count(".") != 2:
        raise InvalidDpopProof("the DPoP proof is not a JWT")  # point 2
    header = _b64json(proof.split(".", 1)[0])
    if not isinstance(header, dict):
        raise InvalidDpopProof("the DPoP proof is not a JWT")
    if header.get("typ") != PROOF_TYPE:
        raise InvalidDpopProof("the DPoP proof's typ must be dpop+jwt")  # point 4
    if header.get("alg") not in ALGORITHMS:
        raise InvalidDpopProof("the DPoP proof's alg must be one of " + " ".join(ALGORITHMS))  # point 5
    key, jkt = _public_key(header)
    try:
        with _quiet(header["alg"]):
            signed = jws.deserialize_compact(proof, key, algorithms=ALGORITHMS, registry=_REGISTRY)  # point 6
        claims = json.loads(signed.payload)
    except (JoseError, ValueError):
        raise InvalidDpopProof("the DPoP proof's signature does not verify") from None
    if not isinstance(claims, dict):
        raise InvalidDpopProof("the DPoP proof's claims are not a JSON object")
    jti, iat = claims.get("jti"), claims.get("iat")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI:
        raise InvalidDpopProof("the DPoP proof needs a jti")  # point 3
    if claims.get("htm") != htm:
        raise InvalidDpopProof("the DPoP proof's htm is not this request's method")  # point 8
    named = claims.get("htu")
    if not isinstance(named, str) or len(named) > 2048 or normal_uri(named) != normal_uri(htu):
        raise InvalidDpopProof("the DPoP proof's htu is not this request's URI")  # point 9
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise InvalidDpopProof("the DPoP proof needs an iat")
    moment = time.time() if now is None else now
    if iat < moment - MAX_AGE or iat > moment + SKEW:
        raise InvalidDpopProof(f"the DPoP proof's iat is not within {MAX_AGE} s of now")  # point 11
    if access_token is not None:  # point 12
        ath = claims.get("ath")
        if not isinstance(ath, str):
            raise InvalidDpopProof("the DPoP proof needs an ath: it is presented with an access token")
        if not secrets.compare_digest(ath, access_token_hash(access_token)):
            raise InvalidDpopProof("the DPoP proof's ath is not the hash of this access token")
    nonce = claims.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise InvalidDpopProof("the DPoP proof's nonce is malformed")
    return Proof(jkt, jti, int(iat), nonce), claims


class Nonces:
    """Server-provided nonces (§8, §9), stateless: sealed ``{"exp"}`` under the key given (its own AEAD associated
    data, ``dpop-nonce``, so no other sealed value of that key passes as one)."""

    def __init__(self, key: bytes, ttl: int = NONCE_TTL) -> None:
        self._sealer = Sealer(key)
        self._ttl = ttl
        self._current: tuple[float, str] | None = None  # (re-mint after, nonce)

    def mint(self, now: float | None = None) -> str:
        """A new nonce valid for ``ttl`` seconds from ``now``."""
        moment = time.time() if now is None else now
        body = json.dumps({"exp": int(moment) + self._ttl}, separators=(",", ":")).encode()
        return b64(self._sealer.seal(body, NONCE_AAD))

    def current(self) -> str:
        """This process's nonce of the moment, re-minted once half its life has passed."""
        now = time.time()
        if self._current is None or self._current[0] <= now:
            self._current = (now + self._ttl / 2, self.mint(now))
        return self._current[1]

    def valid(self, nonce: str | None, now: float | None = None) -> bool:
        if not nonce or len(nonce) > 256:
            return False
        raw = unb64(nonce)
        body = self._sealer.open(raw, NONCE_AAD) if raw else None
        if body is None:
            return False
        try:
            exp = json.loads(body).get("exp")
        except (ValueError, AttributeError):
            return False
        return isinstance(exp, int) and exp >= (time.time() if now is None else now)


class ReplayCache(Protocol):
    """Where proofs are used up (RFC 9449 §11.1)."""

    async def claim(self, jkt: str, jti: str, until: float) -> bool:
        """Record ``(jkt, jti)`` until Unix time ``until``; False when it was recorded before (a replay)."""


class MemoryReplayCache:
    """One process's replay cache (unit tests; a single-process verifier)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}

    async def claim(self, jkt: str, jti: str, until: float) -> bool:
        now = time.time()
        if len(self._seen) > 10_000:
            self._seen = {k: v for k, v in self._seen.items() if v >= now}
        if self._seen.get((jkt, jti), 0) >= now:
            return False
        self._seen[(jkt, jti)] = until
        return True


CLAIM = (
    "INSERT INTO oidc.dpop_proofs (jkt, jti, expires_at)"
    " SELECT k, j, to_timestamp(u) FROM unnest($1::text[], $2::text[], $3::float8[]) AS t(k, j, u)"
    " ON CONFLICT DO NOTHING RETURNING jkt, jti"  # RETURNING: SELECT (jkt, jti) granted to the services (0021)
)
PURGE = "DELETE FROM oidc.dpop_proofs WHERE expires_at < now()"
PURGE_EVERY = 30.0  # seconds between purges of expired rows (by a process that may delete: the edge)


class PostgresReplayCache:
    """``oidc.dpop_proofs`` (migration 0021), shared by every process that checks proofs. ``purge``: this process
    deletes expired rows now and then (the edge's role may; the services' roles may only insert and read back what
    they inserted). A row that expired but is not purged yet still refuses its proof, which the ``iat`` check
    refuses anyway."""

    def __init__(self, pool: asyncpg.Pool, purge: bool = False) -> None:
        self._pool = pool
        self._purge = purge
        self._purged_at = time.monotonic()
        self._purging: asyncio.Task[None] | None = None
        self._pending: list[tuple[str, str, float, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def claim(self, jkt: str, jti: str, until: float) -> bool:
        """Group commit: claims that arrive while an insert is under way go together in the next one (one statement,
        one round trip, however many callers wait)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._pending.append((jkt, jti, until, future))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write())
        if self._purge and time.monotonic() - self._purged_at > PURGE_EVERY:
            self._purged_at = time.monotonic()
            if self._purging is None or self._purging.done():
                self._purging = loop.create_task(self._delete_expired())
        return await future

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            first: dict[tuple[str, str], int] = {}
            for index, (jkt, jti, _, _) in enumerate(batch):
                first.setdefault((jkt, jti), index)  # a proof twice in one batch: the first may pass, never both
            try:
                rows = await self._pool.fetch(
                    CLAIM, [b[0] for b in batch], [b[1] for b in batch], [b[2] for b in batch]
                )
            except BaseException as error:  # every caller of the batch hears it (UNAVAILABLE, never a pass)
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(error if isinstance(error, Exception) else asyncpg.PostgresError())
                if not isinstance(error, Exception):
                    raise
                continue
            new = {(row["jkt"], row["jti"]) for row in rows}
            for index, (jkt, jti, _, future) in enumerate(batch):
                if not future.done():
                    future.set_result((jkt, jti) in new and first[(jkt, jti)] == index)

    async def _delete_expired(self) -> None:
        # a failure: the next purge tries again; expired rows refuse nothing the iat check would accept
        with suppress(asyncpg.PostgresError, OSError, TimeoutError):
            await self._pool.execute(PURGE)


class DpopChecker:
    """One server's DPoP check: the proof (``verify_proof``), its nonce when ``nonces`` is set (§8, §9), its single
    use in ``replay``. ``check`` raises ``InvalidDpopProof`` / ``UseDpopNonce``; the caller answers them."""

    def __init__(self, replay: ReplayCache, nonces: Nonces | None = None) -> None:
        self.replay = replay
        self.nonces = nonces

    def nonce(self) -> str | None:
        """The nonce to send in ``DPoP-Nonce`` (None: this server requires none)."""
        return self.nonces.current() if self.nonces is not None else None

    async def check(
        self, values: list[str], htm: str, htu: str, access_token: str | None = None, jkt: str | None = None
    ) -> Proof:
        """``values``: the request's DPoP header (or metadata) values; exactly one is allowed (§4.3 point 1).
        ``jkt``: the thumbprint the presented access token is bound to (§7.1: the proof must be by that key)."""
        if len(values) != 1:
            raise InvalidDpopProof("send exactly one DPoP proof" if values else "the request needs a DPoP proof")
        proof, _ = verify_proof(values[0], htm, htu, access_token)
        if jkt is not None and not secrets.compare_digest(proof.jkt, jkt):
            raise InvalidDpopProof("the DPoP proof is signed by another key than the one the access token is bound to")
        if self.nonces is not None and not self.nonces.valid(proof.nonce):  # point 10
            raise UseDpopNonce(
                "the DPoP proof needs this server's nonce" if proof.nonce is None else "the DPoP nonce is stale"
            )
        if not await self.replay.claim(proof.jkt, proof.jti, proof.iat + MAX_AGE + SKEW):
            raise InvalidDpopProof("the DPoP proof was used before (its jti)")
        return proof


class Proofer:
    """The client side (§4.2): a key pair and proofs by it. ``nonce`` is the last server nonce seen (``remember``),
    put in every proof."""

    def __init__(self, key: jwk.Key | None = None, alg: str = "ES256") -> None:
        if alg not in ALGORITHMS:
            raise ValueError(f"alg must be one of {ALGORITHMS}")
        if key is None:
            key = {
                "ES256": lambda: jwk.ECKey.generate_key("P-256"),
                "PS256": lambda: jwk.RSAKey.generate_key(2048),
                "EdDSA": lambda: jwk.OKPKey.generate_key("Ed25519"),
            }[alg]()
        self.key = key
        self.alg = alg
        self.public = {k: v for k, v in key.as_dict(private=False).items() if k not in ("kid", "use", "alg")}
        self.jkt = thumbprint(key)
        self.nonce: str | None = None

    def proof(
        self, htm: str, htu: str, access_token: str | None = None, nonce: str | None = None,
        iat: float | None = None, jti: str | None = None,
    ) -> str:  # fmt: skip
        """A proof for one request; ``access_token`` adds ``ath`` (§4.2); ``nonce`` defaults to ``self.nonce``."""
        claims: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": htm,
            "htu": htu,
            "iat": int(time.time() if iat is None else iat),
        }
        nonce = nonce if nonce is not None else self.nonce
        if nonce:
            claims["nonce"] = nonce
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        header = {"typ": PROOF_TYPE, "alg": self.alg, "jwk": self.public}
        payload = json.dumps(claims, separators=(",", ":"))
        with _quiet(self.alg):
            return jws.serialize_compact(header, payload, self.key, algorithms=ALGORITHMS, registry=_REGISTRY)

    def remember(self, headers: Any) -> str | None:
        """Keep the ``DPoP-Nonce`` of a response's headers (any mapping, case-insensitive lookups or not)."""
        value = None
        getter = getattr(headers, "get", None)
        if getter is not None:
            value = getter(NONCE_HEADER) or getter(NONCE_HEADER.lower())
        if value:
            self.nonce = str(value)
        return self.nonce


def grpc_htu(service: str, method: str) -> str:
    """The ``htu`` of a gRPC call (docs/fapi.md): ``https://<service>`` + the full method path, where ``<service>``
    is the service's name, the DNS name its certificate carries and its clients check (services/tls.py), whatever
    address or port was dialled: ``https://vault/dinhdanh.vault.v1.Vault/ListDocuments``."""
    return f"https://{service}{method}"
