"""A FAPI 2.0 relying party without a browser, for tests and ``dinhdanh bench sso --profile fapi2``.

``FapiSignIn`` is a ``browserless.SignIn`` that pushes its authorization request first (RFC 9126 §2, the
request_uri is then all the browser carries, §4) and authenticates with ``private_key_jwt`` (RFC 7523 §2.2, aud the
issuer identifier: FAPI 2.0 Security Profile §5.3.2.1) at the pushed authorization and token endpoints. Use it with
``browserless.sign_in`` as any other flow; ``register_portal`` makes the portal it signs in to.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

from bench.browserless import SignIn
from identity.oidc import registration
from identity.oidc.clients import FAPI2, Client
from identity.oidc.dpop import HEADER, Proofer

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class ClientKey:
    """A client's signing key (ES256 by default) and the ``private_key_jwt`` assertions it makes."""

    key: Any = field(default_factory=lambda: ECKey.generate_key("P-256"))
    kid: str = field(default_factory=lambda: secrets.token_urlsafe(8))
    alg: str = "ES256"

    def public_jwk(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}

    def assertion(self, client_id: str, audience: str | list[str], lifetime: int = 60) -> str:
        now = int(time.time())
        claims = {"iss": client_id, "sub": client_id, "aud": audience, "jti": secrets.token_urlsafe(16),
                  "iat": now, "exp": now + lifetime}  # fmt: skip
        return jwt.encode({"alg": self.alg, "kid": self.kid, "typ": "JWT"}, claims, self.key, algorithms=[self.alg])

    def auth(self, client_id: str, audience: str) -> dict[str, str]:
        """The form fields of ``private_key_jwt`` client authentication (RFC 7523 §2.2)."""
        return {"client_id": client_id, "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion(client_id, audience)}  # fmt: skip


@dataclass
class FapiSignIn(SignIn):
    """PAR + PKCE + ``private_key_jwt``; ``client_secret`` is unused (""), ``key`` signs the assertions."""

    key: ClientKey = field(default_factory=ClientKey)
    proofer: Proofer | None = field(default_factory=Proofer)  # DPoP at the token endpoint (RFC 9449); None: none
    par_reply: httpx.Response | None = None  # the last pushed authorization response

    def pushed_params(self, state: str, nonce: str, challenge: str) -> dict[str, str]:
        return {
            "response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
            "scope": self.scope, "state": state, "nonce": nonce, "code_challenge": challenge,
            "code_challenge_method": "S256", **self.extra,
        }  # fmt: skip

    async def push(self, http: httpx.AsyncClient, state: str, nonce: str, challenge: str) -> httpx.Response:
        """RFC 9126 §2.1: the request's parameters and the client's authentication, to ``/par``."""
        data = {**self.pushed_params(state, nonce, challenge), **self.key.auth(self.client_id, self.issuer)}
        self.par_reply = await http.post(f"{self.issuer}/par", data=data)
        return self.par_reply

    async def start(self, http: httpx.AsyncClient, state: str, nonce: str, challenge: str) -> str:
        reply = await self.push(http, state, nonce, challenge)
        if reply.status_code != 201:
            raise AssertionError(f"pushed authorization request refused: {reply.status_code} {reply.text[:300]}")
        query = urlencode({"client_id": self.client_id, "request_uri": reply.json()["request_uri"]})
        return f"{self.issuer}/authorize?{query}"

    async def redeem(self, http: httpx.AsyncClient, code: str, verifier: str) -> httpx.Response:
        """The code for tokens, with ``private_key_jwt`` and, unless ``proofer`` is None, a DPoP proof (retried once
        with the server's nonce: bench/dpop_client.py). A retry needs a new assertion (its jti is single use)."""
        url = f"{self.issuer}/token"

        def data() -> dict[str, str]:
            return {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                    "code_verifier": verifier, **self.key.auth(self.client_id, self.issuer)}  # fmt: skip

        if self.proofer is None:
            return await http.post(url, data=data())
        reply = None
        for _ in range(2):  # RFC 9449 §8: use_dpop_nonce once, then the proof carries the nonce given
            reply = await http.post(url, data=data(), headers={HEADER: self.proofer.proof("POST", url)})
            self.proofer.remember(reply.headers)
            if reply.status_code != 400 or reply.json().get("error") != "use_dpop_nonce":
                break
        assert reply is not None
        return reply


def register_portal(name: str, redirect_uri: str, key: ClientKey | None = None, jwks_uri: str | None = None,
                    **kwargs: Any) -> tuple[Client, ClientKey]:  # fmt: skip
    """A portal on the FAPI 2.0 profile (``registration.portal``, as `dinhdanh clients add-portal --profile fapi2`
    would make it), with ``key``'s public JWKS registered unless ``jwks_uri`` publishes it; add it to the store."""
    key = key or ClientKey()
    client, _ = registration.portal(name, [redirect_uri], profile=FAPI2, jwks_uri=jwks_uri,
                                    jwks=None if jwks_uri else key.jwks(), **kwargs)  # fmt: skip
    return client, key


def flow_for(issuer: str, client: Client, key: ClientKey, scope: str = "openid profile", **extra: str) -> FapiSignIn:
    return FapiSignIn(issuer, client.client_id, "", client.redirect_uris[0], scope, dict(extra), key=key)
