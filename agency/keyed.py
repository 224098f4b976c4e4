"""A FAPI 2.0 agency's own tokens without a certificate: ``private_key_jwt`` and DPoP (issue 13 §1, docs/fapi.md).

Every agency is on the FAPI 2.0 Security Profile. One that holds a platform certificate gets certificate-bound
tokens on the edge's mTLS port (``agency.client.AgencyClient``, RFC 8705). One that authenticates with a key
(:class:`KeyedAgency`):

- authenticates at the token endpoint with ``private_key_jwt`` (RFC 7523 §2.2, OpenID Connect Core §9): a JWT it
  signs with its registered key (joserfc), ``iss`` = ``sub`` = its client id, ``aud`` the issuer identifier alone
  (FAPI 2.0 Security Profile §5.3.2.1 item 8), a fresh ``jti``, valid 60 s;
- sends a DPoP proof (RFC 9449 §5) with every token request, so the access token is bound to the proofer's key
  (``cnf.jkt``); answered ``use_dpop_nonce`` (§8) it asks once more with the nonce (and a fresh assertion: its
  ``jti`` is single-use);
- presents the token to a gRPC service as ``authorization: DPoP <token>`` with a proof in the ``dpop`` metadata
  (``htm`` POST, ``htu`` ``dpop.grpc_htu(service, method)``, ``ath``): :meth:`KeyedAgency.grpc_metadata`.

``dinhdanh clients add-agency --key-out FILE`` writes the private JWK :meth:`KeyedAgency.from_file` reads.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, Key, KeyParameters, OKPKey, RSAKey

from identity.oidc.dpop import GRPC_METADATA, HEADER, SCHEME, Proofer, grpc_htu

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 60
ALGS = {"EC": "ES256", "OKP": "EdDSA", "RSA": "PS256"}  # FAPI 2.0 §5.4.1


def new_key() -> ECKey:
    """A fresh ES256 key with a ``kid`` and ``alg`` (what `clients add-agency --jwks`/vault signatures expect)."""
    parameters: KeyParameters = {"kid": secrets.token_urlsafe(12), "alg": "ES256", "use": "sig"}
    return ECKey.generate_key("P-256", parameters=parameters, private=True)


def load_key(data: dict[str, Any]) -> Key:
    """A private JWK (RFC 7517) of an EC, OKP or RSA key."""
    kinds: dict[str, Any] = {"EC": ECKey, "OKP": OKPKey, "RSA": RSAKey}
    kind = kinds.get(str(data.get("kty")))
    if kind is None or "d" not in data:
        raise ValueError("a private EC, OKP or RSA JWK is needed")
    return kind.import_key(data)  # type: ignore[no-any-return]


@dataclass
class KeyedAgency:
    """An agency client authenticated by its key (``private_key_jwt``) with DPoP-bound tokens."""

    client_id: str
    key: Key
    proofer: Proofer = field(default_factory=Proofer)
    kid: str | None = None  # the registered key's kid when the key itself carries none (issuer_keys.SigningKey)

    @classmethod
    def from_file(cls, client_id: str, path: Path) -> KeyedAgency:
        """The private JWK ``dinhdanh clients add-agency --key-out`` wrote."""
        return cls(client_id, load_key(json.loads(Path(path).read_text())))

    @property
    def alg(self) -> str:
        return str(self.key.get("alg") or ALGS[self.key.key_type])

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def assertion(self, issuer: str) -> str:
        """A ``private_key_jwt`` client assertion (RFC 7523 §3), ``aud`` the issuer identifier (FAPI 2.0 §5.3.2.1)."""
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": issuer, "jti": secrets.token_urlsafe(16),
                  "iat": now, "exp": now + ASSERTION_LIFETIME}  # fmt: skip
        kid = self.kid or self.key.kid
        header = {"alg": self.alg, "typ": "JWT", **({"kid": kid} if kid else {})}
        return jwt.encode(header, claims, self.key, algorithms=[self.alg])

    def auth_form(self, issuer: str) -> dict[str, str]:
        """The form fields of ``private_key_jwt`` client authentication (RFC 7523 §2.2)."""
        return {"client_id": self.client_id, "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion(issuer)}  # fmt: skip

    async def token_response(
        self, http: httpx.AsyncClient, issuer: str, scope: str | None = None, resource: str | list[str] | None = None,
        token_endpoint: str | None = None, dpop: bool = True, **form: str,
    ) -> httpx.Response:  # fmt: skip
        """A ``client_credentials`` token request (RFC 6749 §4.4.2) with a DPoP proof (unless ``dpop`` is False: the
        profile then refuses it), retried once with the server's nonce (RFC 9449 §8)."""
        issuer = issuer.rstrip("/")
        url = token_endpoint or f"{issuer}/token"
        data: dict[str, Any] = {"grant_type": "client_credentials", **form}
        if scope:
            data["scope"] = scope
        if resource:
            data["resource"] = resource
        reply = None
        for _ in range(2):
            headers = {HEADER: self.proofer.proof("POST", url)} if dpop else {}
            reply = await http.post(url, data={**data, **self.auth_form(issuer)}, headers=headers)
            self.proofer.remember(reply.headers)
            if not dpop or not _asks_nonce(reply):
                break
        assert reply is not None
        return reply

    async def token(
        self, http: httpx.AsyncClient, issuer: str, scope: str | None = None, resource: str | list[str] | None = None,
        token_endpoint: str | None = None,
    ) -> str:  # fmt: skip
        """A DPoP-bound access token; a refusal is ``ValueError`` naming the OAuth error (RFC 6749 §5.2)."""
        reply = await self.token_response(http, issuer, scope, resource, token_endpoint)
        if reply.status_code != 200:
            raise ValueError(f"the token endpoint refused the agency: {_error(reply)}")
        return str(reply.json()["access_token"])

    def grpc_metadata(self, token: str, service: str, method: str) -> tuple[tuple[str, str], ...]:
        """``authorization: DPoP <token>`` and a fresh proof in ``dpop`` for one call of ``method``
        (``/package.Service/Method``) of ``service`` (its name, ``vault``)."""
        proof = self.proofer.proof("POST", grpc_htu(service, method), access_token=token, nonce="")
        return (("authorization", f"{SCHEME} {token}"), (GRPC_METADATA, proof))


def _asks_nonce(reply: httpx.Response) -> bool:
    if reply.status_code != 400:
        return False
    try:
        return bool(reply.json().get("error") == "use_dpop_nonce")
    except ValueError:
        return False


def _error(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return f"HTTP {reply.status_code}"
    if not isinstance(body, dict):
        return f"HTTP {reply.status_code}"
    return f"{body.get('error', reply.status_code)}: {body.get('error_description', '')}".rstrip(": ")
