"""Client registry (CLI), private_key_jwt, ES256 ID tokens, max_age, and signing-key rotation."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
import time
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from bench.browserless import Browser, SignIn, callback_params, csrf_of, pkce_pair, sign_in
from identity.oidc import keys
from identity.oidc.clients import KEY_AUTH, Client, new_client_id
from identity.oidc.store import ClientStore, SigningKeyStore
from identity.sealing import Sealer
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.oidc_helpers import person
from tests.test_cli import dinhdanh


@pytest.fixture
async def pool(info: StackInfo) -> AsyncIterator[asyncpg.Pool]:
    opened = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=2)
    yield opened
    await opened.close()


def test_portal_registration_rotation_and_disable(stack: Stack) -> None:
    code, made = dinhdanh(stack, "clients", "add-portal", "--name", "Cổng Bộ Tư pháp",
                          "--redirect-uri", "https://tuphap.example/callback", "--id-token-alg", "ES256")  # fmt: skip
    assert code == 0
    assert made["client_secret"]
    code, listed = dinhdanh(stack, "clients", "list")
    mine = next(c for c in listed["clients"] if c["client_id"] == made["client_id"])
    assert "client_secret" not in mine
    assert mine["id_token_alg"] == "ES256"
    code, rotated = dinhdanh(stack, "clients", "rotate-secret", made["client_id"])
    assert (code, rotated["client_secret"] != made["client_secret"]) == (0, True)
    code, disabled = dinhdanh(stack, "clients", "disable", made["client_id"])
    assert (code, disabled["disabled"]) == (0, True)
    code, bad = dinhdanh(stack, "clients", "add-portal", "--name", "x", "--redirect-uri", "http://evil.example/cb")
    assert code == 1
    assert "loopback only" in bad["error"]
    code, missing = dinhdanh(stack, "clients", "rotate-secret", "no-such-client")
    assert (code, missing["error"]) == (1, "no client no-such-client")


async def test_private_key_jwt_and_es256_id_tokens(
    http: httpx.AsyncClient, info: StackInfo, pool: asyncpg.Pool, fresh_citizen: Citizen
) -> None:
    key = ECKey.generate_key("P-256")
    public = {**key.as_dict(private=False), "kid": "rp-key-1", "alg": "ES256"}
    redirect = info.demo_portal + "/callback"
    client = Client(
        client_id=new_client_id("portal"), name="Cổng khóa riêng", kind="portal",
        grant_types=("authorization_code",), scopes=("openid", "profile"), auth_method=KEY_AUTH,
        redirect_uris=(redirect,), jwks={"keys": [public]}, id_token_alg="ES256",
    )  # fmt: skip
    await ClientStore(pool).add(client)
    who = await person(info, fresh_citizen)
    flow = SignIn(info.oidc_issuer, client.client_id, "", redirect, "openid profile")
    params = await sign_in(Browser(http), flow, who.id_number, who.password, who.code())
    now = int(time.time())
    assertion = jwt.encode(
        {"alg": "ES256", "kid": "rp-key-1"},
        {"iss": client.client_id, "sub": client.client_id, "aud": f"{info.oidc_issuer}/token",
         "jti": secrets.token_urlsafe(12), "iat": now, "exp": now + 60},
        key,
    )  # fmt: skip
    form = {
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": redirect,
        "code_verifier": params["_verifier"], "client_id": client.client_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }  # fmt: skip
    reply = await http.post(f"{info.oidc_issuer}/token", data=form)
    assert reply.status_code == 200, reply.text
    keyset = KeySet.import_key_set((await http.get(f"{info.oidc_issuer}/jwks")).json())
    assert jwt.decode(reply.json()["id_token"], keyset).header["alg"] == "ES256"
    replayed = await http.post(f"{info.oidc_issuer}/token", data=form)
    assert replayed.json()["error"] in ("invalid_client", "invalid_grant")


async def test_max_age_asks_for_credentials_again(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    who = await person(info, fresh_citizen)
    client = info.clients["portal"]
    flow = SignIn(info.oidc_issuer, client["client_id"], client["client_secret"], client["redirect_uris"][0])
    browser = Browser(http)
    await sign_in(browser, flow, who.id_number, who.password, who.code())
    _, challenge = pkce_pair()
    again = await browser.follow("GET", flow.authorize_url("s", "n", challenge), stop_at=flow.redirect_uri)
    assert "code" in callback_params(again)  # within the session: no prompt
    aged = SignIn(flow.issuer, flow.client_id, flow.client_secret, flow.redirect_uri, extra={"max_age": "0"})
    await asyncio.sleep(1.1)
    page = await browser.follow("GET", aged.authorize_url("s", "n", challenge), stop_at=flow.redirect_uri)
    assert 'name="password"' in page.text
    assert csrf_of(page)


async def test_rotation_publishes_before_signing_and_keeps_the_old_key(pool: asyncpg.Pool, stack: Stack) -> None:
    sealer = Sealer((stack.var / "secrets" / "identity.key").read_bytes(), "oidc-signing-key")
    store = SigningKeyStore(pool)
    before = {k.kid: k for k in await store.keys()}
    next_es = next(k for k in before.values() if k.alg == "ES256" and k.state == "next")
    current_es = next(k for k in before.values() if k.alg == "ES256" and k.state == "current")
    await keys.rotate(store, sealer, "ES256", longest_token=dt.timedelta(minutes=11))
    ring = keys.KeyRing(await store.keys(), sealer)
    assert ring.signing_key("ES256")[0] == next_es.kid  # the key published earlier now signs
    published = {k["kid"] for k in ring.jwks()["keys"]}
    assert current_es.kid in published  # the old one stays until its tokens expire
    assert len([k for k in published if k not in before]) == 1  # and a new next key is published
    assert json.dumps(ring.jwks()).count('"d"') == 0


def test_keys_rotate_command(stack: Stack) -> None:
    code, before = dinhdanh(stack, "keys", "rotate", "--alg", "RS256")
    assert code == 0
    states = [k["state"] for k in before["keys"] if k["alg"] == "RS256"]
    assert states.count("current") == 1
    assert states.count("next") == 1
    assert states.count("retired") >= 1
    code, bad = dinhdanh(stack, "keys", "rotate", "--alg", "HS256")
    assert code == 1
    assert "RS256" in bad["error"]
