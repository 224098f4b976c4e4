"""The citizen's remembered consents, per portal, and their withdrawal (issue 13 §2).

- ``GET /account/portals``: the portals whose consent the signed-in citizen (the SSO session cookie) has
  remembered: what each may have (scopes, resources), when it was given and when it expires (the portal's
  ``consent_ttl``); each with a withdraw button.
- ``POST /account/portals/withdraw`` (``client_id``, ``csrf``): forgets that consent and revokes that portal's
  refresh tokens for the citizen (``ConsentStore.withdraw``, one transaction): the portal's next sign-in asks again
  (OpenID Connect Core §3.1.2.4: the consent page), and it cannot refresh its way around it. Its access tokens
  already issued end on their own (at most ``ACCESS_TTL``, 10 minutes).

The CSRF token is sealed by the edge (the login-flow key) and bound to the SSO session it was shown to, so a
page of another site cannot make the citizen's browser withdraw anything (RFC 6749 §10.12's reasoning; the
cookie's SameSite is a second line). Without a session the page says to sign in through a portal (the edge has no
sign-in of its own without an authorization request).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from services.edge import http

if TYPE_CHECKING:
    from identity.oidc.clients import Client
    from identity.oidc.server import User
    from services.edge.app import Edge

PATH = "/account/portals"
CSRF_TTL = 900
MAX_CLIENT_ID = 200


async def _session(edge: Edge, request: Request) -> tuple[User, str] | None:
    return await edge.provider.session_user(request.cookies.get(http.SESSION_COOKIE))


def _csrf(edge: Edge, sid: str) -> str:
    return edge.provider.flow_codec.encode({"portals": sid}, ttl=CSRF_TTL)


def _csrf_ok(edge: Edge, sid: str, token: str | None) -> bool:
    claims = edge.provider.flow_codec.decode(token)
    return claims is not None and claims.get("portals") == sid


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


async def portals_page(request: Request) -> Response:
    edge: Edge = request.app.state.edge
    session = await _session(edge, request)
    if session is None:
        return edge.message(request, "portals_sign_in", 401)
    user, sid = session
    rows: list[dict[str, Any]] = [
        {"client_id": r.client_id, "name": r.client_name, "scopes": [s for s in r.scopes if s != "openid"],
         "resources": list(r.resources), "granted_at": _when(r.granted_at), "expires_at": _when(r.expires_at)}
        for r in await edge.provider.consents.remembered(user.sub)
    ]  # fmt: skip
    withdrawn = await _client(edge, request.query_params.get("withdrawn"))  # named by id: no text is reflected
    notice = edge.words(request)["portals_withdrawn"].format(name=withdrawn.name) if withdrawn else None
    return edge.page(request, "portals.html", portals=rows, csrf=_csrf(edge, sid), notice=notice)


async def _client(edge: Edge, client_id: str | None) -> Client | None:
    if not client_id or len(client_id) > MAX_CLIENT_ID:
        return None
    client = await edge.provider.client(client_id)
    return client if client is not None and client.kind == "portal" else None


async def withdraw(request: Request) -> Response:
    edge: Edge = request.app.state.edge
    session = await _session(edge, request)
    pairs = await http.limited_form(request)
    form = dict(pairs) if pairs is not None else None
    if session is None or form is None or not _csrf_ok(edge, session[1], form.get("csrf")):
        return edge.message(request, "expired")
    client = await _client(edge, form.get("client_id"))
    if client is None:
        return edge.message(request, "expired")
    await edge.provider.consents.withdraw(session[0].sub, client.client_id)
    return RedirectResponse(f"{PATH}?{urlencode({'withdrawn': client.client_id})}", status_code=303)


def routes() -> list[Route]:
    return [Route(PATH, portals_page), Route(f"{PATH}/withdraw", withdraw, methods=["POST"])]
