"""The demo portal: Starlette and authlib's OpenID Connect client.

Sign-in is the authorization code flow with PKCE (S256) and ``client_secret_basic`` at the token
endpoint; authlib checks ``state`` and ``nonce`` and validates the ID token against the OP's keys
(issuer and audience pinned here). The ``iss`` parameter of the authorization response (RFC 9207) is
checked before the code is redeemed. The signed session cookie holds only the pending flow (state,
nonce, PKCE verifier) and a random session id: the claims, the ID token and the access token stay in this
process's memory, so personal data never travels in a cookie. One worker; a restart signs everyone out.
With a vault configured, sign-in also asks for the vault as the access token's audience (RFC 8707) and
``portal.vault`` serves the personal data store pages with that token. With the consent service and the
transparency log configured, the same token also names them as audiences (several ``resource`` parameters,
RFC 8707 §2) with the scopes ``consent.manage`` and ``log.read``: ``portal.consent`` serves the citizen's
consent pages and ``portal.history`` the access history, each entry's inclusion proof verified here.
"""

from __future__ import annotations

import secrets
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from joserfc.errors import JoseError
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import logs
from portal import certificates, claims, consent, health, history
from portal.certificates import CertificatePages
from portal.consent import ConsentPages
from portal.disclosure import SharePages
from portal.errors import PageError
from portal.health import HealthPages
from portal.history import HistoryPages
from portal.settings import PortalSettings
from portal.vault import AFTER_LOGIN, RESOURCE, VAULT_SCOPES, VaultPages

with warnings.catch_warnings():
    # authlib 1.9 prefers the httpx2 fork and warns once, on import, when it falls back to httpx.
    warnings.filterwarnings("ignore", "The httpx module is deprecated", DeprecationWarning)
    from authlib.integrations.starlette_client import OAuth
try:  # authlib's HTTP client raises the errors of whichever of the two it uses
    import httpx2 as httpx  # type: ignore[import-not-found]
except ImportError:
    import httpx

log = logs.get("portal")

ISS_SUPPORTED = "authorization_response_iss_parameter_supported"  # RFC 9207 §3
UNREACHABLE = (
    "Không kết nối được tới hệ thống định danh điện tử. Vui lòng thử lại sau. "
    "(The identity provider cannot be reached; please try again later.)"
)
BAD_PROVIDER = (
    "Hệ thống định danh điện tử trả lời không hợp lệ. Vui lòng thử lại sau. "
    "(The identity provider sent an invalid response; please try again later.)"
)
FAILED = "Đăng nhập không thành công. Vui lòng thử lại. (Sign-in failed; please try again.)"
OAUTH_ERRORS = {
    "access_denied": "Bạn đã huỷ đăng nhập hoặc không đồng ý chia sẻ thông tin với cổng này. "
    "(Sign-in was cancelled or sharing your details was declined.)",
    "login_required": "Bạn cần đăng nhập lại. (You need to sign in again.)",
    "consent_required": "Cần sự đồng ý của bạn để tiếp tục. (Your consent is required.)",
    "interaction_required": "Cần thao tác của bạn để tiếp tục. (Your action is required.)",
    "temporarily_unavailable": UNREACHABLE,
    "server_error": BAD_PROVIDER,
}
PAGE_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


# Where the callback may send a citizen who was sent to sign in from a page (never a URL from the request).
RETURN_PAGES = ("/vault", consent.PAGE, history.PAGE, certificates.PAGE, health.PAGE)


def audiences(settings: PortalSettings) -> list[tuple[str, str]]:
    """(scopes, resource) of each platform service this portal is configured for: what sign-in asks for."""
    wanted = [
        (settings.vault_address, VAULT_SCOPES, RESOURCE),
        (settings.consent_address, consent.SCOPES, consent.RESOURCE),
        (settings.log_address, history.SCOPES, history.RESOURCE),
        (settings.issuance_address, certificates.SCOPES, certificates.RESOURCE),
        (settings.health_address, health.SCOPES, health.RESOURCE),
    ]
    return [(scopes, resource) for address, scopes, resource in wanted if address]


class Sessions:
    """Signed-in sessions by random id, in memory, dropped after ``max_age`` seconds."""

    def __init__(self, max_age: int, limit: int = 10_000) -> None:
        self.max_age, self.limit = max_age, limit
        self._items: dict[str, tuple[float, dict[str, Any]]] = {}

    def put(self, data: dict[str, Any]) -> str:
        now = time.monotonic()
        for sid in [sid for sid, (expires, _) in self._items.items() if expires < now]:
            del self._items[sid]
        while len(self._items) >= self.limit:
            del self._items[next(iter(self._items))]
        sid = secrets.token_urlsafe(32)
        self._items[sid] = (now + self.max_age, data)
        return sid

    def get(self, sid: str | None) -> dict[str, Any] | None:
        item = self._items.get(sid) if sid else None
        return item[1] if item and item[0] >= time.monotonic() else None

    def pop(self, sid: str | None) -> dict[str, Any] | None:
        item = self._items.pop(sid, None) if sid else None
        return item[1] if item and item[0] >= time.monotonic() else None


class Portal:
    def __init__(self, settings: PortalSettings) -> None:
        if not settings.client_id or not settings.client_secret.get_secret_value():
            raise ValueError("set DINHDANH_PORTAL_CLIENT_ID and DINHDANH_PORTAL_CLIENT_SECRET")
        self.settings = settings
        self.sessions = Sessions(settings.session_max_age)
        self.templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
        self.client = OAuth().register(
            name="dinhdanh",
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value(),
            server_metadata_url=settings.metadata_url,
            client_kwargs={
                "scope": " ".join([settings.scope, *(scope for scope, _ in audiences(settings))]),
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": "client_secret_basic",
                "timeout": settings.http_timeout,
            },
        )

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("title", self.settings.title)
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    async def metadata(self) -> dict[str, Any]:
        """The OP's discovery document (fetched once, then cached), checked against the configured issuer."""
        try:
            metadata = await self.client.load_server_metadata()
        except httpx.TransportError as exc:
            raise PageError(503, UNREACHABLE, f"discovery: {type(exc).__name__}") from exc
        except (httpx.HTTPStatusError, ValueError, TypeError) as exc:
            raise PageError(502, BAD_PROVIDER, f"discovery: {type(exc).__name__}") from exc
        missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not metadata.get(k)]
        if metadata.get("issuer") != self.settings.issuer or missing:
            self.client.server_metadata.clear()  # fetch again next time
            raise PageError(502, BAD_PROVIDER, f"discovery: wrong issuer or missing {missing}")
        return metadata

    def check_iss(self, request: Request, required: bool) -> None:
        """RFC 9207 §2.4: a response naming another issuer is a mix-up attack; refuse it."""
        iss = request.query_params.get("iss")
        if iss is None and not required:
            return
        if iss != self.settings.issuer:
            raise PageError(400, FAILED, "authorization response: iss missing or not the issuer")

    async def home(self, request: Request) -> Response:
        data = self.sessions.get(request.session.get("sid"))
        if data is None and "sid" in request.session:
            del request.session["sid"]
        rows = claims.shown(data["claims"]) if data else None
        shown = {"vault": self.settings.vault_address, "consents": self.settings.consent_address,
                 "history": self.settings.log_address, "certificates": self.settings.issuance_address,
                 "health": self.settings.health_address}  # fmt: skip
        return self.page(request, "home.html", rows=rows, **{page: bool(address) for page, address in shown.items()})

    async def login(self, request: Request) -> Response:
        await self.metadata()
        resources = [resource for _, resource in audiences(self.settings)]  # RFC 8707 §2: one parameter each
        extra = {"resource": resources} if resources else {}
        return await self.client.authorize_redirect(request, self.settings.redirect_uri, **extra)

    async def callback(self, request: Request) -> Response:
        params = request.query_params
        if "error" in params:
            await self.client.framework.clear_state_data(request.session, params.get("state", ""))
            self.check_iss(request, required=False)
            error = params["error"]
            shown = error if error.isascii() and error.replace("_", "").isalnum() and len(error) <= 64 else "?"
            message = OAUTH_ERRORS.get(error, f"{FAILED} [{shown}]")
            raise PageError(400, message, f"authorization response: error {shown}")
        if "code" not in params:
            raise PageError(400, FAILED, "authorization response: no code")
        metadata = await self.metadata()
        try:
            self.check_iss(request, required=bool(metadata.get(ISS_SUPPORTED)))
        except PageError:
            await self.client.framework.clear_state_data(request.session, params.get("state", ""))
            raise
        token = await self.redeem(request)
        id_claims = token.get("userinfo")
        if not id_claims:
            raise PageError(502, BAD_PROVIDER, "token response: no ID token")
        found = dict(id_claims)
        if metadata.get("userinfo_endpoint"):
            userinfo = await self.userinfo(token)
            if userinfo.get("sub") != id_claims["sub"]:  # OIDC Core §5.3.2
                raise PageError(502, BAD_PROVIDER, "userinfo: sub differs from the ID token's")
            found.update(userinfo)
        self.sessions.pop(request.session.pop("sid", None))  # a new id at each sign-in
        session = {"claims": found, "id_token": token["id_token"], "access_token": token.get("access_token"),
                   "expires_at": token.get("expires_at")}  # fmt: skip
        request.session["sid"] = self.sessions.put(session)
        log.info("signed in", client_id=self.settings.client_id, acr=found.get("acr"))
        after = request.session.pop(AFTER_LOGIN, None)
        target = after if after in RETURN_PAGES else "/"
        return RedirectResponse(target, status_code=303)

    async def redeem(self, request: Request) -> dict[str, Any]:
        options = {
            "iss": {"essential": True, "value": self.settings.issuer},
            "aud": {"essential": True, "value": self.settings.client_id},
            "sub": {"essential": True},
        }
        try:
            return await self.client.authorize_access_token(request, claims_options=options)
        except MismatchingStateError as exc:
            message = "Phiên đăng nhập đã hết hạn hoặc không hợp lệ. (The sign-in attempt expired or is invalid.)"
            raise PageError(400, f"{message} {FAILED}", "callback: unknown state") from exc
        except OAuthError as exc:
            raise PageError(400, FAILED, f"token endpoint: {exc.error}") from exc
        except JoseError as exc:
            raise PageError(502, BAD_PROVIDER, f"ID token: {exc.error}") from exc
        except httpx.TransportError as exc:
            raise PageError(503, UNREACHABLE, f"token endpoint: {type(exc).__name__}") from exc
        except (httpx.HTTPStatusError, ValueError, KeyError) as exc:
            raise PageError(502, BAD_PROVIDER, f"token endpoint: {type(exc).__name__}") from exc

    async def userinfo(self, token: dict[str, Any]) -> dict[str, Any]:
        try:
            return dict(await self.client.userinfo(token=token))
        except httpx.TransportError as exc:
            raise PageError(503, UNREACHABLE, f"userinfo: {type(exc).__name__}") from exc
        except (httpx.HTTPStatusError, OAuthError, ValueError, TypeError) as exc:
            raise PageError(502, BAD_PROVIDER, f"userinfo: {type(exc).__name__}") from exc

    async def logout(self, request: Request) -> Response:
        """Ends the local session, then RP-Initiated Logout 1.0 at the OP when it offers it."""
        data = self.sessions.pop(request.session.get("sid"))
        request.session.clear()
        if data is None:
            return RedirectResponse("/", status_code=303)
        try:
            endpoint = (await self.metadata()).get("end_session_endpoint")
        except PageError:
            endpoint = None  # signed out here; the OP cannot be told
        if not endpoint:
            return RedirectResponse("/", status_code=303)
        params = {
            "id_token_hint": data["id_token"],
            "client_id": self.settings.client_id,
            "post_logout_redirect_uri": self.settings.post_logout_redirect_uri,
        }
        return RedirectResponse(str(httpx.URL(endpoint).copy_merge_params(params)), status_code=303)

    async def error_page(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        log.warning("refused", path=request.url.path, status=exc.status, reason=exc.reason)
        return self.page(request, "error.html", exc.status, message=exc.message, heading=exc.heading,
                         relogin=exc.relogin, back=exc.back)  # fmt: skip

    async def server_error(self, request: Request, _exc: Exception) -> Response:
        message = "Lỗi hệ thống, vui lòng thử lại sau. (Internal error; please try again later.)"
        return self.page(request, "error.html", 500, message=message)


class RequestLog:
    """One log line per request (method, path without the query string, status, time) and page headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in PAGE_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = round((time.perf_counter() - started) * 1000, 1)
            log.info("request", method=scope["method"], path=scope["path"], status=status, ms=elapsed)


def create_app(settings: PortalSettings | None = None) -> Starlette:
    settings = settings or PortalSettings()
    portal = Portal(settings)
    vault = VaultPages(portal)  # its pages only when a vault is configured
    consents = ConsentPages(portal, vault)  # and the consent and history pages with their services
    accesses = HistoryPages(portal, vault, consents)
    issued = CertificatePages(portal, vault)  # the criminal-record certificate pages with the issuance service
    book = HealthPages(portal, vault)  # the electronic health book pages with the health service
    sharing = SharePages(portal, vault, consents)  # selective sharing of an issued certificate (SD-JWT + consent)
    session_key = settings.session_key.get_secret_value()
    if not session_key:
        session_key = secrets.token_urlsafe(32)
        log.warning("DINHDANH_PORTAL_SESSION_KEY is unset: a random key, sessions end with the process")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        log.info("portal ready", issuer=settings.issuer, base_url=settings.base_url, client_id=settings.client_id)
        try:
            yield
        finally:
            await vault.close()
            await consents.close()
            await accesses.close()
            await issued.close()
            await book.close()
            await sharing.close()

    async def health(_request: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [
        Route("/", portal.home),
        Route("/login", portal.login),
        Route("/callback", portal.callback),
        Route("/logout", portal.logout, methods=["GET", "POST"]),
        Route("/healthz", health),
        *vault.routes(),
        *consents.routes(),
        *accesses.routes(),
        *issued.routes(),
        *book.routes(),
        *sharing.routes(),
    ]
    middleware = [
        Middleware(RequestLog),
        Middleware(
            SessionMiddleware,
            secret_key=session_key,
            session_cookie=settings.cookie_name,
            max_age=settings.session_max_age,
            same_site="lax",  # the OP's redirect back to /callback is a top-level GET: the cookie is sent
            https_only=settings.base_url.startswith("https://"),
        ),
    ]
    handlers = {PageError: portal.error_page, Exception: portal.server_error}
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=lifespan)
    app.state.portal = portal
    return app
