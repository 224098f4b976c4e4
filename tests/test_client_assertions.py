"""``private_key_jwt`` client assertions (RFC 7523 §3, OpenID Connect Core §9): single use across edge processes
for their whole acceptance window, and a bounded lifetime."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from identity.oidc.clients import KEY_AUTH, Client, new_client_id
from identity.oidc.store import ClientStore
from stack.info import StackInfo
from stack.supervisor import Stack
from tests import edge_replica

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KEY = ECKey.generate_key("P-256")


@pytest.fixture(scope="module")
async def agency(info: StackInfo) -> str:
    """An agency that authenticates with its own key (``private_key_jwt``)."""
    public = {**KEY.as_dict(private=False), "kid": "agency-key-1", "alg": "ES256"}
    client = Client(
        client_id=new_client_id("agency"), name="Sở Tư pháp (khóa riêng)", kind="agency",
        grant_types=("client_credentials",), scopes=("vault.read",), auth_method=KEY_AUTH, jwks={"keys": [public]},
        purposes=("criminal-record",),
    )  # fmt: skip
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=1)
    try:
        await ClientStore(pool).add(client)
    finally:
        await pool.close()
    return client.client_id


@pytest.fixture(scope="module")
async def second_edge(stack: Stack) -> AsyncIterator[str]:
    """Another edge process on the same database and issuer (as a second replica behind a load balancer)."""
    async with edge_replica.second_edge(stack, "edge-2") as base:
        yield base


def assertion(info: StackInfo, client_id: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": f"{info.oidc_issuer}/token",
            "jti": secrets.token_urlsafe(12), "iat": now, "exp": now + 60, **claims}  # fmt: skip
    return jwt.encode({"alg": "ES256", "kid": "agency-key-1"}, {k: v for k, v in body.items() if v is not None}, KEY)


async def token(http: httpx.AsyncClient, base: str, client_id: str, signed: str) -> httpx.Response:
    return await http.post(f"{base}/token", data={
        "grant_type": "client_credentials", "scope": "vault.read", "client_id": client_id,
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": signed,
    })  # fmt: skip


async def test_one_assertion_replayed_in_parallel_on_two_edges_succeeds_once(
    http: httpx.AsyncClient, info: StackInfo, agency: str, second_edge: str
) -> None:
    for _ in range(3):  # a few rounds: each must admit exactly one of its replays
        signed = assertion(info, agency)
        bases = [info.oidc_issuer, second_edge] * 6
        replies = await asyncio.gather(*(token(http, base, agency, signed) for base in bases))
        statuses = sorted(r.status_code for r in replies)
        assert statuses.count(200) == 1, [(r.status_code, r.text[:120]) for r in replies]
        refused = [r for r in replies if r.status_code != 200]
        assert {r.json()["error"] for r in refused} == {"invalid_client"}  # RFC 6749 §5.2: 400 or 401
    fresh = await token(http, second_edge, agency, assertion(info, agency))
    assert fresh.status_code == 200, fresh.text  # a new jti is welcome


async def test_long_lived_or_unbounded_assertions_are_refused(
    http: httpx.AsyncClient, info: StackInfo, agency: str
) -> None:
    now = int(time.time())
    for claims in (
        {"exp": now + 3600},  # valid for an hour
        {"iat": now - 600, "exp": now + 60},  # made to last 11 minutes
        {"iat": None, "exp": now + 400},  # no iat, but the window is still too long
        {"exp": None},  # no expiry at all
    ):
        reply = await token(http, info.oidc_issuer, agency, assertion(info, agency, **claims))
        assert reply.status_code in (400, 401), (claims, reply.text)
        assert reply.json()["error"] == "invalid_client"
    ok = await token(http, info.oidc_issuer, agency, assertion(info, agency, iat=now, exp=now + 300))
    assert ok.status_code == 200, ok.text


async def test_a_clients_expired_assertion_ids_are_pruned_as_it_authenticates(
    http: httpx.AsyncClient, info: StackInfo, agency: str
) -> None:
    """The table of used ids holds each client's acceptance window, not its history."""
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        await conn.execute(
            "INSERT INTO oidc.client_assertions (client_id, jti, expires_at)"
            " SELECT $1, 'old-' || n, now() - interval '1 minute' FROM generate_series(1, 20) AS n",
            agency,
        )
        reply = await token(http, info.oidc_issuer, agency, assertion(info, agency))
        assert reply.status_code == 200, reply.text
        left = await conn.fetchval(
            "SELECT count(*) FROM oidc.client_assertions WHERE client_id = $1 AND expires_at < now()", agency
        )
        live = await conn.fetchval(
            "SELECT count(*) FROM oidc.client_assertions WHERE client_id = $1 AND expires_at >= now()", agency
        )
    finally:
        await conn.close()
    assert left == 0
    assert live >= 1  # the one just used stays until its window ends
