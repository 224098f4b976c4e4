"""Passkeys at the edge (issue 13 §4): the browser side of the WebAuthn ceremonies the identity service verifies
(services/passkeys_server.py, identity/passkeys.py).

Sign-in (a pending authorization request: the flow cookie, its CSRF token):

- ``POST /login/passkey/options`` (JSON, ``X-CSRF-Token``): ``{"mode": "second"}`` after the password (the flow's
  ticket; 412 when the account has no passkey, so the TOTP page shows the passkey button only when it has one)
  or ``{"mode": "passwordless"}`` on the login page (a discoverable credential, user verification required).
  Answers ``{"handle", "options"}`` (PublicKeyCredentialRequestOptionsJSON, WebAuthn L3 §5.1.4).
- ``POST /login/passkey`` (form: ``csrf``, ``mode``, ``handle``, ``credential``: the AuthenticationResponseJSON):
  the identity service verifies it; the citizen is signed in exactly as after a TOTP code
  (``services.edge.app._signed_in``: the SSO session gets the ``amr`` and ``acr`` of the Authentication).

The citizen's passkeys (an SSO session; a CSRF token bound to it):

- ``GET /security/passkeys``: the list (name, synced or device-bound, created, last use) and "add a passkey";
- ``POST /security/passkeys/options`` (JSON, ``X-CSRF-Token``): creation options for the signed-in citizen;
- ``POST /security/passkeys`` (form: ``csrf``, ``handle``, ``credential``, ``name``): register it;
- ``GET /security/passkeys/sign-in``: a fresh sign-in (the login pages, then back to ``/security``).

Removal is on the security page (services/edge/security_routes.py ``POST /security/passkeys/remove``, after a
TOTP step-up, calling ``Passkeys.RemovePasskey``). Adding a factor is a step-up too (issue 13 §5): it needs a
sign-in of the session at most ``FRESH_FOR`` seconds old (``auth_time``, as OIDC Core's ``max_age``), which has
just proved the password and a second factor; an older session is sent through the login pages again.

The pages that run the ceremony carry ``script-src 'self'; connect-src 'self'`` (``Edge.page``, SCRIPTED_PAGES),
the one script being ``/passkeys.js``. The JSON endpoints also refuse a request whose ``Origin`` is not the edge's.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from core import deadline
from protos.identity.v1 import passkeys_pb2 as pb
from protos.identity.v1 import passkeys_pb2_grpc as pb_grpc
from services.edge import http

if TYPE_CHECKING:
    from services.edge.app import Edge

SCRIPT = Path(__file__).parent / "templates" / "passkeys.js"
FRESH_FOR = 600  # seconds: a sign-in at most this old may add or remove a factor
CSRF_TTL = 1800
MAX_JSON = 4 * 1024
RPC_TIMEOUT = 10.0
SECOND, PASSWORDLESS = "second", "passwordless"
SCRIPTED_PAGES = frozenset({"login.html", "totp.html", "passkeys.html"})  # Edge.page: script-src 'self'


def routes() -> list[Route]:
    return [
        Route("/passkeys.js", script, methods=["GET"]),
        Route("/login/passkey/options", login_options, methods=["POST"]),
        Route("/login/passkey", login_finish, methods=["POST"]),
        Route("/security/passkeys", security_page, methods=["GET"]),
        Route("/security/passkeys/options", registration_options, methods=["POST"]),
        Route("/security/passkeys", registration_finish, methods=["POST"]),
        Route("/security/passkeys/sign-in", sign_in_again, methods=["GET"]),
    ]


def stub_for(channel: grpc.aio.Channel) -> pb_grpc.PasskeysStub:
    return pb_grpc.PasskeysStub(channel)


def stub(request: Request) -> pb_grpc.PasskeysStub:
    return request.app.state.passkeys  # type: ignore[no-any-return]


def _edge(request: Request) -> Edge:
    return request.app.state.edge  # type: ignore[no-any-return]


def _timeout() -> float:
    return deadline.remaining(RPC_TIMEOUT)


async def script(request: Request) -> Response:
    return Response(SCRIPT.read_bytes(), media_type="text/javascript", headers={
        "Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"})  # fmt: skip


def _json_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"Cache-Control": "no-store"})  # fmt: skip


def _same_origin(request: Request, edge: Edge) -> bool:
    """Fetch §3.1: a browser's POST carries ``Origin``; when present it must be the edge's own."""
    origin = request.headers.get("origin")
    issuer = urlsplit(edge.provider.issuer)
    return origin is None or origin == f"{issuer.scheme}://{issuer.netloc}"


async def _json_body(request: Request) -> dict[str, Any] | None:
    body = await request.body()
    if len(body) > MAX_JSON:
        return None
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _ceremony(reply: pb.CeremonyOptions) -> JSONResponse:
    return JSONResponse({"handle": reply.handle, "options": json.loads(reply.options_json),
                         "expires_in": reply.expires_in}, headers={"Cache-Control": "no-store"})  # fmt: skip


def _rpc_json_error(error: grpc.aio.AioRpcError) -> JSONResponse:
    code = error.code()
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return _json_error(412, "no_passkey", error.details() or "no passkey")
    if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAUTHENTICATED):
        return _json_error(401, "login_required", "the sign-in expired; start again")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return _json_error(400, "invalid_request", error.details() or "invalid request")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:  # too many ceremonies started from this device or address
        reply = _json_error(429, "slow_down", "too many passkey requests; wait a few minutes")
        reply.headers["Retry-After"] = str(dict(error.trailing_metadata() or ()).get("retry-after", "300"))
        return reply
    return _json_error(503, "temporarily_unavailable", "passkeys are unavailable; try again later")


# -- sign-in -------------------------------------------------------------------------------------------------------


async def login_options(request: Request) -> Response:
    edge = _edge(request)
    flow, body = edge.flow(request), await _json_body(request)
    csrf = request.headers.get("x-csrf-token", "")
    if flow is None or body is None or not hmac.compare_digest(str(flow.get("csrf", "")), csrf):
        return _json_error(403, "access_denied", "the sign-in expired; start again from the portal")
    if not _same_origin(request, edge):
        return _json_error(403, "access_denied", "cross-origin request")
    mode = body.get("mode")
    if mode == SECOND:
        if "ticket" not in flow:
            return _json_error(412, "no_passkey", "sign in with your password first")
        call = pb.StartAuthenticationRequest(ticket=flow["ticket"], source=flow["source"])
    elif mode == PASSWORDLESS:
        call = pb.StartAuthenticationRequest(passwordless=True, source=edge.sources.of(request))
    else:
        return _json_error(400, "invalid_request", 'mode is "second" or "passwordless"')
    try:
        return _ceremony(await stub(request).StartAuthentication(call, timeout=_timeout()))
    except grpc.aio.AioRpcError as error:
        return _rpc_json_error(error)


async def login_finish(request: Request) -> Response:
    from services.edge import app  # the shared sign-in step (app imports this module for its routes)

    edge = _edge(request)
    flow, form = edge.flow(request), await _form(request)
    if flow is None or form is None or not _csrf_ok(flow.get("csrf"), form.get("csrf")):
        return edge.message(request, "expired")
    second = form.get("mode") == SECOND
    if second and "ticket" not in flow:
        return edge.message(request, "expired")
    call = pb.FinishAuthenticationRequest(
        handle=form.get("handle", "")[:64],
        credential_json=form.get("credential", ""),
        source=flow["source"] if second else edge.sources.of(request),
        ticket=flow["ticket"] if second else "",
        client_id=portal_of(flow),
    )
    try:
        result = await stub(request).FinishAuthentication(call, timeout=_timeout())
    except grpc.aio.AioRpcError as error:
        text = _error_text(edge.words(request), error)
        if second:
            return edge.page(request, "totp.html", 401, csrf=flow["csrf"], error=text)
        return edge.page(request, "login.html", 401, csrf=flow["csrf"], client_name=flow.get("client"),
                         id_number="", error=text)  # fmt: skip
    if not second:  # the session's record (the security page) names where the sign-in came from
        flow["source"] = call.source
    return await app._signed_in(edge, request, flow, result)


def portal_of(flow: dict[str, Any]) -> str:
    """The client_id of the authorization request the sign-in is for ("" for the edge's own pages)."""
    return parse_qs(str(flow.get("q", ""))).get("client_id", [""])[0][:200]


def _error_text(words: dict[str, str], error: grpc.aio.AioRpcError) -> str:
    code = error.code()
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return words["passkey_level"]
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return words["passkey_none"]
    if code == grpc.StatusCode.UNAUTHENTICATED and "expired" in (error.details() or ""):
        return words["expired"]
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
        return words["passkey_failed"]
    return words["expired"]


# -- the citizen's passkeys ------------------------------------------------------------------------------------------


async def _citizen(request: Request) -> tuple[str, str, int] | None:
    """The signed-in citizen's ID number, session id and ``auth_time``, or None without a session."""
    edge = _edge(request)
    session = await edge.provider.session_user(request.cookies.get(http.SESSION_COOKIE))
    if session is None:
        return None
    user, sid = session
    id_number = edge.provider.subjects.id_number(user.sub)
    return (id_number, sid, user.auth_time) if id_number else None


def page_csrf(edge: Edge, sid: str) -> str:
    """The CSRF token of the passkey forms, bound to the SSO session (sealed by the flow key, as logout's)."""
    return edge.provider.flow_codec.encode({"passkeys": sid}, ttl=CSRF_TTL)


def _page_csrf_ok(edge: Edge, sid: str, token: str | None) -> bool:
    claims = edge.provider.flow_codec.decode(token)
    return claims is not None and claims.get("passkeys") == sid


def fresh(auth_time: int) -> bool:
    return time.time() - auth_time <= FRESH_FOR


async def security_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    """The passkeys section of the citizen's security page (``/security`` links here)."""
    edge = _edge(request)
    citizen = await _citizen(request)
    if citizen is None:
        return edge.message(request, "passkey_sign_in_first", 401)
    id_number, sid, auth_time = citizen
    try:
        listed = await stub(request).ListPasskeys(pb.ListPasskeysRequest(id_number=id_number), timeout=_timeout())
    except grpc.aio.AioRpcError:
        return edge.message(request, "expired", 503)
    return edge.page(request, "passkeys.html", status, csrf=page_csrf(edge, sid), passkeys=list(listed.passkeys),
                     fresh=fresh(auth_time), error=error)  # fmt: skip


async def registration_options(request: Request) -> Response:
    edge = _edge(request)
    citizen, body = await _citizen(request), await _json_body(request)
    if citizen is None or body is None:
        return _json_error(401, "login_required", "sign in first")
    id_number, sid, auth_time = citizen
    if not _page_csrf_ok(edge, sid, request.headers.get("x-csrf-token")) or not _same_origin(request, edge):
        return _json_error(403, "access_denied", "reload the page")
    if not fresh(auth_time):
        return _json_error(401, "login_required", edge.words(request)["passkey_step_up"])
    try:
        reply = await stub(request).StartRegistration(
            pb.StartRegistrationRequest(id_number=id_number, source=edge.sources.of(request)), timeout=_timeout()
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
            return _json_error(409, "too_many", error.details() or "")
        return _rpc_json_error(error)
    return _ceremony(reply)


async def registration_finish(request: Request) -> Response:
    edge = _edge(request)
    citizen, form = await _citizen(request), await _form(request)
    if citizen is None:
        return edge.message(request, "passkey_sign_in_first", 401)
    id_number, sid, auth_time = citizen
    if form is None or not _page_csrf_ok(edge, sid, form.get("csrf")):
        return edge.message(request, "expired")
    words = edge.words(request)
    if not fresh(auth_time):
        return await security_page(request, words["passkey_step_up"], 401)
    call = pb.FinishRegistrationRequest(id_number=id_number, handle=form.get("handle", "")[:64],
                                        credential_json=form.get("credential", ""), name=form.get("name", "")[:64],
                                        source=edge.sources.of(request))  # fmt: skip
    try:
        await stub(request).FinishRegistration(call, timeout=_timeout())
    except grpc.aio.AioRpcError as error:
        text = words["passkey_known"] if error.code() == grpc.StatusCode.ALREADY_EXISTS else words["passkey_failed"]
        return await security_page(request, text, 400)
    return RedirectResponse("/security/passkeys", status_code=303)


async def sign_in_again(request: Request) -> Response:
    """The step-up before adding a passkey: the login pages for a flow of the security page's own (``next``:
    services/edge/security_routes.py ``after_sign_in`` brings the new session back to ``/security``)."""
    edge = _edge(request)
    flow = {"q": "", "csrf": secrets.token_urlsafe(16), "client": edge.words(request)["passkeys_title"],
            "next": "/security"}  # fmt: skip
    response = RedirectResponse("/login", status_code=303)
    edge.save_flow(response, flow)
    return response


async def _form(request: Request) -> dict[str, str] | None:
    pairs = await http.limited_form(request)
    return None if pairs is None else dict(pairs)


def _csrf_ok(expected: object, given: object) -> bool:
    return hmac.compare_digest(str(expected or ""), str(given or "")) and bool(expected)
