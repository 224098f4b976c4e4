"""Translation between Starlette and the provider: requests in, ``Reply`` out, cookies."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from identity.oidc.reply import Reply
from identity.oidc.requests import Request as OidcRequest

SESSION_COOKIE = "__Host-dd-session"
FLOW_COOKIE = "__Host-dd-flow"
DEVICE_COOKIE = "__Host-dd-device"  # a device id sealed by this edge (services/edge/sources.py)
LANG_COOKIE = "__Host-dd-lang"
MAX_BODY = 64 * 1024


def oauth_request(request: Request, form: list[tuple[str, str]] | None = None) -> OidcRequest:
    """authlib's request from a Starlette one (query for GET, form for POST)."""
    return OidcRequest(
        request.method, str(request.url), request.query_params.multi_items(), form or [], request.headers
    )


def query_request(query: str, base: str) -> OidcRequest:
    """An authorization request rebuilt from its saved query string."""
    return OidcRequest("GET", f"{base}/authorize?{query}", parse_qsl(query, keep_blank_values=True), [], {})


def to_response(reply: Reply) -> Response:
    headers = dict(reply.headers)
    location = reply.location
    if location and reply.status in (301, 302, 303, 307):
        headers.pop("Location", None)
        headers.pop("location", None)
        return RedirectResponse(location, status_code=303 if reply.status == 302 else reply.status, headers=headers)
    body = reply.body if not isinstance(reply.body, str) else json.loads(reply.body)
    headers.pop("Content-Type", None)
    headers.setdefault("Cache-Control", "no-store")
    return JSONResponse(body, status_code=reply.status, headers=headers)


def set_cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    """Secure, HttpOnly, SameSite=Lax, host-only (``__Host-`` prefix)."""
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="lax")


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="lax")


async def limited_form(request: Request) -> list[tuple[str, str]] | None:
    """The form's fields in order, or None when the body is larger than the edge accepts."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return None
    body = await request.body()
    if len(body) > MAX_BODY:
        return None
    form = await request.form()
    return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
