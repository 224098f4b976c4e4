"""The OpenID Provider's use cases, async, around authlib's synchronous server.

Each protocol request: load what authlib's hooks will need (work.py), run the grant or endpoint,
then perform the writes it asked for; only then is the response released. The HTTP edge turns
``Reply`` values into responses.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import asyncpg
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidGrantError, OAuth2Error
from joserfc import jwt
from joserfc.errors import JoseError

from consent.storage import StoredConsent
from core import logs
from core.errors import DataLoss, DomainError, NotFound
from core.keys import purposes
from core.keys.provider import KeyProvider, KeyUnavailable
from core.keys.sealing import Sealer
from identity.oidc import (
    assurance,
    authorization_details,
    claims_request,
    client_keys,
    dpop,
    fapi,
    keys,
    par,
    userinfo_jwt,
    verified_claims,
    work,
)
from identity.oidc.claims import SCOPE_CLAIMS, CitizenRecord, CitizenRecords, claims_for
from identity.oidc.clients import CLIENT_SCOPES_SUPPORTED, RESOURCES, Client
from identity.oidc.mtls import PeerCertificate
from identity.oidc.reply import Reply
from identity.oidc.requests import Request as OidcRequest
from identity.oidc.sealed import SealedCodec
from identity.oidc.server import (
    ACCESS_TTL,
    ID_TOKEN_TTL,
    TOKEN_AUTH,
    AccessToken,
    RefreshToken,
    User,
    build,
    refresh_hash,
)
from identity.oidc.store import ClientStore, ConsentStore, RefreshRecord, SessionStore, SigningKeyStore, TokenStore
from identity.oidc.subjects import SECTOR_CLAIM, SUBJECT_TYPES, Subjects

SESSION_TTL = 8 * 3600
LOGOUT_CSRF_TTL = 900
CLIENT_CACHE_SECONDS = 5.0
log = logs.get("oidc")
KEY_WATCH_SECONDS = 0.5  # a rotation or revocation reaches the edge's signing and verifying within this
MAX_PARAM = 2048


@dataclass(frozen=True)
class Refusal:
    """The citizen's account is below the assurance level the request requires: the page that says how to reach
    it, and ``back``, the redirect that answers the portal ``access_denied``."""

    required: int
    level: str
    back: str


@dataclass
class Outcome:
    """What the authorization endpoint needs next: a reply, the login page, the consent page, the assurance
    refusal page, or an error page."""

    reply: Reply | None = None
    login: bool = False
    consent: list[str] | None = None
    resources: list[str] | None = None  # on the consent page, beside the scopes
    client: Client | None = None
    error: str | None = None
    refused: Refusal | None = None
    query: str | None = None  # the request's parameters when they were pushed (RFC 9126): the flow continues on them
    pushed: bool = False  # they were (the flow says so, sealed, when the sign-in resumes)


def _basic_client_id(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if not auth.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(auth[6:], validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    from urllib.parse import unquote

    return unquote(decoded.split(":", 1)[0]) if ":" in decoded else None


def _assertion_kid(form: dict[str, str]) -> str | None:
    """Peek at a client assertion's ``kid`` (its signature is verified later by authlib)."""
    assertion = form.get("client_assertion")
    if not assertion or assertion.count(".") != 2:
        return None
    try:
        header = assertion.split(".")[0]
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    kid = decoded.get("kid") if isinstance(decoded, dict) else None
    return kid if isinstance(kid, str) else None


def _assertion_client_id(form: dict[str, str]) -> str | None:
    """Peek at a client assertion's ``sub`` (verified later by authlib)."""
    assertion = form.get("client_assertion")
    if not assertion or assertion.count(".") != 2:
        return None
    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else None


class ConsentLookup(Protocol):
    """What the token endpoint reads of consent (``consent.pg_store.PostgresConsentStore``)."""

    async def get(self, artefact_id: uuid.UUID) -> StoredConsent:
        """The artefact with its status (``NotFound`` if none)."""


PAR_AUTH_PARAMS = ("client_secret", "client_assertion", "client_assertion_type")  # never stored (RFC 9126 §2.1)


def signing_keys(key_provider: KeyProvider) -> keys.Keys:
    """Where the OP's private keys are: sealed with ``oidc-signing-key`` in ``oidc.signing_keys``, or in the PKCS#11
    token of ``core.keys.pkcs11.TokenKeyProvider`` (``DINHDANH_KEY_BACKEND=pkcs11``; then the sealing key, if the
    edge still holds one, opens only the rows sealed before the switch)."""
    token = getattr(key_provider, "token", None)
    if token is None:
        return Sealer(key_provider.key(purposes.OIDC_SIGNING_KEY))
    try:
        return keys.TokenKeys(token, Sealer(key_provider.key(purposes.OIDC_SIGNING_KEY)))
    except KeyUnavailable:
        return keys.TokenKeys(token, None)


def oauth_error(error: str, description: str, status: int = 400) -> Reply:
    return Reply(status, {"error": error, "error_description": description}, [("Cache-Control", "no-store")])


class Provider:
    def __init__(
        self, issuer: str, pool: asyncpg.Pool, key_provider: KeyProvider, records: CitizenRecords,
        mtls_base: str | None = None, consent_lookup: ConsentLookup | None = None,
        verifications: verified_claims.VerificationFacts | None = None,
    ) -> None:  # fmt: skip
        """``mtls_base``: the URL of the mutual-TLS endpoints (RFC 8705 §5), None when the edge serves none;
        ``consent_lookup``: where consent tokens' artefacts are read (none: consent tokens are refused)."""
        self.issuer = issuer
        self.mtls_base = mtls_base
        self._consent_lookup = consent_lookup
        self.clients = ClientStore(pool)
        self.tokens = TokenStore(pool)
        self.sessions = SessionStore(pool)
        self.consents = ConsentStore(pool)
        self.pushed: par.PushedRequests = par.PostgresPushedRequests(pool)  # RFC 9126
        self.client_keys = client_keys.ClientKeys()  # clients' jwks_uri (RFC 7591 §2)
        self._keys = SigningKeyStore(pool)
        self._key_sealer = signing_keys(key_provider)
        self.session_codec = SealedCodec(key_provider.key(purposes.SSO_SESSION), "sso-session")
        self.flow_codec = SealedCodec(key_provider.key(purposes.LOGIN_FLOW), "login-flow")
        self._codes = SealedCodec(key_provider.key(purposes.AUTHORIZATION_CODE), "authorization-code")
        self.subjects = Subjects(key_provider.key(purposes.OIDC_SUBJECT))
        self._records = records
        self._verifications = verifications  # how accounts were verified, for verified_claims (none: never any)
        # RFC 9449: proofs used once across every edge process; nonces sealed under the login-flow key with their
        # own associated data (dpop.NONCE_AAD), so no login-flow cookie passes as a nonce nor the reverse
        self.dpop = dpop.DpopChecker(dpop.PostgresReplayCache(pool, purge=True),
                                     dpop.Nonces(key_provider.key(purposes.LOGIN_FLOW)))  # fmt: skip
        self._client_cache: dict[str, tuple[float, Client | None]] = {}
        self.server: Any = None
        self._reloader: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await keys.ensure(self._keys, self._key_sealer)
        await self.reload_keys()
        self._reloader = asyncio.create_task(self._reload_forever())

    async def stop(self) -> None:
        if self._reloader:
            self._reloader.cancel()

    async def reload_keys(self, known: tuple[object, ...] | None = None) -> None:
        """Load the signing keys again, unless their stamp is still ``known`` (nothing changed)."""
        stored = await self._keys.keys()
        if known is not None and keys.stamp(stored) == known:
            return
        ring = keys.KeyRing(stored, self._key_sealer)
        if self.server is None:
            self.server = build(self.issuer, ring, self._codes, list(CLIENT_SCOPES_SUPPORTED))
            self.server.subjects = self.subjects
        else:
            self.server.keyring = ring

    async def rotate_keys(self, alg: str) -> None:
        longest = dt.timedelta(seconds=max(ACCESS_TTL, ID_TOKEN_TTL) + 60)
        await keys.rotate(self._keys, self._key_sealer, alg, longest)
        await self.reload_keys()

    async def _reload_forever(self) -> None:
        """Every KEY_WATCH_SECONDS, one small read of the key table; a rotation or revocation by another
        process (``dinhdanh keys``) is picked up then. A failed read is retried at the next tick."""
        while True:
            await asyncio.sleep(KEY_WATCH_SECONDS)
            try:
                await self.reload_keys(known=self.server.keyring.stamp)
            except Exception as error:  # never let the watch die: revocations would stop reaching the edge
                log.warning("signing_keys.reload_failed", error=str(error) or type(error).__name__)

    # -- metadata ---------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        """OpenID Connect Discovery 1.0 §3, RFC 8414, RFC 9207 §3."""
        i = self.issuer
        return {
            "issuer": i,
            "authorization_endpoint": f"{i}/authorize",
            "token_endpoint": f"{i}/token",
            "userinfo_endpoint": f"{i}/userinfo",
            "jwks_uri": f"{i}/jwks",
            "revocation_endpoint": f"{i}/revoke",
            "introspection_endpoint": f"{i}/introspect",
            "end_session_endpoint": f"{i}/logout",
            "scopes_supported": list(CLIENT_SCOPES_SUPPORTED),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": list(SUBJECT_TYPES),  # Core §8; pairwise per sector (subjects.py)
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "token_endpoint_auth_methods_supported": TOKEN_AUTH,
            "token_endpoint_auth_signing_alg_values_supported": list(fapi.PLAIN_ASSERTION_ALGS),  # fapi2: no RS256
            "revocation_endpoint_auth_methods_supported": TOKEN_AUTH,
            "introspection_endpoint_auth_methods_supported": TOKEN_AUTH,
            "code_challenge_methods_supported": ["S256"],
            "prompt_values_supported": ["none", "login", "consent"],
            "acr_values_supported": ["1", "2"],
            "claims_supported": [
                *("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr"),
                *sorted({c for claims in SCOPE_CLAIMS.values() for c in claims}),
            ],
            "ui_locales_supported": ["vi", "en"],
            "authorization_response_iss_parameter_supported": True,
            "pushed_authorization_request_endpoint": f"{i}/par",  # RFC 9126 §5
            "require_pushed_authorization_requests": False,  # per client: true on the FAPI 2.0 profile (fapi.py)
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "claims_parameter_supported": True,  # Core §5.5 (claims_request.py); claims still follow the scopes
            **self._verified_claims_metadata(),
            "authorization_details_types_supported": list(authorization_details.TYPES_SUPPORTED),  # RFC 9396 §10
            "dpop_signing_alg_values_supported": list(dpop.ALGORITHMS),  # RFC 9449 §5.1
            **self._mtls_metadata(),
        }

    def _verified_claims_metadata(self) -> dict[str, Any]:
        """OpenID Connect for Identity Assurance 1.0 §7 (verified_claims.py); Core §5.3.2 and Discovery §3 for
        signed and encrypted userinfo (userinfo_jwt.py)."""
        vc: dict[str, Any] = {}
        if self._verifications is not None:
            vc = {
                "verified_claims_supported": True,
                "trust_frameworks_supported": list(verified_claims.TRUST_FRAMEWORKS_SUPPORTED),
                "evidence_supported": list(verified_claims.EVIDENCE_SUPPORTED),
                "documents_supported": list(verified_claims.DOCUMENTS_SUPPORTED),
                "documents_check_methods_supported": list(verified_claims.DOCUMENT_CHECK_METHODS),
                "electronic_records_supported": ["population_register"],
                "claims_in_verified_claims_supported": list(verified_claims.CLAIMS_SUPPORTED),
                "attachments_supported": [],
            }
        return {
            **vc,
            "userinfo_signing_alg_values_supported": list(userinfo_jwt.signing_algs()),
            "userinfo_encryption_alg_values_supported": list(userinfo_jwt.ENCRYPTION_ALGS),
            "userinfo_encryption_enc_values_supported": list(userinfo_jwt.ENCRYPTION_ENCS),
        }

    def _mtls_metadata(self) -> dict[str, Any]:
        """RFC 8705 §3.3 and §5: bound tokens, and the endpoints served over mutual TLS."""
        if not self.mtls_base:
            return {}
        b = self.mtls_base
        return {
            "tls_client_certificate_bound_access_tokens": True,
            "mtls_endpoint_aliases": {
                "token_endpoint": f"{b}/token",
                "revocation_endpoint": f"{b}/revoke",
                "introspection_endpoint": f"{b}/introspect",
                "pushed_authorization_request_endpoint": f"{b}/par",
            },
        }

    def jwks(self) -> dict[str, Any]:
        return self.server.keyring.jwks()

    # -- clients ----------------------------------------------------------------------------

    async def client(self, client_id: str | None, fresh: bool = False) -> Client | None:
        """The registered client, from a cache of ``CLIENT_CACHE_SECONDS`` unless ``fresh`` (read now, and cached)."""
        if not client_id or len(client_id) > 200:
            return None
        now = time.monotonic()
        cached = self._client_cache.get(client_id)
        if cached and cached[0] > now and not fresh:
            return cached[1]
        client = await self.clients.get(client_id)
        self._client_cache[client_id] = (now + CLIENT_CACHE_SECONDS, client)
        return client

    async def _clients_named(self, req: OAuth2Request, fresh: bool = False) -> dict[str, Client]:
        """The clients a request names; ``fresh`` over mutual TLS, where the certificate must be the one recorded
        now (a reissue retires the previous certificate at once, not once the cache expires: RFC 8705 §2.1.2)."""
        form = req.payload.data
        ids = {_basic_client_id(req.headers), form.get("client_id"), _assertion_client_id(form)}
        found = {}
        for client_id in ids:
            client = await self.client(client_id, fresh)
            if client is not None:
                found[client_id] = await self._with_published_keys(client, form)
        return found

    async def _with_published_keys(self, client: Client, form: dict[str, str]) -> Client:
        """For a ``private_key_jwt`` assertion, the client with the keys its ``jwks_uri`` publishes beside its
        registered ones (client_keys.py: cached, fetched again once for a ``kid`` it has not seen)."""
        if not client.jwks_uri or not form.get("client_assertion"):
            return client
        published = await self.client_keys.keys(client.jwks_uri, _assertion_kid(form))
        keys = [*(client.jwks or {}).get("keys", []), *published.get("keys", [])]
        return dataclasses.replace(client, jwks={"keys": keys})

    @staticmethod
    def _asked(req: OAuth2Request) -> list[str]:
        """The RFC 8707 resource indicators a request names, each once (the issuer, for userinfo, is an audience
        of every access token anyway)."""
        return list(dict.fromkeys(req.payload.datalist.get("resource", [])))

    @staticmethod
    def _target_error(asked: list[str], client: Client | None) -> str | None:
        """Why the resources asked for cannot be had (RFC 8707 §2 ``invalid_target``), or None."""
        if any(r not in RESOURCES for r in asked):
            return "unknown resource; known: " + " ".join(RESOURCES)
        if client is not None and any(r not in client.resources for r in asked):
            return "the client is not registered for a resource asked for"
        return None

    # -- token endpoint ---------------------------------------------------------------------

    async def token(self, req: OAuth2Request, peer: PeerCertificate | None = None) -> Reply:
        """The token endpoint; ``peer``: the verified client certificate when the request came over mutual TLS."""
        asked = self._asked(req)
        unknown = self._target_error(asked, None)
        if unknown:
            return oauth_error("invalid_target", unknown)
        w = work.Work(clients=await self._clients_named(req, fresh=peer is not None), asked=asked, peer=peer)
        refused = await self._consent_request(req, w) or await self._dpop_proof(req, w)
        if refused is not None:
            return refused
        if req.form.get("grant_type") == "refresh_token" and req.form.get("refresh_token"):
            candidate = req.form["refresh_token"]
            if len(candidate) <= MAX_PARAM:
                w.refresh = await self._refresh_record(candidate)
        if req.form.get("grant_type") == "authorization_code":
            w.id_token_claims = await self._id_token_claims_of(req.form.get("code"))
        reply = self._run(w, lambda: self.server.create_token_response(req))
        veto = await self._commit(w)
        reply = veto or reply
        if w.dpop_jkt is not None:  # §8.2: the nonce of the moment, for the client's next proof
            reply.headers.append((dpop.NONCE_HEADER, self.dpop.nonce() or ""))
        return reply

    async def _dpop_proof(self, req: OAuth2Request, w: work.Work) -> Reply | None:
        """RFC 9449 §5 at the token endpoint: a ``DPoP`` header is verified (§4.3, ``htu`` the token endpoint it
        reached: the mTLS alias over mutual TLS), with this server's nonce (§8: else ``use_dpop_nonce`` with a
        ``DPoP-Nonce`` header), used once; its key's thumbprint binds the tokens (``Work.dpop_jkt``)."""
        proofs = _header_values(req.headers, dpop.HEADER)
        if not proofs:
            return None
        endpoint = f"{self.mtls_base if w.peer is not None and self.mtls_base else self.issuer}/token"
        try:
            w.dpop_jkt = (await self.dpop.check(proofs, "POST", endpoint)).jkt
        except dpop.InvalidDpopProof as error:
            reply = oauth_error(error.error, error.description)
            if isinstance(error, dpop.UseDpopNonce):
                reply.headers.append((dpop.NONCE_HEADER, self.dpop.nonce() or ""))
            return reply
        return None

    async def _dpop_presented(self, claims: dict[str, Any], token: str, scheme: str, proofs: list[str],
                              method: str) -> Reply | None:  # fmt: skip
        """RFC 9449 §7 at userinfo: a DPoP-bound token (``cnf.jkt``) only with the DPoP scheme and a proof by its
        key for this request (``htm``, ``htu`` the userinfo endpoint, ``ath``), with the nonce (§9), used once; a
        DPoP scheme only with a DPoP-bound token. Errors per §7.1, in a ``DPoP`` challenge."""
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        if jkt is None:
            if scheme == "dpop":
                return self._dpop_error("invalid_token", "the access token is not DPoP-bound: use the Bearer scheme")
            return None
        if scheme != "dpop":
            return self._dpop_error("invalid_token", "the access token is DPoP-bound: use the DPoP scheme")
        try:
            await self.dpop.check(proofs, method, f"{self.issuer}/userinfo", token, str(jkt))
        except dpop.InvalidDpopProof as error:
            return self._dpop_error(error.error, error.description, isinstance(error, dpop.UseDpopNonce))
        return None

    def _dpop_error(self, error: str, description: str, nonce: bool = False) -> Reply:
        """A resource error in the DPoP scheme (RFC 9449 §7.1, §9: 401, ``WWW-Authenticate: DPoP``, the nonce)."""
        algs = " ".join(dpop.ALGORITHMS)
        challenge = f'DPoP error="{error}", error_description="{description}", algs="{algs}"'
        headers = [("WWW-Authenticate", challenge), ("Cache-Control", "no-store")]
        if nonce:
            headers.append((dpop.NONCE_HEADER, self.dpop.nonce() or ""))
        return Reply(401, {"error": error, "error_description": description}, headers)

    async def _consent_request(self, req: OAuth2Request, w: work.Work) -> Reply | None:
        """RFC 9396 §6 at the token endpoint: parse the ``consent`` detail and load its artefact for the grant
        (server.py ``ClientCredentialsGrant``), which decides once the client is authenticated."""
        raw = req.form.get("authorization_details")
        if raw is None:
            return None
        try:
            w.consent_detail = authorization_details.parse(raw)
        except authorization_details.InvalidAuthorizationDetails as error:
            return oauth_error(error.error, error.description)
        if req.form.get("grant_type") != "client_credentials":
            return oauth_error("invalid_request", "authorization_details is for grant_type=client_credentials")
        if w.peer is None:
            where = f" ({self.mtls_base}/token)" if self.mtls_base else ""
            return oauth_error("invalid_request", f"consent tokens are certificate-bound: use the mTLS endpoint{where}")
        if self._consent_lookup is None:
            return oauth_error("temporarily_unavailable", "consent tokens are not available on this edge", 503)
        try:
            w.consent = await self._consent_lookup.get(w.consent_detail.consent_id)
        except NotFound:
            w.consent = None
        except DataLoss:  # the stored artefact no longer matches the platform's signature: never a token on it
            log.warning("consent.does_not_verify", consent_id=str(w.consent_detail.consent_id))
            return oauth_error("invalid_authorization_details", "the consent cannot be verified")
        except DomainError as error:  # Unavailable: never a token on an artefact not read
            log.warning("consent.lookup_failed", error=type(error).__name__)
            return oauth_error("temporarily_unavailable", "the consent could not be read; try again", 503)
        return None

    async def _refresh_record(self, token: str) -> RefreshRecord | None:
        """A stored refresh token; one bound to an SSO session that has ended counts as revoked (Core §11:
        without ``offline_access`` a refresh token ends with the session it was issued in)."""
        record = await self.tokens.refresh(refresh_hash(token))
        if record is not None and record.sid is not None and await self.sessions.ended(record.sid):
            return dataclasses.replace(record, revoked=True)
        return record

    async def _commit(self, w: work.Work) -> Reply | None:
        """Perform the writes the grant asked for; return the error that replaces the response, if it must."""
        if w.assertion is not None and not await self.tokens.claim_assertion(*w.assertion):
            return oauth_error("invalid_client", "the client assertion was used before (its jti, RFC 7523 section 3)")
        if w.revoke_family is not None:
            await self.tokens.revoke_family(w.revoke_family.family)
        if w.revoke_access is not None:
            await self.tokens.revoke_access(*w.revoke_access)
        if w.used_code is not None:
            if not await self.tokens.redeem_code(*w.used_code, w.issued_access, w.new_refresh):
                return oauth_error("invalid_grant", "the authorization code was already used; its tokens are revoked")
        elif w.rotated_from is not None and w.new_refresh is not None:
            return await self._rotate(w.rotated_from, w.new_refresh, w.refresh)
        return None

    async def _rotate(self, old: bytes, new: RefreshRecord, record: RefreshRecord | None) -> Reply | None:
        """Rotation (RFC 9700 §4.14.2); losing a race means the token was used twice: its family is revoked."""
        if await self.tokens.rotate(old, new):
            return None
        assert record is not None
        await self.tokens.revoke_family(record.family)
        return oauth_error("invalid_grant", "the refresh token was already used; its family is revoked")

    @staticmethod
    def _run(w: work.Work, call: Any) -> Reply:
        token = work.begin(w)
        try:
            reply: Reply = call()
        finally:
            work.end(token)
        return reply

    # -- pushed authorization requests (RFC 9126) ----------------------------------------------

    async def par(self, req: OAuth2Request, peer: PeerCertificate | None = None) -> Reply:
        """The pushed authorization request endpoint (RFC 9126 §2): the client authenticates as at the token
        endpoint (§2, ``invalid_client`` otherwise: FAPI 2.0 clients with ``private_key_jwt`` or ``tls_client_auth``
        only), its parameters are validated as the authorization endpoint would (§2.1: client, redirect_uri,
        response_type, scope, PKCE S256, resource indicators, acr) and stored; the answer is a ``request_uri`` and
        its ``expires_in`` (§2.2, 201). Errors are JSON (§2.3), never redirects."""
        pairs = list(req.payload.datalist.items())
        if any(len(v) > MAX_PARAM for _, values in pairs for v in values):
            return oauth_error("invalid_request", "a request parameter is too long")
        if "request_uri" in req.form:
            return oauth_error("invalid_request", "request_uri must not be pushed (RFC 9126 section 2.1)")
        if "request" in req.form:
            return oauth_error("request_not_supported", "request objects are not supported here; push the parameters")
        w = work.Work(clients=await self._clients_named(req, fresh=peer is not None), peer=peer)
        token = work.begin(w)
        try:
            client: Client = self.server.authenticate_client(req, TOKEN_AUTH, endpoint="pushed_authorization")
        except OAuth2Error as error:
            return oauth_error(error.error, error.description or "client authentication failed", error.status_code)
        finally:
            work.end(token)
        if req.form.get("client_id", client.client_id) != client.client_id:
            return oauth_error("invalid_request", "client_id is not the authenticated client (RFC 9126 section 2.1)")
        params = [(k, v) for k, values in pairs if k not in PAR_AUTH_PARAMS for v in values]
        if "client_id" not in req.form:
            params.insert(0, ("client_id", client.client_id))
        invalid = self._invalid_pushed(params, client)
        if invalid is not None:
            return invalid
        veto = await self._commit(w)  # the assertion's jti, once (RFC 7523 §3)
        if veto is not None:
            return veto
        request_uri = await self.pushed.push(client.client_id, params, par.PAR_TTL)
        return Reply(201, {"request_uri": request_uri, "expires_in": par.PAR_TTL}, [("Cache-Control", "no-store")])

    def _invalid_pushed(self, params: list[tuple[str, str]], client: Client) -> Reply | None:
        """RFC 9126 §2.1: the pushed request validated as an authorization request (authlib's checks, without the
        citizen: ``prompt`` is the authorization endpoint's to answer), or the JSON error (§2.3)."""
        checked = [(k, v) for k, v in params if k != "prompt"]
        vreq = OidcRequest("GET", f"{self.issuer}/authorize?{urlencode(checked)}", checked, [], {})
        asked = self._asked(vreq)
        token = work.begin(work.Work(clients={client.client_id: client}, asked=asked, resources=asked))
        try:
            self.server.get_consent_grant(vreq, end_user=None)
        except OAuth2Error as error:
            return oauth_error(error.error, error.description or "the authorization request is invalid")
        finally:
            work.end(token)
        target_error = self._target_error(asked, client)
        if target_error:
            return oauth_error("invalid_target", target_error)
        data = vreq.payload.data
        try:
            assurance.required_level(data.get("acr_values"), data.get("claims"), client.min_acr)
        except assurance.AcrRequestError as error:
            return oauth_error("invalid_request", str(error))
        return None

    async def _pushed_request(self, req: OAuth2Request) -> OAuth2Request | Outcome:
        """RFC 9126 §4: the authorization request a ``request_uri`` names, once, for the client that pushed it
        (its ``client_id`` must be in the request); unknown, used, another client's or expired:
        ``invalid_request_uri`` (RFC 9101 §6.2), on the error page (no redirect URI is known to be the client's)."""
        data = req.payload.data
        client = await self.client(data.get("client_id"))
        if client is None or client.disabled:
            return Outcome(error="invalid_client: unknown or disabled client")
        params = await self.pushed.claim(data["request_uri"], client.client_id)
        if params is None:
            return Outcome(error="invalid_request_uri: the request_uri is unknown, expired, used already or another "
                                 "client's (RFC 9126 section 4)")  # fmt: skip
        return OidcRequest("GET", f"{self.issuer}/authorize?{urlencode(params)}", params, [], {})

    # -- authorization endpoint -------------------------------------------------------------

    async def authorize(self, req: OAuth2Request, user: User | None, fresh_login: bool = False,
                        pushed: bool = False) -> Outcome:  # fmt: skip
        """Validate an authorization request (RFC 6749 §4.1.1, Core §3.1.2.1) and decide the next step. With a
        ``request_uri`` the request is the one pushed (RFC 9126 §4); ``pushed``: the parameters are a pushed
        request's already (the sealed flow says so as the sign-in resumes)."""
        if not pushed and "request_uri" in req.payload.data:
            resolved = await self._pushed_request(req)
            if isinstance(resolved, Outcome):
                return resolved
            req, pushed = resolved, True
        outcome = await self._authorize(req, user, fresh_login, pushed)
        if pushed:
            outcome.query, outcome.pushed = urlencode(list(req.payload.datalist.items()), doseq=True), True
        return outcome

    def _profile_outcome(self, req: OAuth2Request, w: work.Work, pushed: bool) -> Outcome | None:
        """FAPI 2.0 at the authorization endpoint: a client whose registration breaks the profile is refused
        (``invalid_client``), and an unpushed request of a client that must push is ``invalid_request`` (RFC 9126
        §5 ``require_pushed_authorization_requests``; FAPI 2.0 §5.3.2.2), redirected when the redirect URI is the
        client's (RFC 6749 §4.1.2.1)."""
        client = w.clients.get(req.payload.data.get("client_id") or "")
        if client is None or not fapi.on_profile(client):
            return None
        why = fapi.refusal(client)
        if why is not None:
            return Outcome(error=f"invalid_client: {why}")
        if pushed or not fapi.requires_par(client):
            return None
        description = "this client must push its authorization requests (RFC 9126 section 5)"
        if req.payload.redirect_uri and client.check_redirect_uri(req.payload.redirect_uri):
            return Outcome(reply=self._error_redirect(req, None, "invalid_request", description))
        return Outcome(error=f"invalid_request: {description}")

    async def _authorize(self, req: OAuth2Request, user: User | None, fresh_login: bool, pushed: bool) -> Outcome:
        if any(len(v) > MAX_PARAM for v in req.payload.data.values() if isinstance(v, str)):
            return Outcome(error="a request parameter is too long")
        asked = self._asked(req)
        w = work.Work(clients=await self._clients_named(req), asked=asked, resources=asked)
        profile = self._profile_outcome(req, w, pushed)
        if profile is not None:
            return profile
        token = work.begin(w)
        try:
            grant = self.server.get_consent_grant(req, end_user=user)
        except OAuth2Error as error:
            if error.redirect_uri:  # the client and redirect_uri were validated: safe to redirect
                return Outcome(reply=self._with_iss(self.server.handle_error_response(req, error)))
            return Outcome(error=_page_error(error))
        finally:
            work.end(token)
        client: Client = req.client
        target_error = self._target_error(asked, client)  # client and redirect_uri are valid: redirect (§2)
        if target_error:
            return Outcome(reply=self._error_redirect(req, grant, "invalid_target", target_error))
        prompts = set(req.payload.data.get("prompt", "").split())
        try:
            required = assurance.required_level(req.payload.data.get("acr_values"), req.payload.data.get("claims"),
                                                client.min_acr)  # fmt: skip
        except assurance.AcrRequestError as error:
            return Outcome(reply=self._error_redirect(req, grant, "invalid_request", str(error)))
        below = user is not None and assurance.level(user.acr) < required
        if user is None or (("login" in prompts or self._too_old(req, user) or below) and not fresh_login):
            if "none" in prompts:  # no page may be shown (Core §3.1.2.1)
                if below:
                    return Outcome(reply=self._error_redirect(req, grant, "access_denied", _too_low(required)))
                return Outcome(reply=self._error_redirect(req, grant, "login_required"))
            return Outcome(login=True, client=client)  # below: the level may have been raised since
        if below:
            assert user is not None
            back = self._error_redirect(req, grant, "access_denied", _too_low(required)).location
            return Outcome(refused=Refusal(required, user.acr, str(back)), client=client)
        wanted = set(req.scope.split())  # authlib's: what the client may have of what it asked (§3.3)
        consented = await self.consents.granted(user.sub, client.client_id)
        if not consented.covers(wanted - {"openid"}, set(asked)) or "consent" in prompts:
            if "none" in prompts:
                return Outcome(reply=self._error_redirect(req, grant, "consent_required"))
            return Outcome(consent=sorted(wanted), resources=asked, client=client)
        return Outcome(reply=self._issue(w, req, grant, user))

    async def decide(self, req: OAuth2Request, user: User, allow: bool, pushed: bool = False) -> Reply:
        """The citizen's answer on the consent page; ``pushed`` as for ``authorize``."""
        asked = self._asked(req)
        w = work.Work(clients=await self._clients_named(req), asked=asked, resources=asked)
        profile = self._profile_outcome(req, w, pushed)
        if profile is not None:
            return profile.reply or oauth_error("invalid_request", profile.error or "")
        token = work.begin(w)
        try:
            grant = self.server.get_consent_grant(req, end_user=user)
        except OAuth2Error as error:
            return oauth_error(error.error, error.description or "")
        finally:
            work.end(token)
        target_error = self._target_error(asked, req.client)
        if target_error:
            return self._error_redirect(req, grant, "invalid_target", target_error)
        try:
            required = assurance.required_level(req.payload.data.get("acr_values"), req.payload.data.get("claims"),
                                                req.client.min_acr)  # fmt: skip
        except assurance.AcrRequestError as error:
            return self._error_redirect(req, grant, "invalid_request", str(error))
        if assurance.level(user.acr) < required:  # never a token below the level asked for
            return self._error_redirect(req, grant, "access_denied", _too_low(required))
        if allow:
            await self.consents.grant(user.sub, req.client.client_id, set(req.scope.split()), set(asked))
        return self._issue(w, req, grant, user if allow else None)

    def _issue(self, w: work.Work, req: OAuth2Request, grant: Any, user: User | None) -> Reply:
        return self._run(w, lambda: self.server.create_authorization_response(req, grant_user=user, grant=grant))

    def _with_iss(self, reply: Reply) -> Reply:
        """RFC 9207 §2: ``iss`` in error responses too (authlib adds it only to the ones it makes last)."""
        location = reply.location
        if location and "iss=" not in location.split("?", 1)[-1]:
            reply.location = f"{location}{'&' if '?' in location else '?'}{urlencode({'iss': self.issuer})}"
        return reply

    def _error_redirect(self, req: OAuth2Request, grant: Any, error: str, description: str | None = None) -> Reply:
        params = {"error": error, "iss": self.issuer}
        if description:
            params["error_description"] = description
        if req.payload.state:
            params["state"] = req.payload.state
        return Reply(302, None, [("Location", f"{req.payload.redirect_uri}?{urlencode(params)}")])

    @staticmethod
    def _too_old(req: OAuth2Request, user: User) -> bool:
        max_age = req.payload.data.get("max_age")
        if not max_age:
            return False
        try:
            return time.time() - user.auth_time > int(max_age)
        except ValueError:
            return True

    # -- sessions ---------------------------------------------------------------------------

    def new_session(self, id_number: str, auth_time: int, acr: str, amr: list[str]) -> tuple[str, User]:
        """An SSO session (its sealed cookie) for a citizen who just signed in, named by their ``sub``."""
        sid = secrets.token_urlsafe(12)
        user = User(self.subjects.subject(id_number), auth_time, acr, tuple(amr), sid, int(time.time()) + SESSION_TTL)
        claims = {"sub": user.sub, "auth_time": auth_time, "acr": acr, "amr": amr, "jti": sid}
        return self.session_codec.encode(claims, ttl=SESSION_TTL), user

    async def session_user(self, cookie: str | None) -> tuple[User, str] | None:
        claims = self.session_codec.decode(cookie)
        if claims is None or await self.sessions.ended(claims["jti"]):
            return None
        user = User(
            claims["sub"], claims["auth_time"], claims["acr"], tuple(claims["amr"]), claims["jti"], claims["exp"]
        )
        return user, claims["jti"]

    async def end_session(self, sid: str) -> None:
        await self.sessions.end(sid, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=SESSION_TTL))

    def logout_csrf(self, sid: str) -> str:
        """The CSRF token of the logout question, bound to the session it would end."""
        return self.flow_codec.encode({"logout": sid}, ttl=LOGOUT_CSRF_TTL)

    def logout_confirmed(self, sid: str, csrf: str | None) -> bool:
        """A POST /logout carries the token of a question this provider asked for this session."""
        claims = self.flow_codec.decode(csrf)
        return claims is not None and claims.get("logout") == sid

    async def hint_names(self, id_token_hint: str | None, sub: str) -> bool:
        """RP-Initiated Logout §2: the session ends without asking only when the hint is an ID token of its
        citizen (a portal holding another citizen's ID token may not sign this one out); ``sub`` is the session's
        internal subject, the hint's the one released to its audience (Core §8)."""
        claims = self._id_token_claims(id_token_hint) if id_token_hint else None
        if claims is None:
            return False
        audience = _as_list(claims.get("aud"))
        client = await self.client(audience[0]) if audience else None
        try:
            return client is not None and claims.get("sub") == self.server.release(sub, client).sub
        except OAuth2Error:  # no sector to be told: the citizen is asked
            return False

    async def logout_target(self, params: dict[str, str]) -> str | None:
        """Where RP-initiated logout 1.0 (§2, §3) returns the browser, ``"error:…"``, or None (our page)."""
        client_id = params.get("client_id")
        hint = params.get("id_token_hint")
        if hint:
            claims = self._id_token_claims(hint)
            if claims is None:
                return "error:id_token_hint is not an ID token issued here"
            audience = _as_list(claims.get("aud"))
            if client_id and client_id not in audience:
                return "error:client_id does not match the ID token's audience"
            client_id = client_id or (audience[0] if audience else None)
        uri = params.get("post_logout_redirect_uri")
        if not uri:
            return None
        client = await self.client(client_id)
        if client is None or uri not in client.post_logout_redirect_uris:
            return "error:post_logout_redirect_uri is not registered for this client"
        state = params.get("state")
        return f"{uri}{'&' if '?' in uri else '?'}{urlencode({'state': state})}" if state else uri

    def _id_token_claims(self, token: str) -> dict[str, Any] | None:
        """An ID token this provider signed, expired or not (a logout hint may be old)."""
        if len(token) > 8192 or token.count(".") != 2:
            return None
        try:
            decoded = jwt.decode(token, self.server.keyring.keyset(), algorithms=["RS256", "ES256"])
        except (JoseError, ValueError):
            return None
        claims = dict(decoded.claims)
        return claims if claims.get("iss") == self.issuer else None

    # -- tokens for resource servers ------------------------------------------------------------

    def verify_access(self, token: str) -> dict[str, Any] | None:
        """A JWT access token issued here and still valid (signature, typ, issuer, expiry)."""
        if not token or len(token) > 4096 or token.count(".") != 2:
            return None
        try:
            decoded = jwt.decode(token, self.server.keyring.keyset(), algorithms=["ES256", "RS256"])
        except (JoseError, ValueError):
            return None
        if decoded.header.get("typ") != "at+jwt":
            return None
        claims = dict(decoded.claims)
        if claims.get("iss") != self.issuer or int(claims.get("exp", 0)) <= time.time():
            return None
        return claims

    async def userinfo(
        self, token: str, scheme: str = "bearer", proofs: list[str] | None = None, method: str = "GET"
    ) -> Reply:
        """Core §5.3: claims for the token's scopes; RFC 6750 §3.1 errors; a DPoP-bound token with its proof
        (``scheme`` ``dpop``, ``proofs`` the DPoP header values, ``method`` the request's: RFC 9449 §7)."""
        claims = self.verify_access(token)
        if claims is None or self.issuer not in _as_list(claims.get("aud")):
            return _bearer_error("invalid_token", "the access token is invalid or expired")
        if await self.tokens.access_revoked(claims["jti"]):
            return _bearer_error("invalid_token", "the access token was revoked")
        refused = await self._dpop_presented(claims, token, scheme, proofs or [], method)
        if refused is not None:
            return refused
        if claims["sub"] == claims.get("client_id") or "openid" not in claims.get("scope", "").split():
            return _bearer_error("insufficient_scope", "userinfo needs a citizen's token with scope openid", 403)
        sector = claims.get(SECTOR_CLAIM)  # a pairwise sub opens with its sector only (Core §8.1)
        id_number = self.subjects.id_number(claims["sub"], sector if isinstance(sector, str) else None)
        record = await self._records.record(id_number) if id_number else None
        if record is None:
            return _bearer_error("invalid_token", "the citizen is no longer on record")
        body = claims_for(record, claims["sub"], claims["scope"])
        body = await self._requested(body, record, id_number, claims, claims.get(claims_request.ACCESS_TOKEN_CLAIM),
                                   "userinfo")  # fmt: skip
        return await self._userinfo_reply(body, claims.get("client_id"))

    async def _requested(self, released: dict[str, Any], record: CitizenRecord, id_number: str, token: dict[str, Any],
                         compact: Any, member: str) -> dict[str, Any]:  # fmt: skip
        """``released`` (the scopes' claims) as the claims parameter's ``member`` asks (claims_request.py: values,
        claims put in the ID token, ``verified_claims`` — verified_claims.py, with the identity service's facts as
        they are now)."""
        asked = claims_request.ClaimsRequest.from_compact({member: compact}).member(member) if compact else {}
        if not asked:
            return released
        scopes = set(str(token.get("scope", "")).split())
        available = claims_for(record, released.get("sub", ""), " ".join(SCOPE_CLAIMS))
        out = {**claims_request.refused_by_value(asked, released), **claims_request.select(asked, available, scopes)}
        if "verified_claims" in asked and self._verifications is not None:
            facts = await self._verifications.facts(id_number)
            found = verified_claims.build(asked["verified_claims"], facts, available, scopes, id_number, time.time())
            if found is not None:
                out["verified_claims"] = found
        return out

    async def _id_token_claims_of(self, code: str | None) -> tuple[str, dict[str, Any]] | None:
        """Before the token request runs (authlib's ID token hook is synchronous): the claims the code's
        ``claims`` parameter asks for in the ID token (Core §5.5), keyed by the code's ``jti`` — used only if that
        very code is redeemed (server.py ``OpenIDCodeFlow.generate_user_info``)."""
        sealed = self._codes.decode(code) if code and len(code) <= MAX_PARAM * 2 else None
        compact = (sealed or {}).get("claims") or {}
        if not isinstance(compact, dict) or not compact.get("id_token"):
            return None
        assert sealed is not None
        id_number = self.subjects.id_number(sealed["sub"])
        record = await self._records.record(id_number) if id_number else None
        if record is None or id_number is None:
            return None
        token = {"scope": sealed.get("scope", "")}
        found = await self._requested({}, record, id_number, token, compact["id_token"], "id_token")
        return str(sealed["jti"]), found

    async def _userinfo_reply(self, body: dict[str, Any], client_id: Any) -> Reply:
        """Core §5.3.2: JSON, or for a client registered for it a signed and/or encrypted JWT (userinfo_jwt.py)."""
        client = await self.client(client_id) if isinstance(client_id, str) else None
        if client is None or not userinfo_jwt.wants_jwt(client):
            return Reply(200, body, [("Cache-Control", "no-store")])
        published = None
        if client.userinfo_encrypted_response_alg and client.jwks_uri:
            published = await self.client_keys.keys(client.jwks_uri, None)
        try:
            jwt_body = userinfo_jwt.encode(body, client, self.issuer, self.server.keyring, published)
        except userinfo_jwt.UserinfoKeyError as error:
            log.warning("userinfo.no_encryption_key", client_id=client.client_id)
            return oauth_error("invalid_client", str(error))
        return Reply(200, jwt_body, [("Cache-Control", "no-store"), ("Content-Type", userinfo_jwt.JWT_MEDIA_TYPE)])

    async def token_endpoint_request(self, req: OAuth2Request, endpoint: str, peer: PeerCertificate | None = None
                                     ) -> Reply:  # fmt: skip
        """Revocation (RFC 7009) and introspection (RFC 7662); ``peer`` as for ``token``."""
        w = work.Work(clients=await self._clients_named(req, fresh=peer is not None), peer=peer)
        raw = req.form.get("token", "")
        if 0 < len(raw) <= 4096:
            claims = self.verify_access(raw)
            if claims is not None:
                w.token = AccessToken(claims, await self.tokens.access_revoked(claims["jti"]))
            else:
                record = await self._refresh_record(raw)
                w.token = RefreshToken(record) if record else None
        reply = self._run(w, lambda: self.server.create_endpoint_response(endpoint, req))
        return await self._commit(w) or reply


def _too_low(required: int) -> str:
    return f"this request requires assurance level {required} (acr); the citizen's account is below it"


def _page_error(error: OAuth2Error) -> str:
    """What the error page says when no redirect is safe; request values are never reflected."""
    if error.error == "invalid_client":
        return "invalid_client: unknown or disabled client"
    if "redirect" in (error.description or "").lower():
        return "invalid_request: redirect_uri is missing or not registered for this client"
    return f"{error.error}: the authorization request is invalid"


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _header_values(headers: Any, name: str) -> list[str]:
    """Every value of header ``name`` (Starlette's ``Headers`` keep repeats; a plain mapping has one at most)."""
    getlist = getattr(headers, "getlist", None)
    if getlist is not None:
        return [str(v) for v in getlist(name.lower())]
    value = (headers.get(name) or headers.get(name.lower())) if headers else None
    return [str(value)] if value else []


def _bearer_error(error: str, description: str, status: int = 401) -> Reply:
    challenge = f'Bearer error="{error}", error_description="{description}"'
    return Reply(status, {"error": error, "error_description": description}, [("WWW-Authenticate", challenge)])


__all__ = ["RESOURCES", "InvalidGrantError", "Outcome", "Provider", "Reply", "User"]
