"""The FAPI 2.0 Security Profile (identity/oidc/fapi.py) and pushed authorization requests (RFC 9126, par.py):
each requirement refused when missing, and a whole PAR + ``private_key_jwt`` sign-in of a portal on the profile."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from bench.browserless import Browser, callback_params, pkce_pair, sign_in
from bench.fapi import ClientKey, FapiSignIn, flow_for, register_portal
from core.errors import InvalidArgument
from core.keys.purposes import AUTHORIZATION_CODE
from identity.oidc import client_keys, fapi, par, registration
from identity.oidc.clients import FAPI2, SECRET_AUTH, TLS_AUTH, Client, new_client_id, new_secret
from identity.oidc.sealed import SealedCodec
from identity.oidc.server import CODE_TTL
from identity.oidc.store import ClientStore
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.oidc_helpers import person
from tests.test_cli import dinhdanh

REDIRECT = "https://fapi.example.gov.vn/cb"


@pytest.fixture(scope="module")
async def store(info: StackInfo) -> AsyncIterator[ClientStore]:
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
    try:
        yield ClientStore(pool)
    finally:
        await pool.close()


@pytest.fixture(scope="module")
async def portal(store: ClientStore) -> tuple[Client, ClientKey]:
    client, key = register_portal("Cổng dịch vụ công (FAPI 2.0, thử)", REDIRECT)
    await store.add(client)
    return client, key


class Published:
    """A client's jwks_uri: a small HTTP server in the test process, its JWK Set changed by the test."""

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.fetches = 0


@pytest.fixture(scope="module")
def published() -> Iterator[tuple[Published, str]]:
    holder = Published()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            holder.fetches += 1
            body = json.dumps(holder.jwks).encode()
            self.send_response(200)
            self.send_header("content-type", "application/jwk-set+json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield holder, f"http://127.0.0.1:{server.server_port}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def authorize_url(info: StackInfo, client_id: str, request_uri: str) -> str:
    return f"{info.oidc_issuer}/authorize?{urlencode({'client_id': client_id, 'request_uri': request_uri})}"


async def pushed(http: httpx.AsyncClient, flow: FapiSignIn) -> str:
    _, challenge = pkce_pair()
    reply = await flow.push(http, secrets.token_urlsafe(8), secrets.token_urlsafe(8), challenge)
    assert reply.status_code == 201, reply.text
    return str(reply.json()["request_uri"])


def answered(reply: httpx.Response, status: int, error: str) -> None:
    """An OAuth error response (RFC 6749 §5.2, RFC 9126 §2.3: ``invalid_client`` is 400, or 401 when the client
    tried HTTP authentication; 401 is accepted for any, as authlib answers for some)."""
    assert reply.status_code in ((400, 401) if error == "invalid_client" else (status,)), reply.text
    assert reply.json()["error"] == error, reply.text


def started(reply: httpx.Response) -> bool:
    """The authorization request was accepted: the browser is sent to the login page."""
    return reply.status_code == 303 and reply.headers["location"].endswith("/login")


def refused_uri(reply: httpx.Response) -> bool:
    return reply.status_code == 400 and "invalid_request_uri" in reply.text


async def test_discovery_advertises_what_is_enforced(http: httpx.AsyncClient, info: StackInfo) -> None:
    meta = (await http.get(f"{info.oidc_issuer}/.well-known/openid-configuration")).json()
    assert meta["pushed_authorization_request_endpoint"] == f"{info.oidc_issuer}/par"
    assert meta["require_pushed_authorization_requests"] is False  # per client: the fapi2 ones
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert set(fapi.SIGNING_ALGS) <= set(meta["token_endpoint_auth_signing_alg_values_supported"])
    assert {"private_key_jwt", "tls_client_auth"} <= set(meta["token_endpoint_auth_methods_supported"])
    if "mtls_endpoint_aliases" in meta:
        assert meta["mtls_endpoint_aliases"]["pushed_authorization_request_endpoint"].endswith("/par")


async def test_a_fapi2_portal_signs_in_with_par_and_private_key_jwt(
    http: httpx.AsyncClient, stack: Stack, info: StackInfo, portal: tuple[Client, ClientKey], fresh_citizen: Citizen
) -> None:
    client, key = portal
    flow = flow_for(info.oidc_issuer, client, key)
    who = await person(info, fresh_citizen)
    params = await sign_in(Browser(http), flow, who.id_number, who.password, who.code())
    assert flow.par_reply is not None
    body = flow.par_reply.json()
    assert body["request_uri"].startswith(par.URN)
    assert 60 <= body["expires_in"] <= 90 < 600  # RFC 9126 §2.2; FAPI 2.0 §5.3.2.2
    assert params.get("iss") == info.oidc_issuer, params  # RFC 9207
    assert params["state"] == params["_state"], params
    assert "code" in params, params

    # a code 61 s old is refused (FAPI 2.0 §5.3.2.2), though sealed with the edge's own key and not expired
    assert CODE_TTL <= fapi.MAX_CODE_AGE == 60
    codes = SealedCodec(stack.secrets.keys("edge").key(AUTHORIZATION_CODE), "authorization-code")
    claims = codes.decode(params["code"])
    assert claims is not None
    old = codes.encode({**claims, "iat": claims["iat"] - 61, "jti": secrets.token_urlsafe(12)}, ttl=CODE_TTL)
    stale = await flow.redeem(http, old, params["_verifier"])
    answered(stale, 400, "invalid_grant")

    tokens = await flow.redeem(http, params["code"], params["_verifier"])
    assert tokens.status_code == 200, tokens.text
    keys = KeySet.import_key_set((await http.get(f"{info.oidc_issuer}/jwks")).json())
    id_token = jwt.decode(tokens.json()["id_token"], keys, algorithms=["ES256"])
    assert id_token.header["alg"] in fapi.SIGNING_ALGS
    assert id_token.claims["aud"] in (client.client_id, [client.client_id])
    again = await flow.redeem(http, params["code"], params["_verifier"])  # single use
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_an_unpushed_request_of_a_fapi2_client_is_refused(
    http: httpx.AsyncClient, info: StackInfo, portal: tuple[Client, ClientKey]
) -> None:
    client, key = portal
    flow = flow_for(info.oidc_issuer, client, key)
    _, challenge = pkce_pair()
    reply = await http.get(flow.authorize_url("st-1", "n-1", challenge))
    assert reply.status_code == 303, reply.text
    assert reply.headers["location"].startswith(REDIRECT)
    answer = callback_params(reply)
    assert answer["error"] == "invalid_request"
    assert answer["state"] == "st-1"
    assert answer["iss"] == info.oidc_issuer
    assert "code" not in answer
    elsewhere = dataclasses.replace(flow, redirect_uri="https://elsewhere.example/cb")
    page = await http.get(elsewhere.authorize_url("st-2", "n-2", challenge))
    assert page.status_code == 400
    assert "location" not in page.headers


async def test_pushed_parameters_are_validated_as_an_authorization_request(
    http: httpx.AsyncClient, info: StackInfo, portal: tuple[Client, ClientKey]
) -> None:
    client, key = portal
    flow = flow_for(info.oidc_issuer, client, key)
    for change, error in (
        ({"code_challenge": ""}, "invalid_request"),  # PKCE is required
        ({"code_challenge_method": "plain"}, "invalid_request"),  # S256 only
        ({"redirect_uri": "https://elsewhere.example/cb"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"resource": "urn:dinhdanh:service:vault"}, "invalid_target"),  # not registered for it
        ({"request_uri": par.URN + "x"}, "invalid_request"),
    ):
        _, challenge = pkce_pair()
        data = {**flow.pushed_params("s", "n", challenge), **change, **key.auth(client.client_id, info.oidc_issuer)}
        reply = await http.post(f"{info.oidc_issuer}/par", data=data)
        assert reply.status_code == 400, (change, reply.text)
        assert reply.json()["error"] == error, (change, reply.text)


async def test_an_expired_request_uri_is_refused(
    http: httpx.AsyncClient, info: StackInfo, store: ClientStore, portal: tuple[Client, ClientKey]
) -> None:
    client, key = portal
    request_uri = await pushed(http, flow_for(info.oidc_issuer, client, key))
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        await conn.execute("UPDATE oidc.pushed_requests SET expires_at = now() - interval '1 second'"
                           " WHERE client_id = $1", client.client_id)  # fmt: skip
    finally:
        await conn.close()
    assert refused_uri(await http.get(authorize_url(info, client.client_id, request_uri)))


async def test_a_request_uri_is_used_once_however_many_use_it_at_once(
    http: httpx.AsyncClient, info: StackInfo, portal: tuple[Client, ClientKey]
) -> None:
    client, key = portal
    for _ in range(2):
        url = authorize_url(info, client.client_id, await pushed(http, flow_for(info.oidc_issuer, client, key)))
        replies = await asyncio.gather(*(http.get(url) for _ in range(8)))
        assert sum(started(r) for r in replies) == 1, [(r.status_code, r.text[:100]) for r in replies]
        assert all(started(r) or refused_uri(r) for r in replies)
        assert refused_uri(await http.get(url))


async def test_another_clients_request_uri_is_refused(
    http: httpx.AsyncClient, info: StackInfo, store: ClientStore, portal: tuple[Client, ClientKey]
) -> None:
    client, key = portal
    other, _ = register_portal("Cổng khác (FAPI 2.0, thử)", REDIRECT)
    await store.add(other)
    request_uri = await pushed(http, flow_for(info.oidc_issuer, client, key))
    assert refused_uri(await http.get(authorize_url(info, other.client_id, request_uri)))
    no_client = await http.get(f"{info.oidc_issuer}/authorize?{urlencode({'request_uri': request_uri})}")
    assert no_client.status_code == 400  # RFC 9126 §4: the client_id is required too
    assert started(await http.get(authorize_url(info, client.client_id, request_uri)))  # still the pusher's


async def test_an_rs256_client_on_the_profile_is_refused(
    http: httpx.AsyncClient, info: StackInfo, store: ClientStore
) -> None:
    with pytest.raises(InvalidArgument, match="RS256"):
        registration.portal("Cổng RS256", [REDIRECT], id_token_alg="RS256", profile=FAPI2, jwks=ClientKey().jwks())
    # at use: a client on the profile whose ID tokens would be RS256 (written around the registration)
    good, key = register_portal("Cổng ES256", REDIRECT)
    rs256 = dataclasses.replace(good, client_id=new_client_id("portal"), id_token_alg="RS256")
    await store.add(rs256)
    reply = await http.post(f"{info.oidc_issuer}/par", data={
        **flow_for(info.oidc_issuer, rs256, key).pushed_params("s", "n", pkce_pair()[1]),
        **key.auth(rs256.client_id, info.oidc_issuer)})  # fmt: skip
    answered(reply, 401, "invalid_client")
    page = await http.get(flow_for(info.oidc_issuer, rs256, key).authorize_url("s", "n", pkce_pair()[1]))
    assert page.status_code == 400
    assert "invalid_client" in page.text

    # a client assertion signed RS256 on the profile is refused; PS256 with the same RSA key is accepted
    rsa = RSAKey.generate_key(2048)
    signer = ClientKey(key=rsa, kid="rsa-1", alg="PS256")
    client, _ = register_portal("Cổng PS256", REDIRECT, key=signer)
    await store.add(client)
    flow = flow_for(info.oidc_issuer, client, signer)
    assert (await flow.push(http, "s", "n", pkce_pair()[1])).status_code == 201
    flow.key = ClientKey(key=rsa, kid="rsa-1", alg="RS256")
    reply = await flow.push(http, "s", "n", pkce_pair()[1])
    answered(reply, 401, "invalid_client")
    # and the assertion's aud is the issuer identifier only (FAPI 2.0 §5.3.2.1)
    data = {**flow.pushed_params("s", "n", pkce_pair()[1]), "client_id": client.client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": signer.assertion(client.client_id, f"{info.oidc_issuer}/token")}  # fmt: skip
    reply = await http.post(f"{info.oidc_issuer}/par", data=data)
    answered(reply, 401, "invalid_client")


async def test_client_secret_basic_on_the_profile_is_refused(
    http: httpx.AsyncClient, info: StackInfo, store: ClientStore
) -> None:
    good, key = register_portal("Cổng khóa", REDIRECT)
    secret, digest = new_secret()
    with_secret = dataclasses.replace(good, client_id=new_client_id("portal"), auth_method=SECRET_AUTH,
                                      secret_hash=digest, jwks=None)  # fmt: skip
    await store.add(with_secret)
    params = flow_for(info.oidc_issuer, with_secret, key).pushed_params("s", "n", pkce_pair()[1])
    reply = await http.post(f"{info.oidc_issuer}/par", data=params, auth=(with_secret.client_id, secret))
    answered(reply, 401, "invalid_client")
    reply = await http.post(f"{info.oidc_issuer}/token", auth=(with_secret.client_id, secret), data={
        "grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT, "code_verifier": "v" * 43,
    })  # fmt: skip
    answered(reply, 401, "invalid_client")
    agency, agency_secret = registration.agency("Sở FAPI", ["lookup"], profile=FAPI2)
    assert agency.auth_method == TLS_AUTH
    assert agency.secret_hash is None
    assert not agency_secret


async def test_keys_published_at_the_jwks_uri_are_used_and_a_rotation_picked_up(
    http: httpx.AsyncClient, info: StackInfo, store: ClientStore, published: tuple[Published, str]
) -> None:
    holder, uri = published
    first, second = ClientKey(), ClientKey()
    holder.jwks = first.jwks()
    client, _ = register_portal("Cổng jwks_uri", REDIRECT, key=first, jwks_uri=uri)
    assert client.jwks is None
    assert client.jwks_uri == uri
    await store.add(client)
    flow = flow_for(info.oidc_issuer, client, first)
    assert (await flow.push(http, "s", "n", pkce_pair()[1])).status_code == 201
    assert (await flow.push(http, "s", "n", pkce_pair()[1])).status_code == 201
    assert holder.fetches == 1  # cached
    holder.jwks = second.jwks()  # the client rotates its key
    await asyncio.sleep(client_keys.REFETCH_SECONDS + 0.2)
    flow.key = second
    reply = await flow.push(http, "s", "n", pkce_pair()[1])
    assert reply.status_code == 201, reply.text  # an unknown kid: fetched again
    assert holder.fetches == 2
    flow.key = first
    answered(await flow.push(http, "s", "n", pkce_pair()[1]), 401, "invalid_client")  # the retired key is refused


def test_the_cli_registers_portals_and_agencies_on_the_profile(stack: Stack, published: tuple[Published, str]) -> None:
    _, uri = published
    code, made = dinhdanh(stack, "clients", "add-portal", "--name", "Cổng CLI (FAPI 2.0)", "--redirect-uri", REDIRECT,
                          "--profile", "fapi2", "--jwks-uri", uri)  # fmt: skip
    assert code == 0, made
    assert made["profile"] == "fapi2"
    assert made["token_endpoint_auth_method"] == "private_key_jwt"
    assert made["jwks_uri"] == uri
    assert made["id_token_alg"] == "ES256"
    assert "client_secret" not in made
    assert made["require_pushed_authorization_requests"] is True
    code, refused = dinhdanh(stack, "clients", "add-portal", "--name", "Cổng RS256", "--redirect-uri", REDIRECT,
                             "--profile", "fapi2", "--jwks-uri", uri, "--id-token-alg", "RS256")  # fmt: skip
    assert code != 0
    assert "RS256" in json.dumps(refused, ensure_ascii=False)
    code, agency = dinhdanh(stack, "clients", "add-agency", "--name", "Sở FAPI (CLI)", "--purpose", "lookup",
                            "--jwks-uri", uri)  # fmt: skip
    assert code == 0, agency
    assert agency["profile"] == "fapi2"
    assert agency["token_endpoint_auth_method"] == "private_key_jwt"
