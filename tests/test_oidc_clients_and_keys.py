"""Client registry (CLI), private_key_jwt, ES256 ID tokens, max_age, and signing-key rotation."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import asyncpg
import grpc
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from bench.browserless import Browser, SignIn, callback_params, csrf_of, pkce_pair, sign_in
from core.keys.purposes import OIDC_SIGNING_KEY
from core.keys.sealing import Sealer
from identity.oidc import keys
from identity.oidc.clients import KEY_AUTH, Client, new_client_id
from identity.oidc.store import ClientStore, SigningKeyStore
from protos.registry.v1 import registry_pb2 as rpb
from protos.registry.v1 import registry_pb2_grpc as rgrpc
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vpb_grpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import channel_as
from tests.oidc_helpers import person
from tests.test_cli import dinhdanh
from tests.test_token_to_service import access_token
from tests.vault_helpers import bearer as vault_bearer
from tests.vault_helpers import citizen_token


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
    sealer = Sealer(stack.secrets.keys("edge").key(OIDC_SIGNING_KEY))
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


# -- rotation and revocation through the running platform ----------------------------------------------------

WITHIN = 5.0  # seconds: ten revocation polls (0.5 s); a bound on staleness, not a speed claim


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


async def published(http: httpx.AsyncClient, info: StackInfo) -> set[str]:
    reply = await http.get(f"{info.oidc_issuer}/jwks")
    assert reply.status_code == 200
    return {k["kid"] for k in reply.json()["keys"]}


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WITHIN
    while not await check():
        assert time.monotonic() < deadline, f"not within {WITHIN} s: {what}"
        await asyncio.sleep(0.1)


async def record_status(stack: Stack, token: str) -> grpc.StatusCode:
    async with channel_as(stack, "registry", "edge") as channel:
        try:
            await rgrpc.PopulationRegistryStub(channel).GetMyRecord(
                rpb.GetMyRecordRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=10
            )
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def userinfo_status(http: httpx.AsyncClient, info: StackInfo, token: str) -> int:
    reply = await http.get(f"{info.oidc_issuer}/userinfo", headers={"authorization": f"Bearer {token}"})
    return reply.status_code


async def record_token(http: httpx.AsyncClient, info: StackInfo, stack: Stack, citizen: Citizen) -> str:
    return (await access_token(http, info, stack, citizen, "openid profile"))[0]


async def es256(pool: asyncpg.Pool, state: str) -> str:
    return str(await pool.fetchval("SELECT kid FROM oidc.signing_keys WHERE alg = 'ES256' AND state = $1", state))


async def test_rotation_through_the_running_edge(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, pool: asyncpg.Pool, fresh_citizens: Iterator[Citizen]
) -> None:
    """/jwks before and after `dinhdanh keys rotate`; new tokens signed with the key published earlier; tokens of
    the old key verified (edge and registry) until its retire_after passes, never after."""
    before = await published(http, info)
    current, upcoming = await es256(pool, "current"), await es256(pool, "next")
    assert {current, upcoming} <= before
    old_token = await record_token(http, info, stack, next(fresh_citizens))
    assert kid_of(old_token) == current
    assert await record_status(stack, old_token) == grpc.StatusCode.OK

    code, _ = dinhdanh(stack, "keys", "rotate", "--alg", "ES256")
    assert code == 0
    newest = await es256(pool, "next")

    async def edge_rotated() -> bool:
        return newest in await published(http, info)

    await eventually(edge_rotated, "the running edge publishes the new next key")
    after = await published(http, info)
    assert {current, upcoming, newest} <= after  # the retired key stays published while its tokens live
    new_token = await record_token(http, info, stack, next(fresh_citizens))
    assert kid_of(new_token) == upcoming  # signed by the key that was published before it signed
    for token in (old_token, new_token):
        assert await record_status(stack, token) == grpc.StatusCode.OK
        assert await userinfo_status(http, info, token) == 200

    # time passes: the old key's tokens have all expired, so its retire_after is behind us
    await pool.execute("UPDATE oidc.signing_keys SET retire_after = now() - interval '1 s' WHERE kid = $1", current)

    async def old_refused() -> bool:
        return await record_status(stack, old_token) == grpc.StatusCode.UNAUTHENTICATED

    async def edge_refuses_old() -> bool:
        return await userinfo_status(http, info, old_token) == 401 and current not in await published(http, info)

    await eventually(old_refused, "the registry stops trusting the retired key")
    await eventually(edge_refuses_old, "the edge stops publishing and trusting the retired key")
    assert await record_status(stack, new_token) == grpc.StatusCode.OK
    assert await userinfo_status(http, info, new_token) == 200


async def test_a_revoked_key_stops_verifying_at_every_service(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, pool: asyncpg.Pool, fresh_citizens: Iterator[Citizen]
) -> None:
    """`dinhdanh keys revoke KID` on the signing key: its tokens are refused by the edge, the registry and the
    vault within the revocation poll interval; the next key takes over at once and a fresh next is published."""
    registry_token = await record_token(http, info, stack, next(fresh_citizens))
    vault_token = await citizen_token(http, info, next(fresh_citizens))
    compromised = kid_of(registry_token)
    assert kid_of(vault_token) == compromised == await es256(pool, "current")
    async with channel_as(stack, "vault", "edge") as channel:
        vault = vpb_grpc.VaultStub(channel)

        async def vault_status() -> grpc.StatusCode:
            try:
                await vault.ListDocuments(vpb.ListDocumentsRequest(), metadata=vault_bearer(vault_token), timeout=10)
            except grpc.aio.AioRpcError as error:
                return error.code()
            return grpc.StatusCode.OK

        assert await vault_status() == grpc.StatusCode.OK
        assert await record_status(stack, registry_token) == grpc.StatusCode.OK
        upcoming = await es256(pool, "next")

        code, out = dinhdanh(stack, "keys", "revoke", compromised)
        assert code == 0, out
        assert compromised not in {k["kid"] for k in out["keys"]}

        async def refused_everywhere() -> bool:
            return (await vault_status(), await record_status(stack, registry_token)) == (
                grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip

        await eventually(refused_everywhere, "the vault and the registry refuse the revoked key's tokens")

    async def edge_refuses() -> bool:
        return await userinfo_status(http, info, registry_token) == 401 and compromised not in await published(
            http, info)  # fmt: skip

    await eventually(edge_refuses, "the edge stops publishing and trusting the revoked key")
    assert await es256(pool, "current") == upcoming
    replacement = await record_token(http, info, stack, next(fresh_citizens))
    assert kid_of(replacement) == upcoming
    assert await record_status(stack, replacement) == grpc.StatusCode.OK
    code, unknown = dinhdanh(stack, "keys", "revoke", "no-such-kid")
    assert (code, unknown["error"]) == (1, "no signing key no-such-kid")
