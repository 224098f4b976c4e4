"""The client side of DPoP (RFC 9449) over HTTP and gRPC, for tests, the benchmark and agencies' own clients.

- ``post_token``: a token request with a proof; answered ``use_dpop_nonce`` (§8), it is sent once more with the
  nonce of the ``DPoP-Nonce`` header (the proofer keeps the last nonce it was given, so later requests need no
  second round trip).
- ``userinfo``: ``Authorization: DPoP <token>`` with a proof carrying ``ath`` (§7.1), the same retry (§9).
- ``grpc_metadata``: the metadata of a gRPC call with a DPoP-bound token: ``authorization: DPoP <token>`` and the
  proof in ``dpop``, ``htm`` POST, ``htu`` ``https://<service>/<package.Service>/<Method>`` (``dpop.grpc_htu``).
"""

from __future__ import annotations

from typing import Any

import httpx

from identity.oidc.dpop import GRPC_METADATA, HEADER, SCHEME, Proofer, grpc_htu


def _asks_nonce(response: httpx.Response) -> bool:
    if response.status_code == 400:
        try:
            return bool(response.json().get("error") == "use_dpop_nonce")
        except ValueError:
            return False
    return response.status_code == 401 and 'error="use_dpop_nonce"' in response.headers.get("www-authenticate", "")


async def post_token(http: httpx.AsyncClient, url: str, proofer: Proofer, data: dict[str, Any],
                     **kwargs: Any) -> httpx.Response:  # fmt: skip
    """POST ``data`` to the token endpoint ``url`` with a DPoP proof (RFC 9449 §5), retried once with the nonce."""
    response = None
    for _ in range(2):
        response = await http.post(url, data=data, headers={HEADER: proofer.proof("POST", url)}, **kwargs)
        proofer.remember(response.headers)
        if not _asks_nonce(response):
            break
    assert response is not None
    return response


async def userinfo(http: httpx.AsyncClient, url: str, proofer: Proofer, token: str) -> httpx.Response:
    """GET the userinfo endpoint ``url`` with a DPoP-bound token (RFC 9449 §7.1), retried once with the nonce."""
    response = None
    for _ in range(2):
        headers = {"authorization": f"{SCHEME} {token}", HEADER: proofer.proof("GET", url, access_token=token)}
        response = await http.get(url, headers=headers)
        proofer.remember(response.headers)
        if not _asks_nonce(response):
            break
    assert response is not None
    return response


def grpc_metadata(proofer: Proofer, token: str, service: str, method: str) -> tuple[tuple[str, str], ...]:
    """``authorization`` and ``dpop`` metadata for one call of ``method`` (``/package.Service/Method``) of
    ``service`` (its name: ``vault``)."""
    proof = proofer.proof("POST", grpc_htu(service, method), access_token=token, nonce="")
    return (("authorization", f"{SCHEME} {token}"), (GRPC_METADATA, proof))
