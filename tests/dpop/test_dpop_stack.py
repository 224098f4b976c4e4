"""DPoP on the running platform (RFC 9449): the token endpoint binds tokens to the proof's key and asks for its
nonce (§5, §8); userinfo (§7, §9) and a gRPC service (the shared interceptor: ``dpop`` metadata, ``htu``
``https://vault/<package.Service>/<Method>``) take a bound token only with a fresh proof by that key, used once
across every edge process; clients that must have sender-constrained tokens are refused without one."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from bench.dpop_client import grpc_metadata, post_token, userinfo
from core.keys import purposes
from identity.oidc import dpop
from identity.oidc.clients import FAPI2, KEY_AUTH, SECRET_AUTH, Client, digest, new_client_id
from identity.oidc.dpop import Proofer
from identity.oidc.store import ClientStore
from protos.vault.v1 import vault_pb2 as vpb
from protos.vault.v1 import vault_pb2_grpc as vgrpc
from stack.info import StackInfo
from stack.supervisor import Stack
from tests import edge_replica
from tests.conftest import channel_as
from tests.oidc_helpers import person, portal_flow, signed_in

VAULT = "urn:dinhdanh:service:vault"
LIST = "/dinhdanh.vault.v1.Vault/ListDocuments"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class Bound:
    token: str
    proofer: Proofer
    asked: httpx.Response  # the first token request: no nonce yet
    granted: httpx.Response


def _payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


@pytest.fixture(scope="module")
async def bound(http: httpx.AsyncClient, info: StackInfo, fresh_citizens: Any) -> Bound:
    """A citizen signed in at the portal, its code redeemed with a DPoP proof: first without the nonce."""
    who = await person(info, next(fresh_citizens))
    flow = portal_flow(info, scope="openid profile vault.read", resource=VAULT)
    _, params = await signed_in(http, flow, who)
    proofer = Proofer()
    url = f"{info.oidc_issuer}/token"
    data = {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": flow.redirect_uri,
            "code_verifier": params["_verifier"]}  # fmt: skip
    asked = await http.post(url, data=data, auth=(flow.client_id, flow.client_secret),
                            headers={"DPoP": proofer.proof("POST", url)})  # fmt: skip
    proofer.remember(asked.headers)
    granted = await post_token(http, url, proofer, data, auth=(flow.client_id, flow.client_secret))
    assert granted.status_code == 200, granted.text
    return Bound(granted.json()["access_token"], proofer, asked, granted)


@pytest.fixture(scope="module")
async def vault_stub(stack: Stack) -> AsyncIterator[vgrpc.VaultStub]:
    async with channel_as(stack, "vault", "edge") as channel:
        yield vgrpc.VaultStub(channel)


@pytest.fixture(scope="module")
async def second_edge(stack: Stack) -> AsyncIterator[str]:
    """Another edge process on the same database and issuer (a second replica behind a load balancer)."""
    async with edge_replica.second_edge(stack, "edge-dpop-2") as base:
        yield base


async def _add(info: StackInfo, client: Client) -> None:
    pool = await asyncpg.create_pool(info.postgres_dsn, min_size=1, max_size=1)
    try:
        await ClientStore(pool).add(client)
    finally:
        await pool.close()


def _dpop_error(reply: httpx.Response, error: str, words: str) -> None:
    assert reply.status_code == 401, reply.text
    challenge = reply.headers["www-authenticate"]
    assert challenge.startswith("DPoP "), challenge
    assert f'error="{error}"' in challenge, challenge
    assert words in reply.json()["error_description"], reply.text


# -- the token endpoint ------------------------------------------------------------------------------------------


async def test_discovery_advertises_the_proof_algorithms(http: httpx.AsyncClient, info: StackInfo) -> None:
    metadata = (await http.get(f"{info.oidc_issuer}/.well-known/openid-configuration")).json()
    assert metadata["dpop_signing_alg_values_supported"] == ["ES256", "PS256", "EdDSA"]


async def test_the_token_endpoint_asks_for_its_nonce_then_binds_the_token(bound: Bound) -> None:
    assert bound.asked.status_code == 400
    assert bound.asked.json()["error"] == "use_dpop_nonce"
    assert bound.asked.headers["dpop-nonce"]
    body = bound.granted.json()
    assert body["token_type"] == "DPoP"  # §5
    assert _payload(bound.token)["cnf"] == {"jkt": bound.proofer.jkt}  # §6.1
    assert bound.granted.headers["dpop-nonce"]


async def test_a_token_request_with_a_bad_proof_is_refused(http: httpx.AsyncClient, info: StackInfo) -> None:
    proofer = Proofer()
    url = f"{info.oidc_issuer}/token"
    data = {"grant_type": "client_credentials"}
    first = await post_token(http, url, proofer, data)  # the nonce, learnt on the way
    assert first.json()["error"] != "use_dpop_nonce", first.text
    wrong_htu = await http.post(url, data=data, headers={"DPoP": proofer.proof("POST", f"{info.oidc_issuer}/par")})
    assert wrong_htu.status_code == 400, wrong_htu.text
    assert wrong_htu.json()["error"] == "invalid_dpop_proof", wrong_htu.text
    stale = dpop.Nonces(b"\0" * 32).mint()
    foreign = await http.post(url, data=data, headers={"DPoP": proofer.proof("POST", url, nonce=stale)})
    assert foreign.json()["error"] == "use_dpop_nonce", foreign.text
    assert foreign.headers["dpop-nonce"], foreign.text


async def test_a_dpop_bound_client_is_refused_without_a_proof(http: httpx.AsyncClient, info: StackInfo) -> None:
    secret = secrets.token_urlsafe(24)
    client = Client(
        client_id=new_client_id("agency"), name="Sở DPoP", kind="agency", grant_types=("client_credentials",),
        scopes=("vault.read",), auth_method=SECRET_AUTH, secret_hash=digest(secret), resources=(VAULT,),
        dpop_bound_access_tokens=True,
    )  # fmt: skip
    await _add(info, client)
    url, data = f"{info.oidc_issuer}/token", {"grant_type": "client_credentials", "scope": "vault.read"}
    plain = await http.post(url, data=data, auth=(client.client_id, secret))
    assert plain.status_code == 400, plain.text  # RFC 9449 §5.2
    assert plain.json()["error"] == "invalid_dpop_proof", plain.text
    proofer = Proofer(alg="EdDSA")
    reply = await post_token(http, url, proofer, data, auth=(client.client_id, secret))
    assert reply.status_code == 200, reply.text
    assert reply.json()["token_type"] == "DPoP", reply.text
    assert _payload(reply.json()["access_token"])["cnf"]["jkt"] == proofer.jkt
    seen = await http.post(f"{info.oidc_issuer}/introspect", data={"token": reply.json()["access_token"]},
                           auth=(client.client_id, secret))  # fmt: skip
    assert seen.json()["token_type"] == "DPoP", seen.text  # RFC 9449 §6.2
    assert seen.json()["cnf"] == {"jkt": proofer.jkt}


async def test_a_fapi2_client_gets_no_unconstrained_token(http: httpx.AsyncClient, info: StackInfo) -> None:
    key = ECKey.generate_key("P-256")
    client = Client(
        client_id=new_client_id("agency"), name="Bộ FAPI", kind="agency", grant_types=("client_credentials",),
        scopes=("vault.read",), auth_method=KEY_AUTH, resources=(VAULT,), profile=FAPI2,
        jwks={"keys": [{**key.as_dict(private=False), "kid": "fapi-1", "alg": "ES256"}]},
    )  # fmt: skip
    await _add(info, client)
    url = f"{info.oidc_issuer}/token"

    def data() -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": client.client_id, "sub": client.client_id, "aud": info.oidc_issuer,
                  "jti": secrets.token_urlsafe(12), "iat": now, "exp": now + 60}  # fmt: skip
        signed = jwt.encode({"alg": "ES256", "kid": "fapi-1"}, claims, key)
        return {"grant_type": "client_credentials", "scope": "vault.read", "client_id": client.client_id,
                "client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}  # fmt: skip

    plain = await http.post(url, data=data())
    assert plain.status_code == 400, plain.text
    assert plain.json()["error"] == "invalid_request"
    assert "sender-constrained" in plain.json()["error_description"]
    reply = await post_token(http, url, Proofer(alg="PS256"), data())
    assert reply.status_code == 200, reply.text
    assert reply.json()["token_type"] == "DPoP", reply.text


# -- userinfo ----------------------------------------------------------------------------------------------------


async def test_userinfo_takes_the_bound_token_with_its_proof(
    http: httpx.AsyncClient, info: StackInfo, bound: Bound
) -> None:
    reply = await userinfo(http, f"{info.oidc_issuer}/userinfo", bound.proofer, bound.token)
    assert reply.status_code == 200, reply.text
    assert reply.json()["sub"] == _payload(bound.token)["sub"]
    assert reply.headers["dpop-nonce"]


async def test_userinfo_refuses_the_bound_token_otherwise(
    http: httpx.AsyncClient, info: StackInfo, bound: Bound
) -> None:
    url, token, proofer = f"{info.oidc_issuer}/userinfo", bound.token, bound.proofer
    dpop_auth = {"authorization": f"DPoP {token}"}
    as_bearer = await http.get(url, headers={"authorization": f"Bearer {token}"})
    _dpop_error(as_bearer, "invalid_token", "DPoP-bound")
    _dpop_error(await http.get(url, headers=dpop_auth), "invalid_dpop_proof", "needs a DPoP proof")
    other = Proofer()
    other.nonce = proofer.nonce
    by_other = await http.get(url, headers={**dpop_auth, "DPoP": other.proof("GET", url, access_token=token)})
    _dpop_error(by_other, "invalid_dpop_proof", "another key")
    wrong_htu = proofer.proof("GET", f"{info.oidc_issuer}/token", access_token=token)
    _dpop_error(await http.get(url, headers={**dpop_auth, "DPoP": wrong_htu}), "invalid_dpop_proof", "htu")
    no_ath = proofer.proof("GET", url)
    _dpop_error(await http.get(url, headers={**dpop_auth, "DPoP": no_ath}), "invalid_dpop_proof", "needs an ath")
    bad_ath = proofer.proof("GET", url, access_token=token + "x")
    _dpop_error(await http.get(url, headers={**dpop_auth, "DPoP": bad_ath}), "invalid_dpop_proof", "ath")


async def test_userinfo_refuses_a_stale_nonce_and_offers_a_fresh_one(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, bound: Bound
) -> None:
    url = f"{info.oidc_issuer}/userinfo"
    nonces = dpop.Nonces(stack.secrets.keys("edge").key(purposes.LOGIN_FLOW))
    stale = nonces.mint(now=time.time() - dpop.NONCE_TTL - 5)  # the edge's own, expired
    proof = bound.proofer.proof("GET", url, access_token=bound.token, nonce=stale)
    reply = await http.get(url, headers={"authorization": f"DPoP {bound.token}", "DPoP": proof})
    _dpop_error(reply, "use_dpop_nonce", "stale")  # RFC 9449 §9
    fresh = reply.headers["dpop-nonce"]
    assert nonces.valid(fresh)
    proof = bound.proofer.proof("GET", url, access_token=bound.token, nonce=fresh)
    again = await http.get(url, headers={"authorization": f"DPoP {bound.token}", "DPoP": proof})
    assert again.status_code == 200, again.text


async def test_a_proof_replayed_in_parallel_on_two_edges_passes_once(
    http: httpx.AsyncClient, info: StackInfo, bound: Bound, second_edge: str
) -> None:
    url = f"{info.oidc_issuer}/userinfo"  # htu: the issuer's endpoint, whichever replica serves it
    for _ in range(2):
        proof = bound.proofer.proof("GET", url, access_token=bound.token)  # the nonce of the first edge
        headers = {"authorization": f"DPoP {bound.token}", "DPoP": proof}
        replies = await asyncio.gather(*(http.get(f"{base}/userinfo", headers=headers)
                                         for base in [info.oidc_issuer, second_edge] * 5))  # fmt: skip
        assert sorted(r.status_code for r in replies).count(200) == 1, [(r.status_code, r.text) for r in replies]
        for refused in (r for r in replies if r.status_code != 200):
            _dpop_error(refused, "invalid_dpop_proof", "used before")


# -- over gRPC ---------------------------------------------------------------------------------------------------


async def _refused(stub: vgrpc.VaultStub, metadata: tuple[tuple[str, str], ...], words: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListDocuments(vpb.ListDocumentsRequest(), metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, caught.value.details()
    assert words in (caught.value.details() or ""), caught.value.details()
    trailers = dict(caught.value.trailing_metadata() or ())
    assert trailers["www-authenticate"].startswith("DPoP "), trailers


async def test_a_grpc_service_takes_the_bound_token_with_its_proof(vault_stub: vgrpc.VaultStub, bound: Bound) -> None:
    metadata = grpc_metadata(bound.proofer, bound.token, "vault", LIST)
    reply = await vault_stub.ListDocuments(vpb.ListDocumentsRequest(), metadata=metadata)
    assert list(reply.documents) == []


async def test_a_grpc_service_refuses_the_bound_token_otherwise(vault_stub: vgrpc.VaultStub, bound: Bound) -> None:
    token, proofer = bound.token, bound.proofer
    await _refused(vault_stub, (("authorization", f"Bearer {token}"),), "DPoP-bound")
    await _refused(vault_stub, (("authorization", f"DPoP {token}"),), "needs a DPoP proof")
    await _refused(vault_stub, grpc_metadata(Proofer(), token, "vault", LIST), "another key")
    await _refused(vault_stub, grpc_metadata(proofer, token, "registry", LIST), "htu")  # another service's URL
    await _refused(vault_stub, grpc_metadata(proofer, token, "vault", "/dinhdanh.vault.v1.Vault/GetDocument"), "htu")
    old = proofer.proof("POST", dpop.grpc_htu("vault", LIST), access_token=token, nonce="", iat=time.time() - 120)
    await _refused(vault_stub, (("authorization", f"DPoP {token}"), ("dpop", old)), "iat")
    no_ath = proofer.proof("POST", dpop.grpc_htu("vault", LIST), nonce="")
    await _refused(vault_stub, (("authorization", f"DPoP {token}"), ("dpop", no_ath)), "needs an ath")


async def test_a_proof_replayed_in_parallel_over_grpc_passes_once(vault_stub: vgrpc.VaultStub, bound: Bound) -> None:
    metadata = grpc_metadata(bound.proofer, bound.token, "vault", LIST)
    outcomes = await asyncio.gather(
        *(vault_stub.ListDocuments(vpb.ListDocumentsRequest(), metadata=metadata) for _ in range(8)),
        return_exceptions=True,
    )
    passed = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(passed) == 1, outcomes
    assert len(refused) == 7, outcomes
    assert all(e.code() == grpc.StatusCode.UNAUTHENTICATED and "used before" in (e.details() or "") for e in refused)
