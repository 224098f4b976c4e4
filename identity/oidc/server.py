"""authlib's authorization server, configured for this platform (RFC 6749, 7636, 7009, 7662, 9207;
OpenID Connect Core 1.0). Storage hooks read and write only the per-request ``Work`` (see work.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Request, TokenMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from identity.oidc import authorization_details, claims_request, fapi, mtls, work
from identity.oidc.clients import FAPI2, KEY_AUTH, RESOURCES, SECRET_AUTH, TLS_AUTH, Client
from identity.oidc.keys import KeyRing
from identity.oidc.reply import Reply
from identity.oidc.sealed import SealedCodec
from identity.oidc.store import RefreshRecord
from identity.oidc.subjects import PREVIOUS_SUB_CLAIM, SECTOR_CLAIM, Released, SectorError, Subjects

ACCESS_TTL = 600
ID_TOKEN_TTL = 600
CODE_TTL = 60
REFRESH_TTL = 30 * 24 * 3600
ACCESS_ALG = "ES256"
CLIENT_AUTH = [SECRET_AUTH, KEY_AUTH]
TOKEN_AUTH = [*CLIENT_AUTH, TLS_AUTH]  # where agencies come too: tls_client_auth on the mTLS port (RFC 8705 §2.1)
CONSENT_TTL = 300  # a consent token's life at most (never past its artefact's expiry nor its certificate's)
VAULT = "urn:dinhdanh:service:vault"
MAX_ASSERTION_LIFETIME = 300  # seconds a private_key_jwt assertion may be valid for (exp − iat, exp − now)
ASSERTION_LEEWAY = 30  # clock skew allowed on an assertion's exp, nbf and iat


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707 §2: a resource the client may not have, or one beyond its grant."""

    error = "invalid_target"


def narrowed(asked: list[str], granted: list[str]) -> list[str]:
    """The resources of an access token (RFC 8707 §2.2): those asked for, each of which the grant must hold;
    the whole grant when none is asked for. A token request may narrow its audiences, never widen them."""
    beyond = [r for r in asked if r not in granted]
    if beyond:
        raise InvalidTargetError(description="a resource asked for is not part of this grant")
    return list(dict.fromkeys(asked)) if asked else list(granted)


def refresh_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class User:
    """The signed-in citizen, as the grants see them."""

    sub: str
    auth_time: int
    acr: str
    amr: tuple[str, ...]
    sid: str | None = None  # the SSO session the sign-in belongs to (None for a refresh outliving it)
    session_end: int | None = None  # when that session ends by itself (seconds since the epoch)

    def get_user_id(self) -> str:
        return self.sub


class AuthorizationCode(AuthorizationCodeMixin):  # type: ignore[misc]
    """A sealed code opened: everything the token request needs, with no database read."""

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims
        self.code_challenge = claims["code_challenge"]
        self.code_challenge_method = claims["code_challenge_method"]

    def get_redirect_uri(self) -> str:
        return str(self.claims["redirect_uri"])

    def get_scope(self) -> str:
        return str(self.claims["scope"])

    def get_nonce(self) -> str | None:
        return self.claims.get("nonce")

    def get_auth_time(self) -> int:
        return int(self.claims["auth_time"])

    def get_acr(self) -> str:
        return str(self.claims["acr"])

    def get_amr(self) -> list[str]:
        return list(self.claims["amr"])


class RefreshToken(TokenMixin):  # type: ignore[misc]
    def __init__(self, record: RefreshRecord) -> None:
        self.record = record

    def check_client(self, client: Client) -> bool:
        return self.record.client_id == client.client_id

    def get_scope(self) -> str:
        return self.record.scope

    def get_expires_in(self) -> int:
        return int((self.record.expires_at - dt.datetime.now(dt.UTC)).total_seconds())

    def is_expired(self) -> bool:
        return self.record.expires_at <= dt.datetime.now(dt.UTC)

    def is_revoked(self) -> bool:
        return self.record.revoked or self.record.used


class AccessToken(TokenMixin):  # type: ignore[misc]
    """A verified JWT access token, for revocation and introspection."""

    def __init__(self, claims: dict[str, Any], revoked: bool) -> None:
        self.claims = claims
        self.revoked = revoked

    def check_client(self, client: Client) -> bool:
        return self.claims.get("client_id") == client.client_id

    def get_scope(self) -> str:
        return str(self.claims.get("scope", ""))

    def get_expires_in(self) -> int:
        return int(self.claims["exp"]) - int(time.time())

    def is_expired(self) -> bool:
        return int(self.claims["exp"]) <= time.time()

    def is_revoked(self) -> bool:
        return self.revoked


class Server(AuthorizationServer):  # type: ignore[misc]
    subjects: Subjects  # set by the provider: what each client is given as ``sub`` (OIDC Core §8)

    def __init__(self, issuer: str, keyring: KeyRing, codes: SealedCodec, scopes: list[str]) -> None:
        super().__init__(scopes_supported=scopes)
        self.issuer = issuer
        self.keyring = keyring
        self.codes = codes
        self.register_token_generator("default", self._generate_token)

    # -- framework integration: our requests are already OAuth2Request -----------------------

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Reply:
        return Reply(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    # -- storage hooks -------------------------------------------------------------------------

    def query_client(self, client_id: str) -> Client | None:
        """The client named, loaded for this request; one on the FAPI 2.0 profile whose registration breaks it
        (a client secret, an RS256 ``id_token_alg``: fapi.py) is ``invalid_client`` wherever it is named."""
        client = work.current().clients.get(client_id)
        if client is not None and not client.disabled and (why := fapi.refusal(client)) is not None:
            raise InvalidClientError(description=why, status_code=401)
        return None if client is None or client.disabled else client

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        refresh = token.get("refresh_token")
        if not refresh:
            return
        w = work.current()
        user: User = request.user
        expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=REFRESH_TTL)
        bound = user.sid is not None and "offline_access" not in token["scope"].split()
        if bound and user.session_end is not None:  # Core §11: without offline_access, no longer than the session
            expires_at = min(expires_at, dt.datetime.fromtimestamp(user.session_end, dt.UTC))
        w.new_refresh = RefreshRecord(
            token_hash=refresh_hash(refresh),
            family=w.refresh.family if w.refresh else uuid.uuid4(),
            client_id=request.client.client_id,
            subject=user.sub,
            scope=token["scope"],
            auth_time=user.auth_time,
            acr=user.acr,
            amr=user.amr,
            expires_at=expires_at,
            used=False,
            revoked=False,
            sid=user.sid if bound else None,
            resources=tuple(w.granted),
            userinfo_claims=_userinfo_claims(request.form.get("grant_type"), w),
        )
        if w.refresh is not None:
            w.rotated_from = w.refresh.token_hash

    # -- tokens ----------------------------------------------------------------------------------

    def release(self, internal: str, client: Client) -> Released:
        """The ``sub`` this client is given (OIDC Core §8: pairwise per sector, or public) for an internal
        subject; with ``previous`` (the public one) while a switched portal's transition window lasts. A pairwise
        client with no sector to be told (registered around ``registration.portal``) is ``invalid_client``."""
        try:
            released = self.subjects.released(internal, client)
        except SectorError as error:
            raise InvalidClientError(description=str(error)) from None
        if released.sector is not None and client.public_sub_until and client.public_sub_until > time.time():
            return Released(released.sub, released.sector, internal)
        return released

    def _generate_token(
        self,
        grant_type: str,
        client: Client,
        user: User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """RFC 9068 JWT access tokens (ES256); opaque refresh tokens when the client may have one."""
        now = int(time.time())
        w = work.current()
        scope = client.get_allowed_scope(scope or "")  # never a scope the client is not registered for
        released = self.release(user.sub, client) if user else None
        w.subject = released
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": released.sub if released else client.client_id,
            "aud": [self.issuer, *w.resources],  # the issuer: userinfo
            "client_id": client.client_id,
            "scope": scope,
            "iat": now,
            "exp": now + ACCESS_TTL,
            "jti": secrets.token_urlsafe(16),
        }
        if user:
            claims.update(auth_time=user.auth_time, acr=user.acr)
        asked = _userinfo_claims(grant_type, w)
        if asked:  # Core §5.5: what userinfo is asked for travels with the token (claims_request.py)
            claims[claims_request.ACCESS_TOKEN_CLAIM] = asked
        if released is not None and released.sector is not None:  # what services open a pairwise sub with
            claims[SECTOR_CLAIM] = released.sector
        if grant_type == "client_credentials" and w.peer is not None:  # RFC 8705 §3: bound to the certificate
            claims["cnf"] = {"x5t#S256": w.peer.x5t_s256}
            claims["exp"] = min(claims["exp"], int(w.peer.not_after.timestamp()))
        sender_constraint(client, grant_type, w)
        if w.dpop_jkt is not None:  # RFC 9449 §6.1: bound to the proof's key
            claims["cnf"] = {**claims.get("cnf", {}), "jkt": w.dpop_jkt}
        if w.granted_detail is not None:  # RFC 9396 §9.1: a consent token, for the vault only, no scope
            assert w.consent_expiry is not None
            claims.update(aud=[VAULT], authorization_details=[w.granted_detail])
            del claims["scope"]
            claims["exp"] = min(claims["exp"], now + CONSENT_TTL, int(w.consent_expiry.timestamp()))
        kid, key = self.keyring.signing_key(ACCESS_ALG)
        access = jwt.encode({"alg": ACCESS_ALG, "kid": kid, "typ": "at+jwt"}, claims, key)
        w.issued_access.append((claims["jti"], dt.datetime.fromtimestamp(claims["exp"], dt.UTC)))
        kind = "DPoP" if w.dpop_jkt is not None else "Bearer"  # RFC 9449 §5: token_type DPoP
        token: dict[str, Any] = {"token_type": kind, "access_token": access, "expires_in": claims["exp"] - now}
        if w.granted_detail is not None:
            token["authorization_details"] = [w.granted_detail]  # RFC 9396 §7
        else:
            token["scope"] = scope
        wants = "offline_access" in scope.split() or client.refresh_policy
        if include_refresh_token and user and wants and client.check_grant_type("refresh_token"):
            token["refresh_token"] = secrets.token_urlsafe(32)
        return token


class InvalidDpopProofError(OAuth2Error):  # type: ignore[misc]
    """RFC 9449 §5: the token request's DPoP proof is missing or unacceptable."""

    error = "invalid_dpop_proof"


def sender_constraint(client: Client, grant_type: str, w: work.Work) -> None:
    """Refuse an access token that would not be sender-constrained for a client that must have one: a client
    registered with ``dpop_bound_access_tokens`` (RFC 9449 §5.2: "MUST reject token requests from this client that
    do not contain the DPoP header", ``invalid_dpop_proof``), and a client on the FAPI 2.0 profile (Security Profile
    §5.3.2.1 item 6: "shall only issue sender-constrained access tokens") without a DPoP proof nor a token bound to
    its certificate (RFC 8705 §3, here: ``client_credentials`` over the mTLS port), ``invalid_request``."""
    if w.dpop_jkt is not None:
        return
    if client.dpop_bound_access_tokens:
        raise InvalidDpopProofError(description="this client's access tokens are DPoP-bound: send a DPoP proof")
    if client.profile == FAPI2 and not (grant_type == "client_credentials" and w.peer is not None):
        raise InvalidRequestError(
            description="a FAPI 2.0 client's access tokens are sender-constrained: send a DPoP proof (RFC 9449)"
            " or, for client_credentials, use the mutual-TLS token endpoint (RFC 8705)"
        )


def _userinfo_claims(grant_type: str | None, w: work.Work) -> dict[str, Any] | None:
    """The grant's claims parameter for userinfo (Core §5.5): the code's, then its refresh tokens'."""
    if grant_type == "authorization_code":
        return ((w.code_claims or {}).get("claims") or {}).get("userinfo") or None
    if grant_type == "refresh_token" and w.refresh is not None:
        return w.refresh.userinfo_claims
    return None


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH

    def generate_authorization_code(self) -> str:
        """The code is the sealed grant itself (see sealed.py): no write at the authorization endpoint."""
        request = self.request
        user: User = request.user
        data = request.payload.data
        return self.server.codes.encode(
            {
                "client_id": request.client.client_id,
                "redirect_uri": request.payload.redirect_uri,
                "scope": request.scope,  # authlib's: what the client may have of what it asked
                "nonce": data.get("nonce"),
                "code_challenge": data.get("code_challenge"),
                "code_challenge_method": data.get("code_challenge_method", "plain"),
                "sub": user.sub,
                "auth_time": user.auth_time,
                "acr": user.acr,
                "amr": list(user.amr),
                "sid": user.sid,
                "sid_end": user.session_end,
                "resource": list(work.current().resources),
                "iat": int(time.time()),  # its age, for FAPI 2.0 §5.3.2.2 (fapi.code_too_old)
                # Core §5.5, normalised (validated at the authorization endpoint: assurance.required_level)
                **({"claims": asked} if (asked := claims_request.parse(data.get("claims")).compact()) else {}),
            },
            ttl=CODE_TTL,
        )

    def validate_token_request(self) -> None:
        """RFC 6749 §4.1.3, then RFC 8707 §2.2: ``resource`` may narrow the code's resources."""
        super().validate_token_request()
        w = work.current()
        assert w.code_claims is not None
        w.granted = [r for r in w.code_claims.get("resource") or () if r in RESOURCES]
        w.resources = narrowed(w.asked, w.granted)

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        return None

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        claims = self.server.codes.decode(code)
        if claims is None or claims.get("client_id") != client.client_id:
            return None
        if fapi.code_too_old(client, claims, time.time()):  # FAPI 2.0 §5.3.2.2: 60 s at most
            return None
        work.current().code_claims = claims
        return AuthorizationCode(claims)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        w = work.current()
        w.code_id = authorization_code.claims["jti"]
        w.used_code = (w.code_id, dt.datetime.fromtimestamp(authorization_code.claims["exp"], dt.UTC))

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User:
        c = authorization_code.claims
        return User(c["sub"], c["auth_time"], c["acr"], tuple(c["amr"]), c.get("sid"), c.get("sid_end"))


class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    """Refresh with rotation (OAuth 2.0 Security BCP, RFC 9700 §4.14.2): every use returns a new
    refresh token; presenting a used one revokes its whole family."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        w = work.current()
        record = w.refresh
        if record is None or record.token_hash != refresh_hash(refresh_token) or record.revoked:
            return None
        if record.used:
            w.revoke_family = record  # reuse: someone holds a stolen copy
            return None
        token = RefreshToken(record)
        return None if token.is_expired() else token

    def authenticate_user(self, refresh_token: RefreshToken) -> User:
        r = refresh_token.record
        session_end = int(r.expires_at.timestamp()) if r.sid else None  # a bound token ends with its session
        return User(r.subject, r.auth_time, r.acr, r.amr, r.sid, session_end)

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        return None  # done atomically with the new token's insert (TokenStore.rotate)

    def validate_token_request(self) -> None:
        """RFC 6749 §6, then RFC 8707 §2.2: a refresh may narrow its grant's resources, never add one; the new
        refresh token keeps the whole grant."""
        super().validate_token_request()
        w = work.current()
        w.granted = list(self.request.refresh_token.record.resources)
        w.resources = narrowed(w.asked, w.granted)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH

    def validate_token_request(self) -> None:
        """RFC 6749 §4.4.2, then RFC 8705 §2.1.2: over mutual TLS an agency's token is bound to its registered
        certificate only (``invalid_client`` for any other, a reissued one's predecessor included, whatever the
        client authenticated with); RFC 8707 §2: only resources the client is registered for; with a consent
        detail (RFC 9396 §6), the consent checks."""
        super().validate_token_request()
        w = work.current()
        client: Client = self.request.client
        if w.peer is not None and client.kind == "agency" and not w.peer.is_registered(client):
            raise InvalidClientError(description=mtls.NOT_REGISTERED)
        if any(r not in client.resources for r in w.asked):
            raise InvalidTargetError(description="the client is not registered for a resource asked for")
        w.resources = list(dict.fromkeys(w.asked))
        if w.consent_detail is not None:
            self._validate_consent(w, client)

    @staticmethod
    def _validate_consent(w: work.Work, client: Client) -> None:
        """A consent token (issue 10 item 2): an agency, over mTLS with its registered certificate (RFC 8705 §2.1.2),
        for the vault only, and an artefact the consent gate lets it have now (RFC 9396 §5 otherwise)."""
        assert w.consent_detail is not None
        assert w.peer is not None  # the provider checked the port
        if client.kind != "agency":
            raise authorization_details.InvalidAuthorizationDetails(description="consent tokens are for agencies")
        if not w.peer.is_registered(client):  # checked above already: never a consent token without it
            raise InvalidClientError(description=mtls.NOT_REGISTERED)
        if any(r != VAULT for r in w.asked):
            raise InvalidTargetError(description=f"a consent token is for {VAULT} only")
        why = authorization_details.refusal(w.consent_detail, w.consent, client.client_id, dt.datetime.now(dt.UTC))
        if why is not None:
            raise authorization_details.InvalidAuthorizationDetails(description=why)
        assert w.consent is not None
        w.granted_detail = w.consent_detail.granted(w.consent.artefact.purpose)
        w.consent_expiry = w.consent.artefact.expiry


class RequiredS256(CodeChallenge):  # type: ignore[misc]
    """PKCE (RFC 7636) for every client, confidential ones too, and only S256 (RFC 9700 §2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class OpenIDCodeFlow(OpenIDCode):  # type: ignore[misc]
    """ID tokens (OpenID Connect Core §2, §3.1.3.6): RS256 unless the client registered ES256."""

    def __init__(self, server: Server) -> None:
        super().__init__(require_nonce=False)
        self.server = server

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return False  # a code is redeemed once, so its nonce is too

    def get_client_algorithm(self, client: Client) -> str:
        return client.id_token_alg

    def resolve_client_private_key(self, client: Client) -> Any:
        return self.server.keyring.signing_key(client.id_token_alg)[1]

    def get_encode_header(self, client: Client) -> dict[str, str]:
        kid, _ = self.server.keyring.signing_key(client.id_token_alg)
        return {"alg": client.id_token_alg, "kid": kid, "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.server.issuer, "aud": [client.client_id], "iat": now, "exp": now + ID_TOKEN_TTL}

    def generate_user_info(self, user: User, scope: str) -> UserInfo:
        """The ``sub`` released to the client (Core §8, as in its access token); claims come from the userinfo
        endpoint (Core §5.3)."""
        released = work.current().subject
        assert released is not None  # _generate_token ran first, for this client and user
        info = UserInfo(sub=released.sub)
        w = work.current()  # the claims this code's claims parameter asks for in the ID token (Core §5.5), loaded
        if w.id_token_claims is not None and w.code_claims is not None and w.id_token_claims[0] == w.code_claims["jti"]:
            info.update({k: v for k, v in w.id_token_claims[1].items() if k != "sub"})
        if released.previous is not None:  # a switched portal's transition window (docs/privacy.md)
            info[PREVIOUS_SUB_CLAIM] = released.previous
        return info


class Issuer(IssuerParameter):  # type: ignore[misc]
    """RFC 9207: ``iss`` in every authorization response, errors included."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    """``private_key_jwt`` client authentication (OpenID Connect Core §9, RFC 7523 §2.2)."""

    CLIENT_AUTH_METHOD = KEY_AUTH

    def __init__(self, issuer: str) -> None:
        super().__init__(validate_jti=True, leeway=ASSERTION_LEEWAY)
        self._issuer = issuer

    def get_audiences(self) -> list[str]:
        """The issuer, or the URL of the endpoint (token, pushed authorization: RFC 7523 §3, Core §9, RFC 9126
        §2); the issuer only for a client on the FAPI 2.0 profile (§5.3.2.1, fapi.py)."""
        return fapi.assertion_audiences(_assertion_client.get(), self._issuer)

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        """The assertion's signature, with the algorithms the client may use only (fapi.py: PS256, ES256 or EdDSA
        on the FAPI 2.0 profile, §5.4.1; never ``none`` nor an HMAC), then its claims."""
        client = _assertion_client.get()
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=fapi.assertion_algs(client))
        except (JoseError, ValueError) as error:
            raise InvalidClientError(description="the client assertion's signature or algorithm is not accepted"
                                     f" ({'/'.join(fapi.assertion_algs(client))})") from error  # fmt: skip
        if not fapi.audience_ok(client, self._issuer, token.claims.get("aud")):
            raise InvalidClientError(description="the client assertion's aud must be the issuer identifier alone"
                                     " (FAPI 2.0 Security Profile section 5.3.2.1)")  # fmt: skip
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: Any) -> None:
        """RFC 7523 §3, and a bounded lifetime: ``exp`` is required, at most ``MAX_ASSERTION_LIFETIME`` ahead
        (plus the leeway), and at most that long after ``iat`` when there is one (RFC 7523 §3 item 4 lets the
        server "reject JWTs with an "exp" claim value that is unreasonably far in the future")."""
        exp, iat = claims.get("exp"), claims.get("iat")
        if not _numeric(exp):
            raise InvalidClientError(description="the client assertion needs an exp (RFC 7523 section 3)")
        if exp - time.time() > MAX_ASSERTION_LIFETIME + ASSERTION_LEEWAY:
            raise InvalidClientError(description=f"the client assertion may live {MAX_ASSERTION_LIFETIME} s at most")
        if iat is not None and (not _numeric(iat) or exp - iat > MAX_ASSERTION_LIFETIME):
            raise InvalidClientError(description=f"the client assertion may live {MAX_ASSERTION_LIFETIME} s at most")
        super().verify_claims(claims)

    def validate_jti(self, claims: Any, jti: str) -> bool:
        """Single use (RFC 7523 §3 item 7): the provider records (client, jti) in PostgreSQL, insert-or-fail,
        before the response is released (``Work.assertion``), so a replay fails on every edge process until
        the assertion's acceptance window (exp + leeway) is over."""
        if not isinstance(jti, str) or not 0 < len(jti) <= 200:
            return False
        until = dt.datetime.fromtimestamp(float(claims["exp"]) + ASSERTION_LEEWAY, dt.UTC)
        work.current().assertion = (str(claims["sub"]), jti, until)
        return True

    def resolve_client_public_key(self, client: Client) -> KeySet:
        """The client's registered JWKS, or the one its ``jwks_uri`` published (fetched by the provider before the
        request runs: client_keys.py)."""
        _assertion_client.set(client)
        return KeySet.import_key_set(client.jwks or {"keys": []})


_assertion_client: ContextVar[Any] = ContextVar("assertion_client", default=None)  # set as its key is resolved


def _numeric(value: Any) -> bool:
    """A JWT NumericDate (RFC 7519 §2): a number, never a boolean."""
    return isinstance(value, int | float) and not isinstance(value, bool)


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = TOKEN_AUTH

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenMixin | None:
        return work.current().token

    def revoke_token(self, token: TokenMixin, request: OAuth2Request) -> None:
        w = work.current()
        if isinstance(token, RefreshToken):
            w.revoke_family = token.record
        elif isinstance(token, AccessToken):
            w.revoke_access = (token.claims["jti"], dt.datetime.fromtimestamp(token.claims["exp"], dt.UTC))


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = TOKEN_AUTH

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenMixin | None:
        return work.current().token

    def check_permission(self, token: TokenMixin, client: Client, request: OAuth2Request) -> bool:
        return bool(token.check_client(client))

    def introspect_token(self, token: TokenMixin) -> dict[str, Any]:
        if isinstance(token, AccessToken):
            keep = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "auth_time", "acr",
                    "cnf", "authorization_details")  # RFC 8705 §3.2, RFC 9396 §9.2  # fmt: skip
            cnf = token.claims.get("cnf")
            kind = "DPoP" if isinstance(cnf, dict) and "jkt" in cnf else "Bearer"  # RFC 9449 §6.2
            return {"active": True, "token_type": kind, **{k: token.claims[k] for k in keep if k in token.claims}}
        assert isinstance(token, RefreshToken)
        r = token.record
        client = work.current().clients.get(r.client_id)  # check_permission: the requesting client is its own
        assert client is not None
        return {
            "active": True,
            "token_type": "refresh_token",
            "scope": r.scope,
            "client_id": r.client_id,
            "sub": self.server.release(r.subject, client).sub,  # never the internal subject (Core §8)
            "exp": int(r.expires_at.timestamp()),
        }


def build(issuer: str, keyring: KeyRing, codes: SealedCodec, scopes: list[str]) -> Server:
    server = Server(issuer, keyring, codes, scopes)
    server.register_grant(CodeGrant, [RequiredS256(required=True), OpenIDCodeFlow(server)])
    server.register_grant(RefreshGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_client_auth_method(KEY_AUTH, PrivateKeyJWT(issuer))
    server.register_client_auth_method(TLS_AUTH, mtls.authenticate_tls_client)
    server.register_endpoint(Revocation(server))
    server.register_endpoint(Introspection(server))
    server.register_extension(Issuer(issuer))
    return server
