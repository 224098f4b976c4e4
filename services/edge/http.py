"""Translation between Starlette and the provider: requests in, ``Reply`` out, cookies."""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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
    if headers.get("Content-Type") == "application/jwt":  # a signed or encrypted userinfo response (Core §5.3.2)
        kind = headers.pop("Content-Type")
        headers.setdefault("Cache-Control", "no-store")
        return Response(str(reply.body), status_code=reply.status, headers=headers, media_type=kind)
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


class ClientCertificateProtocol(HttpToolsProtocol):  # type: ignore[misc]
    """uvicorn's httptools protocol that hands the app the peer's verified certificate, as the ASGI TLS extension
    says (``scope["extensions"]["tls"]``, asgiref specs/tls.html): ``client_cert_chain`` is a list of PEM strings,
    the client's own certificate first. uvicorn does not fill the extension itself.

    The application protocol's ``connection_made`` runs once the TLS handshake is complete (asyncio's and uvloop's
    SSL transports), so the certificate is known, and verified against the CA the server's SSL context requires
    (``CERT_REQUIRED``), before the first request of the connection is parsed; every request on a kept-alive
    connection carries the same one. Python 3.11's ``ssl`` gives the leaf only (``getpeercert(binary_form=True)``),
    which is all the chain a certificate issued directly by the platform CA has."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self.tls_extension: dict[str, Any] = {
            "server_cert": None,
            "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
            "client_cert_name": None,
            "client_cert_error": None,
            "tls_version": None,
            "cipher_suite": None,
        }

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {"tls": self.tls_extension}  # type: ignore[typeddict-unknown-key]
