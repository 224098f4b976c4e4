"""A whole stack started with ``DINHDANH_KEY_BACKEND=pkcs11``: the OP's keys, the log's checkpoint key and the
issuer's key are in the SoftHSM2 token, and what they sign verifies with what the edge publishes."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator, Callable, Iterator

import asyncpg
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from audit import checkpoint as notes
from core.keys import purposes
from core.keys.pkcs11 import Token
from identity.oidc import keys
from identity.oidc.keys import TOKEN_PREFIX
from identity.oidc.store import SigningKeyStore
from issuance.status_list import verify_status_list
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.conftest import own_stack
from tests.hsm.conftest import SoftHSM
from tests.oidc_helpers import person, portal_flow, signed_in

SEEDED = 20


@pytest.fixture(scope="module")
async def hsm_stack(softhsm: SoftHSM, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Every process of this stack signs with the token (the others read only their file keys from it)."""
    before = {name: os.environ.get(name) for name in softhsm.env()}
    os.environ.update(softhsm.env())
    try:
        async with own_stack(tmp_path_factory.mktemp("hsm-var"), SEEDED) as running:
            _restore(before)  # every process has them by now; stacks started later must not
            yield running
    finally:
        _restore(before)


def _restore(before: dict[str, str | None]) -> None:
    for name, value in before.items():
        if name == "SOFTHSM2_CONF":
            continue  # this process's module was loaded with it
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def hsm_info(hsm_stack: Stack) -> StackInfo:
    return StackInfo.load(hsm_stack.info_path)


@pytest.fixture(scope="module")
def hsm_citizens() -> Iterator[Citizen]:
    from registry.generator import generate

    return iter(list(generate(SEEDED))[1:])


async def _eventually(http: httpx.AsyncClient, url: str) -> httpx.Response:
    for _ in range(120):
        reply = await http.get(url)
        if reply.status_code == 200:
            return reply
        await asyncio.sleep(0.5)
    raise AssertionError(f"{url}: {reply.status_code} {reply.text[:200]}")


async def test_the_ops_tokens_are_signed_in_the_token_and_verify_with_the_jwks(
    hsm_info: StackInfo, http: httpx.AsyncClient, token: Token, hsm_citizens: Iterator[Citizen]
) -> None:
    jwks = (await http.get(f"{hsm_info.oidc_issuer}/jwks")).json()
    assert {key["alg"] for key in jwks["keys"]} == {"RS256", "ES256"}
    assert all("d" not in key and "p" not in key for key in jwks["keys"])
    connection = await asyncpg.connect(hsm_info.postgres_dsn)
    try:
        rows = await connection.fetch("SELECT kid, sealed_key, public_jwk FROM oidc.signing_keys")
    finally:
        await connection.close()
    assert {row["kid"] for row in rows} == {key["kid"] for key in jwks["keys"]}
    for row in rows:  # no sealed private key in the database: a label in the token, whose key is the published one
        reference = bytes(row["sealed_key"])
        assert reference.startswith(TOKEN_PREFIX)
        held = token.find(reference[len(TOKEN_PREFIX) :].decode())
        assert held is not None
        assert held.kid == row["kid"]

    who = await person(hsm_info, next(hsm_citizens))
    flow = portal_flow(hsm_info, scope="openid profile")
    _, params = await signed_in(http, flow, who)
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code == 200, reply.text
    published = KeySet.import_key_set(jwks)
    tokens = reply.json()
    access = jwt.decode(tokens["access_token"], published, algorithms=["ES256"])
    assert access.header["kid"] in {key["kid"] for key in jwks["keys"] if key["alg"] == "ES256"}
    identity = jwt.decode(tokens["id_token"], published, algorithms=["RS256", "ES256"])
    assert identity.claims["nonce"] == params["_nonce"]
    assert identity.claims["iss"] == hsm_info.oidc_issuer
    userinfo = await http.get(f"{hsm_info.oidc_issuer}/userinfo",
                              headers={"Authorization": f"Bearer {tokens['access_token']}"})  # fmt: skip
    assert userinfo.status_code == 200  # the edge verifies what the token signed


async def test_the_logs_checkpoints_are_signed_in_the_token(
    hsm_stack: Stack, hsm_info: StackInfo, http: httpx.AsyncClient, token: Token
) -> None:
    vkey = (await _eventually(http, f"{hsm_info.oidc_issuer}/log/key")).text.strip()
    name, public = notes.parse_vkey(vkey)
    held = token.find(purposes.LOG_SIGNING)
    assert held is not None
    assert held.public.public_bytes_raw() == public.public_bytes_raw()  # type: ignore[union-attr]
    note = (await _eventually(http, f"{hsm_info.oidc_issuer}/log/checkpoint")).text
    assert notes.verify(note, name, public).size >= 1
    portal = hsm_stack.services["portal"].env
    assert portal is not None
    assert portal["DINHDANH_PORTAL_LOG_KEY"] == vkey  # the key the portal pins is the token's too


async def test_the_issuers_status_list_is_signed_in_the_token(
    hsm_info: StackInfo, http: httpx.AsyncClient, token: Token
) -> None:
    metadata = (await _eventually(http, f"{hsm_info.oidc_issuer}/.well-known/jwt-vc-issuer")).json()
    held = token.find(purposes.ISSUANCE_SIGNING)
    assert held is not None
    assert held.kid in {key["kid"] for key in metadata["jwks"]["keys"]}
    url = f"{hsm_info.oidc_issuer}/statuslists/0"
    listed = (await _eventually(http, url)).text
    verified = verify_status_list(listed, metadata["jwks"], uri=url, at=dt.datetime.now(dt.UTC))
    assert verified.uri == url
    assert jwt.decode(listed, KeySet.import_key_set(metadata["jwks"]), algorithms=["ES256"]).header["kid"] == held.kid


async def test_rotation_and_revocation_make_and_destroy_keys_in_the_token(
    hsm_info: StackInfo, http: httpx.AsyncClient, token: Token
) -> None:
    """What ``dinhdanh keys rotate/revoke`` do with the edge's token: the new next key is made in the token and
    published; a revoked key leaves the JWKS and its pair is destroyed in the token."""
    pool = await asyncpg.create_pool(hsm_info.postgres_dsn, min_size=1, max_size=2)
    try:
        store = SigningKeyStore(pool)
        held = keys.TokenKeys(token, None)
        await keys.rotate(store, held, "ES256", dt.timedelta(minutes=10))
        stored = {k.kid: k for k in await store.keys()}
        fresh = next(k for k in stored.values() if k.alg == "ES256" and k.state == "next")
        assert fresh.sealed_key.startswith(TOKEN_PREFIX)
        current = next(k for k in stored.values() if k.alg == "ES256" and k.state == "current")
        await _published(http, hsm_info, lambda kids: fresh.kid in kids)
        assert await keys.revoke(store, held, current.kid) is not None
        await _published(http, hsm_info, lambda kids: current.kid not in kids)
        assert token.find(current.sealed_key[len(TOKEN_PREFIX) :].decode()) is None
    finally:
        await pool.close()
    who_signs = (await http.get(f"{hsm_info.oidc_issuer}/jwks")).json()["keys"]
    assert fresh.kid in {key["kid"] for key in who_signs}  # the published next key took over


async def _published(http: httpx.AsyncClient, info: StackInfo, ready: Callable[[set[str]], bool]) -> None:
    for _ in range(40):
        if ready({key["kid"] for key in (await http.get(f"{info.oidc_issuer}/jwks")).json()["keys"]}):
            return
        await asyncio.sleep(0.25)
    raise AssertionError("the edge's JWKS did not follow the key table")
