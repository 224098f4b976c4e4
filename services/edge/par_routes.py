"""The pushed authorization request endpoint (RFC 9126 §2), on the edge and on its mutual-TLS port (RFC 8705 §5,
``mtls_endpoint_aliases``: there a client may authenticate with ``tls_client_auth``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from identity.oidc import mtls
from identity.oidc.provider import oauth_error
from services.edge import http


async def par(request: Request) -> Response:
    return await _push(request, None)


async def mtls_par(request: Request) -> Response:
    peer = mtls.from_scope(request.scope)  # type: ignore[arg-type]
    if peer is None:  # the TLS layer requires one: never reached unless it is misconfigured
        return http.to_response(oauth_error("invalid_client", "a client certificate is required on this port", 401))
    return await _push(request, peer)


async def _push(request: Request, peer: mtls.PeerCertificate | None) -> Response:
    form = await http.limited_form(request)
    if form is None:
        return http.to_response(oauth_error("invalid_request", "request body too large", 413))
    return http.to_response(await request.app.state.edge.provider.par(http.oauth_request(request, form), peer))


def routes() -> list[Route]:
    return [Route("/par", par, methods=["POST"])]


def mtls_routes() -> list[Route]:
    return [Route("/par", mtls_par, methods=["POST"])]
