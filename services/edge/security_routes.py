"""The citizen's security page at the edge (issue 13 §5): ``GET /security``, signed in with the SSO session cookie.

- **Sign-in history** (time, portal, factor, source, outcome): the citizen's own entries of the transparency log
  (``Log.ListMyEntries``, the access log of the consent issue), each shown with its RFC 9162 §2.1.3.2 inclusion proof
  checked here against the signed checkpoint (C2SP signed-note, the log's published verifier key: ``audit.verify``)
  and offered for checking elsewhere (``dinhdanh audit verify``). The identity service writes the portal (the
  ``client_id`` the edge passes with each sign-in step), the factor and a per-citizen keyed reference of the source
  into each sign-in event (identity/service.py ``FACTORS``); the sequencer puts them into the leaves.

  How the edge reads them, least privilege: it is the OpenID Provider, so it mints, for the citizen signed in on
  this page and for this one request, an RFC 9068 access token of 60 s with audience the log, scope ``log.read``
  only, ``sub`` the session's own, ``client_id`` this page (``PAGE_CLIENT``); and calls ``ListMyEntries`` with it,
  the very path a citizen's own portal uses. The edge holds no log-wide read right (its certificate may read
  checkpoints and proofs by index, never entries by citizen), and the log decides whose entries from the token,
  not from anything the edge asserts.
- **Active sessions** (``oidc.sso_sessions``, migration 0025: recorded when the edge opens one) and **sign out
  everywhere** (CSRF-protected POST): every live session of the citizen ends (``oidc.ended_sessions``: the
  provider's ``session_user`` refuses them) and the refresh tokens bound to them (``RefreshRecord.sid``) are
  revoked, in one transaction (``SessionStore.end_all``).
- **Enrolled factors**: TOTP (re-enrolment, never removal: identity/security.py says why), passkeys (``Passkeys``
  RPCs of the identity service: list, remove; enrolment at ``PASSKEY_PAGE``). Every change needs a step-up first:
  a fresh TOTP code, checked by the identity service (AccountSecurity), never a session alone.
- **Lock of password sign-in**: the citizen locks it here; only they lift it (from a session still signed in, after
  a step-up) or an operator for a level-2 account (``dinhdanh accounts unlock-password``).

Every POST carries a CSRF token bound to the session (a sealed value naming its ``sid``, like the logout question);
answers are POST-redirect-GET with a fixed message key (nothing from the request is reflected).
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import grpc
from joserfc import jwt
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from audit import verify
from audit.s3_tiles import S3Tiles
from audit.sequencer import VKEY, TileStoreError
from core import deadline, logs
from core.settings import Settings
from identity.oidc.server import ACCESS_ALG, User
from identity.oidc.store import SessionRecord
from protos.audit.v1 import log_pb2 as lpb
from protos.audit.v1 import log_pb2_grpc as lgrpc
from protos.identity.v1 import security_pb2 as spb
from protos.identity.v1 import security_pb2_grpc as sgrpc
from services.edge import http
from services.edge.security_i18n import WORDS
from services.log_settings import LogSettings
from services.tls import secure_channel
from vault.objects import s3_client

if TYPE_CHECKING:
    from services.edge.app import Edge

log = logs.get("edge.security")

PAGE = "/security"
PASSKEY_PAGE = "/security/passkeys"  # helper H5's enrolment page (services/edge/passkey_routes.py)
PORTALS_PAGE = "/account/portals"  # consent withdrawal per portal (services/edge/portal_consent_routes.py)
LOG_AUDIENCE = "urn:dinhdanh:service:log"
PAGE_CLIENT = "urn:dinhdanh:edge:security-page"  # the client_id of the page's own log.read tokens
LOG_TOKEN_TTL = 60
CSRF_TTL = 900
RPC_TIMEOUT = 10.0
HISTORY_PAGE = 100
SIGN_IN_ACTIONS = ("identity.password", "identity.totp", "identity.totp.enroll", "identity.authenticate")
MESSAGES = ("locked", "unlocked", "totp_replaced", "passkey_removed")
ERRORS = ("wrong_code", "throttled", "not_locked", "unavailable", "no_totp", "expired", "replace_expired")


# -- the backends: channels made from the process's settings on first use -------------------------------------


class Backends:
    """The AccountSecurity and Passkeys stubs (identity), the Log stub and the log's verifier key."""

    def __init__(self) -> None:
        self._ready = False
        self.security: sgrpc.AccountSecurityStub | None = None
        self.passkeys: Any = None
        self.log: lgrpc.LogStub | None = None
        self._tiles: S3Tiles | None = None
        self._vkey: verify.Key | None = None
        self.origin = LogSettings().origin

    def open(self) -> None:
        if self._ready:
            return
        settings = Settings()
        tls = (settings.tls_ca, settings.tls_cert, settings.tls_key)
        if settings.identity_address:
            channel = secure_channel(settings.identity_address, *tls, server="identity")
            self.security = sgrpc.AccountSecurityStub(channel)
            try:  # helper H5's Passkeys service (protos/identity/v1/passkeys.proto), when it is built
                from protos.identity.v1 import passkeys_pb2_grpc

                self.passkeys = passkeys_pb2_grpc.PasskeysStub(channel)
            except ImportError:
                self.passkeys = None
        if settings.log_address:
            self.log = lgrpc.LogStub(secure_channel(settings.log_address, *tls, server="log"))
        if settings.s3_endpoint:
            client = s3_client(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                               settings.s3_secure)  # fmt: skip
            self._tiles = S3Tiles(client, LogSettings().bucket)
        self._ready = True

    async def vkey(self) -> verify.Key | None:
        """The log's verifier key, as this edge publishes it at /log/key (read once)."""
        if self._vkey is None and self._tiles is not None:
            try:
                raw = await self._tiles.get(VKEY)
            except TileStoreError:
                return None
            if raw:
                self._vkey = verify.Key.parse(raw.decode())
        return self._vkey


BACKENDS = Backends()


def _timeout() -> float:
    return deadline.remaining(RPC_TIMEOUT)


# -- the session ------------------------------------------------------------------------------------------------


def portal_of(flow: dict[str, Any]) -> str:
    """The client_id of the authorization request a sign-in flow is for ("" for this page's own sign-in)."""
    values = parse_qs(str(flow.get("q", ""))).get("client_id", [""])
    return values[0][:200]


def user_agent_summary(agent: str) -> str:
    """The browser and system families only ("Firefox / Linux"): a fingerprint needs no versions."""
    browsers = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
                ("Safari/", "Safari"), ("curl/", "curl"), ("python-httpx", "httpx"))  # fmt: skip
    systems = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"), ("Windows", "Windows"),
               ("Mac OS X", "macOS"), ("Linux", "Linux"))  # fmt: skip
    browser = next((name for mark, name in browsers if mark in agent), "")
    system = next((name for mark, name in systems if mark in agent), "")
    return " / ".join(p for p in (browser, system) if p) or "?"


async def session_opened(edge: Edge, request: Request, flow: dict[str, Any], user: User) -> None:
    """Record the SSO session just opened (``_signed_in``): the page's list and "sign out everywhere"."""
    now = dt.datetime.now(dt.UTC)
    source = str(flow.get("source", ""))
    record = SessionRecord(
        sid=str(user.sid), started_at=now, ends_at=dt.datetime.fromtimestamp(int(user.session_end or 0), dt.UTC),
        first_portal=portal_of(flow), last_portal=portal_of(flow),
        source_kind="device" if source.startswith("device:") else "address",
        user_agent=user_agent_summary(request.headers.get("user-agent", "")), amr=tuple(user.amr), ended_at=None,
    )  # fmt: skip
    await edge.provider.sessions.started(record, user.sub)


def after_sign_in(flow: dict[str, Any], cookie: str) -> Response | None:
    """This page's own sign-in (no portal): back to the page with the new session; None for a portal's."""
    if flow.get("next") != PAGE:
        return None
    response = RedirectResponse(PAGE, status_code=303)
    http.set_cookie(response, http.SESSION_COOKIE, cookie)
    http.clear_cookie(response, http.FLOW_COOKIE)
    return response


def _csrf(edge: Edge, sid: str) -> str:
    return edge.provider.flow_codec.encode({"security": sid}, ttl=CSRF_TTL)


def _csrf_ok(edge: Edge, sid: str, value: object) -> bool:
    claims = edge.provider.flow_codec.decode(str(value or ""))
    return claims is not None and hmac.compare_digest(str(claims.get("security", "")), sid)


def _edge(request: Request) -> Edge:
    edge: Edge = request.app.state.edge
    BACKENDS.open()
    return edge


def _words(request: Request) -> dict[str, str]:
    return WORDS[edge_lang(request)]


def edge_lang(request: Request) -> str:
    from services.edge.i18n import pick

    return pick(request.query_params.get("lang"), request.cookies.get(http.LANG_COOKIE))


async def _signed_in_user(edge: Edge, request: Request) -> tuple[User, str, str] | None:
    """(user, sid, ID number) of the session cookie, None without a live session."""
    session = await edge.provider.session_user(request.cookies.get(http.SESSION_COOKIE))
    if session is None:
        return None
    id_number = edge.provider.subjects.id_number(session[0].sub)
    return (session[0], session[1], id_number) if id_number else None


def _start_sign_in(edge: Edge, request: Request) -> Response:
    """No session: the login pages, then back here (``after_sign_in``)."""
    flow = {"q": "", "csrf": secrets.token_urlsafe(16), "client": _words(request)["sec_title"], "next": PAGE}
    response = RedirectResponse("/login", status_code=303)
    edge.save_flow(response, flow)
    return response


# -- the history ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    index: int
    time: str
    action: str
    portal: str
    client_id: str
    factor: str
    source: str
    outcome: str
    reason: str
    verified: bool | None  # None: not checked here (no key)
    proof: str  # the proof as `dinhdanh audit verify` reads it


def log_token(edge: Edge, user: User) -> str:
    """A 60-second RFC 9068 access token for the log, scope ``log.read``, for the signed-in citizen only."""
    now = int(time.time())
    claims = {
        "iss": edge.provider.issuer, "sub": user.sub, "aud": [LOG_AUDIENCE], "client_id": PAGE_CLIENT,
        "scope": "log.read", "iat": now, "exp": now + LOG_TOKEN_TTL, "jti": secrets.token_urlsafe(16),
        "auth_time": user.auth_time, "acr": user.acr,
    }  # fmt: skip
    kid, key = edge.provider.server.keyring.signing_key(ACCESS_ALG)
    return jwt.encode({"alg": ACCESS_ALG, "kid": kid, "typ": "at+jwt"}, claims, key)


def _shown(action: str) -> bool:
    return action in SIGN_IN_ACTIONS or action.startswith("security.") or "passkey" in action


async def history(edge: Edge, user: User) -> tuple[list[HistoryRow], int, int, str | None]:
    """(rows newest first, checkpoint size, entries not yet in it, error key)."""
    if BACKENDS.log is None:
        return [], 0, 0, "unavailable"
    try:
        reply = await BACKENDS.log.ListMyEntries(
            lpb.ListMyEntriesRequest(page_size=HISTORY_PAGE),
            metadata=(("authorization", f"Bearer {log_token(edge, user)}"),), timeout=_timeout(),
        )  # fmt: skip
    except grpc.aio.AioRpcError as error:
        log.warning("security.history_unavailable", code=error.code().name)
        return [], 0, 0, "unavailable"
    key = await BACKENDS.vkey()
    checkpoint = None
    if key is not None:
        try:
            checkpoint = verify.checkpoint(reply.checkpoint.note, key, BACKENDS.origin)
        except verify.Refused as refused:
            log.warning("security.checkpoint_refused", reason=str(refused))
    rows = []
    for entry in reply.entries:
        fields = json.loads(entry.leaf)
        if not _shown(str(fields.get("action", ""))):
            continue
        claim = {"index": entry.index, "tree_size": entry.proof.tree_size,
                 "leaf": base64.b64encode(entry.leaf).decode(),
                 "hashes": [base64.b64encode(h).decode() for h in entry.proof.hashes]}  # fmt: skip
        verified: bool | None = None
        if checkpoint is not None:
            try:
                verified = verify.inclusion(claim, checkpoint) == entry.index
            except verify.Refused:
                verified = False
        elif key is not None:
            verified = False  # the checkpoint did not verify
        proof = json.dumps({**claim, "checkpoint": reply.checkpoint.note}, indent=1)
        rows.append(HistoryRow(
            index=entry.index, time=str(fields.get("time", ""))[:19].replace("T", " "), action=fields.get("action", ""),
            portal=entry.agency_name or str(fields.get("client_id", "")), client_id=str(fields.get("client_id", "")),
            factor=str(fields.get("factor", "")), source=str(fields.get("source", "")),
            outcome=str(fields.get("outcome", "")), reason=str(fields.get("reason", "")), verified=verified,
            proof=proof,
        ))  # fmt: skip
    return rows, reply.checkpoint.size, reply.pending, None


# -- the page ---------------------------------------------------------------------------------------------------


async def _portal_names(edge: Edge, records: list[SessionRecord]) -> dict[str, str]:
    names = {}
    for client_id in {r.first_portal for r in records} | {r.last_portal for r in records}:
        client = await edge.provider.client(client_id) if client_id else None
        names[client_id] = client.name if client else ""
    return names


async def _passkeys(id_number: str) -> tuple[list[Any] | None, str | None]:
    """The citizen's passkeys; None when the Passkeys service is not available (and why)."""
    if BACKENDS.passkeys is None:
        return None, "passkeys_unavailable"
    from protos.identity.v1 import passkeys_pb2

    try:
        reply = await BACKENDS.passkeys.ListPasskeys(passkeys_pb2.ListPasskeysRequest(id_number=id_number),
                                                     timeout=_timeout())  # fmt: skip
    except grpc.aio.AioRpcError as error:
        log.warning("security.passkeys_unavailable", code=error.code().name)
        return None, "passkeys_unavailable"
    return list(reply.passkeys), None


def _has_route(request: Request, path: str) -> bool:
    return any(getattr(route, "path", None) == path for route in request.app.routes)


async def page(request: Request) -> Response:
    edge = _edge(request)
    signed = await _signed_in_user(edge, request)
    if signed is None:
        return _start_sign_in(edge, request)
    user, sid, id_number = signed
    if BACKENDS.security is None:
        return edge.message(request, "expired", 503)
    try:
        state = await BACKENDS.security.GetSecurity(spb.GetSecurityRequest(id_number=id_number), timeout=_timeout())
    except grpc.aio.AioRpcError:
        return edge.message(request, "expired", 503)
    rows, size, pending, history_error = await history(edge, user)
    sessions = await edge.provider.sessions.active(user.sub)
    passkeys, passkeys_error = await _passkeys(id_number)
    words = _words(request)
    done, error = request.query_params.get("done"), request.query_params.get("error")
    return edge.page(
        request, "security.html", s=words, csrf=_csrf(edge, sid), state=state, rows=rows, checkpoint_size=size,
        pending=pending, history_error=history_error, sessions=sessions, current_sid=sid,
        portal_names=await _portal_names(edge, sessions), passkeys=passkeys, passkeys_error=passkeys_error,
        passkey_page=PASSKEY_PAGE if _has_route(request, PASSKEY_PAGE) else None,
        portals_page=PORTALS_PAGE if _has_route(request, PORTALS_PAGE) else None,
        done=words.get(f"done_{done}") if done in MESSAGES else None,
        error=words.get(f"error_{error}") if error in ERRORS else None,
    )  # fmt: skip


# -- the actions ------------------------------------------------------------------------------------------------


async def _action(request: Request) -> tuple[Edge, User, str, str, dict[str, str]] | Response:
    """The session, the form and its CSRF token checked; or the response that refuses."""
    edge = _edge(request)
    signed = await _signed_in_user(edge, request)
    pairs = await http.limited_form(request)
    form = dict(pairs) if pairs is not None else None
    if signed is None or form is None or not _csrf_ok(edge, signed[1], form.get("csrf")):
        return edge.message(request, "expired", 403)
    if BACKENDS.security is None:
        return edge.message(request, "expired", 503)
    return edge, signed[0], signed[1], signed[2], form


def _back(done: str | None = None, error: str | None = None) -> Response:
    query = f"?done={done}" if done else f"?error={error}" if error else ""
    return RedirectResponse(PAGE + query, status_code=303)


def _error_key(error: grpc.aio.AioRpcError) -> str:
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return "wrong_code"
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return "wrong_code" if "digits" in details else "expired"
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return "throttled"
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return "replace_expired" if "re-enrolment" in details else "no_totp" if "TOTP" in details else "not_locked"
    return "unavailable"


def _code(form: dict[str, str]) -> str:
    return str(form.get("code", "")).strip()[:12]


async def sign_out_everywhere(request: Request) -> Response:
    """End every session of the citizen (this one too) and revoke the refresh tokens bound to them."""
    checked = await _action(request)
    if isinstance(checked, Response):
        return checked
    edge, user, _, id_number, _ = checked
    sessions, tokens = await edge.provider.sessions.end_all(user.sub)
    log.info("security.signed_out_everywhere", sessions=sessions, refresh_tokens=tokens)
    try:  # the citizen's history shows it (an audit event by the identity service, actor: the edge)
        await BACKENDS.security.RecordSignOutEverywhere(  # type: ignore[union-attr]
            spb.RecordSignOutEverywhereRequest(id_number=id_number, source=edge.sources.of(request),
                                               sessions=sessions, refresh_tokens=tokens), timeout=_timeout(),
        )  # fmt: skip
    except grpc.aio.AioRpcError as error:  # the sessions are ended whatever happens to the record
        log.warning("security.sign_out_unrecorded", code=error.code().name)
    words = _words(request)
    text = words["signed_out_everywhere"].format(sessions=sessions, tokens=tokens)
    response = edge.page(request, "message.html", heading=words["sec_title"], message=text)
    http.clear_cookie(response, http.SESSION_COOKIE)
    return response


async def _act(request: Request, call: Callable[[Edge, str, dict[str, str]], Awaitable[Any]], done: str) -> Response:
    """A signed-in, CSRF-checked POST of the page: one identity call, then back to the page saying ``done`` (or
    the call's refusal)."""
    checked = await _action(request)
    if isinstance(checked, Response):
        return checked
    edge, _, _, id_number, form = checked
    try:
        await call(edge, id_number, form)
    except grpc.aio.AioRpcError as error:
        return _back(error=_error_key(error))
    return _back(done=done)


async def lock_password(request: Request) -> Response:
    def call(edge: Edge, id_number: str, form: dict[str, str]) -> Awaitable[Any]:
        ask = spb.LockPasswordRequest(id_number=id_number, source=edge.sources.of(request))
        return BACKENDS.security.LockPassword(ask, timeout=_timeout())  # type: ignore[union-attr]

    return await _act(request, call, "locked")


async def unlock_password(request: Request) -> Response:
    def call(edge: Edge, id_number: str, form: dict[str, str]) -> Awaitable[Any]:
        ask = spb.UnlockPasswordRequest(id_number=id_number, code=_code(form), source=edge.sources.of(request))
        return BACKENDS.security.UnlockPassword(ask, timeout=_timeout())  # type: ignore[union-attr]

    return await _act(request, call, "unlocked")


async def replace_totp(request: Request) -> Response:
    """Step-up with the current secret's code; then the new secret's QR and the form for its first code."""
    checked = await _action(request)
    if isinstance(checked, Response):
        return checked
    edge, _, sid, id_number, form = checked
    try:
        found = await BACKENDS.security.StartTotpReplacement(  # type: ignore[union-attr]
            spb.StartTotpReplacementRequest(id_number=id_number, code=_code(form), source=edge.sources.of(request)),
            timeout=_timeout(),
        )
    except grpc.aio.AioRpcError as error:
        return _back(error=_error_key(error))
    return edge.page(request, "security_totp.html", s=_words(request), csrf=_csrf(edge, sid),
                     qr=base64.b64encode(found.qr_png).decode(), secret=found.secret,
                     minutes=found.expires_in // 60)  # fmt: skip


async def confirm_totp(request: Request) -> Response:
    def call(edge: Edge, id_number: str, form: dict[str, str]) -> Awaitable[Any]:
        ask = spb.ConfirmTotpReplacementRequest(id_number=id_number, code=_code(form), source=edge.sources.of(request))
        return BACKENDS.security.ConfirmTotpReplacement(ask, timeout=_timeout())  # type: ignore[union-attr]

    return await _act(request, call, "totp_replaced")


async def remove_passkey(request: Request) -> Response:
    """Step-up (a TOTP code, AccountSecurity.StepUp), then Passkeys.RemovePasskey. TOTP stays: never the last."""
    checked = await _action(request)
    if isinstance(checked, Response):
        return checked
    edge, _, _, id_number, form = checked
    if BACKENDS.passkeys is None:
        return _back(error="unavailable")
    from protos.identity.v1 import passkeys_pb2

    try:
        await BACKENDS.security.StepUp(  # type: ignore[union-attr]
            spb.StepUpRequest(id_number=id_number, code=_code(form), source=edge.sources.of(request),
                              purpose="passkey.remove"), timeout=_timeout(),
        )  # fmt: skip
        await BACKENDS.passkeys.RemovePasskey(
            passkeys_pb2.RemovePasskeyRequest(id_number=id_number, credential_id=str(form.get("credential_id", ""))),
            timeout=_timeout(),
        )
    except grpc.aio.AioRpcError as error:
        return _back(error=_error_key(error))
    return _back(done="passkey_removed")


def routes() -> list[Route]:
    return [
        Route(PAGE, page),
        Route(f"{PAGE}/sign-out-everywhere", sign_out_everywhere, methods=["POST"]),
        Route(f"{PAGE}/password-lock", lock_password, methods=["POST"]),
        Route(f"{PAGE}/password-unlock", unlock_password, methods=["POST"]),
        Route(f"{PAGE}/totp", replace_totp, methods=["POST"]),
        Route(f"{PAGE}/totp/confirm", confirm_totp, methods=["POST"]),
        Route(f"{PAGE}/passkeys/remove", remove_passkey, methods=["POST"]),
    ]
