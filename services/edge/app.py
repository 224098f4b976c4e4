"""The edge application: OpenID Provider endpoints and the login pages (Starlette)."""

from __future__ import annotations

import base64
import contextlib
import hmac
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from consent.pg_store import PostgresConsentStore
from core import deadline
from core.keys import purposes
from core.settings import Settings, key_provider
from db.pool import open_pool
from identity.oidc import mtls
from identity.oidc.provider import Outcome, Provider, oauth_error
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from services.edge import (
    http,
    issuance_routes,
    log_routes,
    par_routes,
    passkey_routes,
    portal_consent_routes,
    security_routes,
    verify_routes,
)
from services.edge.i18n import TEXT, pick
from services.edge.records import RegistryRecords
from services.edge.sources import Sources
from services.edge.verifications import IdentityVerifications
from services.tls import secure_channel

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
FLOW_TTL = 900
RPC_TIMEOUT = 10.0  # one call to a service, at most
REQUEST_BUDGET = 20.0  # every downstream call a request makes, together (core.deadline)


class Edge:
    """What the routes share: the provider, the identity service, the words."""

    def __init__(self, provider: Provider, identity: igrpc.IdentityStub, sources: Sources) -> None:
        self.provider = provider
        self.identity = identity
        self.sources = sources

    # -- pages --------------------------------------------------------------------------------

    def page(self, request: Request, name: str, status: int = 200, **values: Any) -> Response:
        lang = pick(request.query_params.get("lang"), request.cookies.get(http.LANG_COOKIE))
        other = "en" if lang == "vi" else "vi"
        context = {"request": request, "lang": lang, "t": TEXT[lang], "switch_href": f"?lang={other}", **values}
        response = TEMPLATES.TemplateResponse(request, name, context, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self' http: https:; "
            "frame-ancestors 'none'; base-uri 'none'"
            + ("; script-src 'self'; connect-src 'self'" if name in passkey_routes.SCRIPTED_PAGES else "")
        )
        if request.query_params.get("lang") in TEXT:
            http.set_cookie(response, http.LANG_COOKIE, lang, max_age=365 * 86400)
        return response

    def message(self, request: Request, message_key: str, status: int = 400, **fmt: Any) -> Response:
        lang = pick(request.query_params.get("lang"), request.cookies.get(http.LANG_COOKIE))
        text = TEXT[lang].get(message_key, message_key).format(**fmt)
        return self.page(
            request, "message.html", status, heading=TEXT[lang]["error_title"], message=text, is_error=True
        )

    def words(self, request: Request) -> dict[str, str]:
        return TEXT[pick(request.query_params.get("lang"), request.cookies.get(http.LANG_COOKIE))]

    # -- the sign-in flow state -----------------------------------------------------------------

    def flow(self, request: Request) -> dict[str, Any] | None:
        return self.provider.flow_codec.decode(request.cookies.get(http.FLOW_COOKIE))

    def save_flow(self, response: Response, flow: dict[str, Any]) -> None:
        http.set_cookie(response, http.FLOW_COOKIE, self.provider.flow_codec.encode(flow, FLOW_TTL), FLOW_TTL)

    async def outcome_response(self, request: Request, outcome: Outcome, query: str) -> Response:
        if outcome.reply is not None:
            return http.to_response(outcome.reply)
        if outcome.error is not None:
            return self.page(request, "message.html", 400, heading=self.words(request)["error_title"],
                             message=outcome.error, is_error=True)  # fmt: skip
        assert outcome.client is not None
        flow = {"q": outcome.query or query, "csrf": secrets.token_urlsafe(16), "client": outcome.client.name}
        if outcome.pushed:  # the parameters were pushed (RFC 9126): the sealed flow vouches for them from now on
            flow["pushed"] = True
        if outcome.login:
            response: Response = RedirectResponse("/login", status_code=303)
        elif outcome.refused is not None:  # shown by GET /login/assurance, so that ?lang=en works on it
            refused = outcome.refused
            flow["assurance"] = {"required": refused.required, "level": refused.level, "back": refused.back}
            response = RedirectResponse("/login/assurance", status_code=303)
        else:
            flow["consent"] = outcome.consent
            response = self.page(request, "consent.html", client_name=outcome.client.name,
                                 scopes=outcome.consent, resources=outcome.resources or [],
                                 csrf=flow["csrf"])  # fmt: skip
        self.save_flow(response, flow)
        return response


def _rpc_timeout() -> float:
    """One call's timeout: ``RPC_TIMEOUT``, or what is left of the request's budget."""
    return deadline.remaining(RPC_TIMEOUT)


async def _fields(request: Request) -> dict[str, str] | None:
    pairs = await http.limited_form(request)
    return None if pairs is None else dict(pairs)


def _csrf_ok(flow: dict[str, Any], form: dict[str, Any]) -> bool:
    return hmac.compare_digest(str(flow.get("csrf", "")), str(form.get("csrf", "")))


# -- OpenID Provider endpoints ----------------------------------------------------------------------


async def discovery(request: Request) -> Response:
    return JSONResponse(request.app.state.edge.provider.discovery(), headers={"Cache-Control": "max-age=300"})


async def jwks(request: Request) -> Response:
    return JSONResponse(request.app.state.edge.provider.jwks(), headers={"Cache-Control": "max-age=60"})


async def authorize(request: Request) -> Response:
    edge: Edge = request.app.state.edge
    session = await edge.provider.session_user(request.cookies.get(http.SESSION_COOKIE))
    oreq = http.oauth_request(request)
    outcome = await edge.provider.authorize(oreq, session[0] if session else None)
    if session is not None and outcome.reply is not None and "code=" in (outcome.reply.location or ""):
        await edge.provider.sessions.served(session[1], str(request.query_params.get("client_id", ""))[:200])
    return await edge.outcome_response(request, outcome, request.url.query)


async def token(request: Request) -> Response:
    form = await http.limited_form(request)
    if form is None:
        return http.to_response(oauth_error("invalid_request", "request body too large", 413))
    return http.to_response(await request.app.state.edge.provider.token(http.oauth_request(request, form)))


async def revoke(request: Request) -> Response:
    return await _token_endpoint(request, "revocation")


async def introspect(request: Request) -> Response:
    return await _token_endpoint(request, "introspection")


async def _token_endpoint(request: Request, endpoint: str, peer: mtls.PeerCertificate | None = None) -> Response:
    form = await http.limited_form(request)
    if form is None:
        return http.to_response(oauth_error("invalid_request", "request body too large", 413))
    oreq = http.oauth_request(request, form)
    return http.to_response(await request.app.state.edge.provider.token_endpoint_request(oreq, endpoint, peer))


# -- the mutual-TLS aliases (RFC 8705 §5): the same endpoints, with the client's verified certificate ----------------


def _peer(request: Request) -> mtls.PeerCertificate | None:
    return mtls.from_scope(request.scope)  # type: ignore[arg-type]


def _no_certificate() -> Response:
    return http.to_response(oauth_error("invalid_client", "a client certificate is required on this port", 401))


async def mtls_token(request: Request) -> Response:
    peer = _peer(request)
    if peer is None:  # the TLS layer requires one: never reached unless it is misconfigured
        return _no_certificate()
    form = await http.limited_form(request)
    if form is None:
        return http.to_response(oauth_error("invalid_request", "request body too large", 413))
    return http.to_response(await request.app.state.edge.provider.token(http.oauth_request(request, form), peer))


async def mtls_revoke(request: Request) -> Response:
    peer = _peer(request)
    return _no_certificate() if peer is None else await _token_endpoint(request, "revocation", peer)


async def mtls_introspect(request: Request) -> Response:
    peer = _peer(request)
    return _no_certificate() if peer is None else await _token_endpoint(request, "introspection", peer)


async def userinfo(request: Request) -> Response:
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    scheme = "bearer"
    if auth[:5].lower() == "dpop ":  # RFC 9449 §7.1: a DPoP-bound token, with its proof in the DPoP header
        scheme, token = "dpop", auth[5:].strip()
    if request.method == "POST" and not token:
        token = str((await _fields(request) or {}).get("access_token", ""))
    provider = request.app.state.edge.provider
    reply = await provider.userinfo(token, scheme, request.headers.getlist("dpop"), request.method)
    if scheme == "dpop" and reply.status == 200:
        reply.headers.append(("DPoP-Nonce", provider.dpop.nonce() or ""))  # §9: for the next proof
    return http.to_response(reply)


async def logout(request: Request) -> Response:
    """RP-initiated logout 1.0: end the SSO session, return to a registered post-logout URI.

    §2: the session ends without asking only on a GET whose ``id_token_hint`` is an ID token of the session's
    own citizen; otherwise the citizen is asked, and the confirming POST must carry that question's CSRF token
    (bound to the session). Without a session there is nothing to end, so nothing to confirm."""
    edge: Edge = request.app.state.edge
    params = dict(request.query_params)
    if request.method == "POST":
        params.update(await _fields(request) or {})
    csrf = params.pop("csrf", None)
    session = await edge.provider.session_user(request.cookies.get(http.SESSION_COOKIE))
    if request.method == "GET" and not params.get("id_token_hint"):
        return _ask_logout(edge, request, params, session)
    target = await edge.provider.logout_target(params)
    if isinstance(target, str) and target.startswith("error:"):
        return edge.page(request, "message.html", 400, heading=edge.words(request)["error_title"],
                         message=target[6:], is_error=True)  # fmt: skip
    if session is not None:
        if request.method == "POST":
            confirmed = edge.provider.logout_confirmed(session[1], csrf)
        else:
            confirmed = await edge.provider.hint_names(params.get("id_token_hint"), session[0].sub)
        if not confirmed:
            return _ask_logout(edge, request, params, session)
        await edge.provider.end_session(session[1])
    if target:
        response: Response = RedirectResponse(target, status_code=303)
    else:
        words = edge.words(request)
        response = edge.page(request, "message.html", heading=words["signed_out"], message=words["signed_out"])
    http.clear_cookie(response, http.SESSION_COOKIE)
    http.clear_cookie(response, http.FLOW_COOKIE)
    return response


def _ask_logout(edge: Edge, request: Request, params: dict[str, str], session: tuple[Any, str] | None) -> Response:
    """The logout question; its form posts the request's parameters back with a CSRF token for this session."""
    csrf = edge.provider.logout_csrf(session[1]) if session else ""
    return edge.page(request, "logout.html", params=params, csrf=csrf)


async def assurance_page(request: Request) -> Response:
    """Why the sign-in cannot continue: the portal requires a higher assurance level than the account's, how to
    reach it (verification in person), and the way back (``access_denied`` for the portal)."""
    edge: Edge = request.app.state.edge
    flow = edge.flow(request) or {}
    refused = flow.get("assurance")
    if not isinstance(refused, dict):
        return edge.message(request, "expired")
    return edge.page(request, "assurance.html", 403, client_name=flow.get("client", ""), **refused)


# -- login pages ----------------------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    edge: Edge = request.app.state.edge
    flow = edge.flow(request)
    if flow is None:
        return edge.message(request, "expired")
    response = edge.page(request, "login.html", csrf=flow["csrf"], client_name=flow.get("client"), id_number="")
    edge.sources.give_device(request, response)  # so that the password comes from a sealed device
    return response


async def login_submit(request: Request) -> Response:
    edge: Edge = request.app.state.edge
    flow, form = edge.flow(request), await _fields(request)
    if flow is None or form is None or not _csrf_ok(flow, form):
        return edge.message(request, "expired")
    source = edge.sources.of(request)  # device:<sealed id>, else ip:<client address>
    id_number = str(form.get("id_number", "")).strip()[:20]
    try:
        step = await edge.identity.VerifyPassword(
            ipb.VerifyPasswordRequest(id_number=id_number, password=str(form.get("password", "")), source=source,
                                      client_id=security_routes.portal_of(flow)),  # the portal: sign-in history
            timeout=_rpc_timeout(),
        )  # fmt: skip
    except grpc.aio.AioRpcError as error:
        response = edge.page(request, "login.html", 401 if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED else 429,
                             csrf=flow["csrf"], client_name=flow.get("client"), id_number=id_number,
                             error=_error_text(edge.words(request), error))  # fmt: skip
    else:
        flow.update(ticket=step.ticket, source=source, enroll=step.next_step == ipb.NEXT_STEP_TOTP_ENROLLMENT)
        response = RedirectResponse("/login/enroll" if flow["enroll"] else "/login/totp", status_code=303)
        edge.save_flow(response, flow)
    edge.sources.give_device(request, response)
    return response


async def totp_page(request: Request) -> Response:
    edge: Edge = request.app.state.edge
    flow = edge.flow(request)
    if flow is None or "ticket" not in flow:
        return edge.message(request, "expired")
    return edge.page(request, "totp.html", csrf=flow["csrf"])


async def totp_submit(request: Request) -> Response:
    return await _second_factor(request, "totp.html", lambda edge, ticket, code, source: edge.identity.VerifyTotp(
        ipb.VerifyTotpRequest(ticket=ticket, code=code, source=source,
                              client_id=security_routes.portal_of(edge.flow(request) or {})),
        timeout=_rpc_timeout()))  # fmt: skip


async def enroll_submit(request: Request) -> Response:
    def confirm(edge: Edge, ticket: str, code: str, source: str) -> Any:
        portal = security_routes.portal_of(edge.flow(http_request) or {})
        request = ipb.ConfirmTotpEnrollmentRequest(ticket=ticket, code=code, source=source, client_id=portal)
        return edge.identity.ConfirmTotpEnrollment(request, timeout=_rpc_timeout())

    http_request = request

    return await _second_factor(request, "enroll.html", confirm)


async def _second_factor(request: Request, retry_page: str, call: Any) -> Response:
    """The TOTP code (to sign in, or to confirm a new enrollment): on success, the citizen is signed in."""
    edge: Edge = request.app.state.edge
    flow, form = edge.flow(request), await _fields(request)
    if flow is None or form is None or "ticket" not in flow or not _csrf_ok(flow, form):
        return edge.message(request, "expired")
    try:
        result = await call(edge, flow["ticket"], str(form.get("code", "")).strip()[:12], flow["source"])
    except grpc.aio.AioRpcError as error:
        text = _error_text(edge.words(request), error)
        if retry_page == "enroll.html":
            return await _enrollment_page(edge, request, flow, text)
        return edge.page(request, retry_page, 401, csrf=flow["csrf"], error=text)
    return await _signed_in(edge, request, flow, result)


async def enroll_page(request: Request) -> Response:
    edge: Edge = request.app.state.edge
    flow = edge.flow(request)
    if flow is None or "ticket" not in flow:
        return edge.message(request, "expired")
    return await _enrollment_page(edge, request, flow)


async def _enrollment_page(edge: Edge, request: Request, flow: dict[str, Any], error: str | None = None) -> Response:
    """The QR page of the pending secret (the same one on a reload or after a wrong code)."""
    try:
        enrollment = await edge.identity.StartTotpEnrollment(
            ipb.StartTotpEnrollmentRequest(ticket=flow["ticket"], source=flow["source"]), timeout=_rpc_timeout()
        )
    except grpc.aio.AioRpcError as failure:
        return edge.message(request, _error_text(edge.words(request), failure))
    qr = base64.b64encode(enrollment.qr_png).decode()
    status = 401 if error else 200
    return edge.page(request, "enroll.html", status, csrf=flow["csrf"], qr=qr, secret=enrollment.secret, error=error)


async def _signed_in(edge: Edge, request: Request, flow: dict[str, Any], result: ipb.Authentication) -> Response:
    """The citizen just authenticated: open the SSO session and answer the pending authorization
    request in the same response (no extra round trip through the browser)."""
    cookie, user = edge.provider.new_session(
        result.id_number, result.auth_time, str(result.assurance_level), list(result.amr)
    )
    await security_routes.session_opened(edge, request, flow, user)  # the security page's list (issue 13 §5)
    if (own := security_routes.after_sign_in(flow, cookie)) is not None:  # the page's own sign-in: no portal
        return own
    oreq = http.query_request(flow["q"], edge.provider.issuer)
    outcome = await edge.provider.authorize(oreq, user, fresh_login=True, pushed=bool(flow.get("pushed")))
    response = await edge.outcome_response(request, outcome, flow["q"])
    http.set_cookie(response, http.SESSION_COOKIE, cookie)
    if outcome.reply is not None:
        http.clear_cookie(response, http.FLOW_COOKIE)
    return response


async def consent_submit(request: Request) -> Response:
    edge: Edge = request.app.state.edge
    flow, form = edge.flow(request), await _fields(request)
    session = await edge.provider.session_user(request.cookies.get(http.SESSION_COOKIE))
    if flow is None or form is None or session is None or not _csrf_ok(flow, form):
        return edge.message(request, "expired")
    oreq = http.query_request(flow["q"], edge.provider.issuer)
    reply = await edge.provider.decide(oreq, session[0], allow=form.get("decision") == "allow",
                                       pushed=bool(flow.get("pushed")))  # fmt: skip
    response = http.to_response(reply)
    http.clear_cookie(response, http.FLOW_COOKIE)
    return response


def _error_text(words: dict[str, str], error: grpc.aio.AioRpcError) -> str:
    code = error.code()
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        retry = dict(error.trailing_metadata() or ()).get("retry-after")
        if retry and retry != "0":
            return words["throttled"].format(seconds=retry)
        return words["locked"]
    if code == grpc.StatusCode.UNAUTHENTICATED:
        details = error.details() or ""
        return words["wrong_code"] if "code" in details else (
            words["expired"] if "expired" in details else words["wrong_credentials"])  # fmt: skip
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return error.details() or words["wrong_credentials"]
    if code == grpc.StatusCode.FAILED_PRECONDITION and "password sign-in is locked" in (error.details() or ""):
        return words["password_locked"]  # the citizen's own lock (security page, issue 13 §5)
    return words["expired"]


ROUTES = [
    Route("/.well-known/openid-configuration", discovery),
    Route("/jwks", jwks),
    Route("/authorize", authorize),
    Route("/token", token, methods=["POST"]),
    Route("/userinfo", userinfo, methods=["GET", "POST"]),
    Route("/revoke", revoke, methods=["POST"]),
    Route("/introspect", introspect, methods=["POST"]),
    Route("/logout", logout, methods=["GET", "POST"]),
    Route("/login", login_page),
    Route("/login", login_submit, methods=["POST"]),
    Route("/login/totp", totp_page),
    Route("/login/totp", totp_submit, methods=["POST"]),
    Route("/login/enroll", enroll_page),
    Route("/login/enroll", enroll_submit, methods=["POST"]),
    Route("/login/assurance", assurance_page),
    Route("/consent", consent_submit, methods=["POST"]),
    log_routes.mount(),  # /log/checkpoint, /log/tile/..., /log/key (C2SP tlog-tiles)
    *verify_routes.routes(),  # /verify: the public verification page of issued certificates
    *issuance_routes.routes(),  # /statuslists/{id}, /.well-known/jwt-vc-issuer, /issuance/document-ca.pem
    *par_routes.routes(),  # /par: pushed authorization requests (RFC 9126)
    *portal_consent_routes.routes(),  # /account/portals: remembered consents, withdrawal (issue 13 §2)
    *security_routes.routes(),  # /security: the citizen's security page (issue 13 §5)
    *passkey_routes.routes(),  # /login/passkey…, /security/passkeys, /passkeys.js: WebAuthn ceremonies (§4)
]


MTLS_ROUTES = [
    Route("/token", mtls_token, methods=["POST"]),
    Route("/revoke", mtls_revoke, methods=["POST"]),
    Route("/introspect", mtls_introspect, methods=["POST"]),
    *par_routes.mtls_routes(),  # /par (RFC 9126 over mutual TLS, RFC 8705 §5)
]


def mtls_base(settings: Settings) -> str | None:
    """The URL of the mutual-TLS endpoints (``mtls_endpoint_aliases``, RFC 8705 §5): the issuer's host on the
    port of ``DINHDANH_MTLS_LISTEN``; None when the edge serves none."""
    if not settings.mtls_listen:
        return None
    return f"https://{urlsplit(settings.issuer).hostname}:{settings.mtls_listen.rsplit(':', 1)[1]}"


def create_app(settings: Settings) -> Starlette:
    return create_apps(settings)[0]


def create_apps(settings: Settings) -> tuple[Starlette, Starlette]:
    """The edge's application and the one of its mutual-TLS port (RFC 8705 §5: the token, revocation and
    introspection endpoints only). They share one provider, made by the first one's lifespan: the mTLS server
    starts once it has run (services/edge/__main__.py)."""
    tls_app = Starlette(routes=MTLS_ROUTES, middleware=[Middleware(RequestBudget, seconds=REQUEST_BUDGET)])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await open_pool(settings.postgres_dsn, settings.db_pool_size)
        tls = (settings.tls_ca, settings.tls_cert, settings.tls_key)
        identity_channel = secure_channel(settings.identity_address, *tls, server="identity")
        registry_channel = secure_channel(settings.registry_address, *tls, server="registry")
        provider = Provider(settings.issuer, pool, key_provider(settings), RegistryRecords(registry_channel),
                            mtls_base=mtls_base(settings), consent_lookup=PostgresConsentStore(pool),
                            verifications=IdentityVerifications(identity_channel))  # fmt: skip
        await provider.start()
        sources = Sources.from_settings(settings, key_provider(settings).key(purposes.DEVICE_ID))
        app.state.edge = tls_app.state.edge = Edge(provider, igrpc.IdentityStub(identity_channel), sources)
        app.state.passkeys = passkey_routes.stub_for(identity_channel)  # the Passkeys service, served by identity
        try:
            yield
        finally:
            await provider.stop()
            await identity_channel.close()
            await registry_channel.close()
            await pool.close()

    main = Starlette(routes=ROUTES, lifespan=lifespan, middleware=[Middleware(RequestBudget, seconds=REQUEST_BUDGET)])
    return main, tls_app


class RequestBudget:
    """ASGI middleware: the gRPC calls one HTTP request makes share ``seconds`` (core.deadline), so a login
    that waits on a slow service gives up as a whole instead of granting each call its own timeout."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with deadline.bounded(self.seconds):
            await self.app(scope, receive, send)
