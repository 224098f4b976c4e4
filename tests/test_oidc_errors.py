"""Every error path of the OpenID Provider answers with an OAuth error, never a 500 or a bad redirect."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bench.browserless import Browser, callback_params, pkce_pair
from identity.oidc.sealed import SealedCodec
from registry.citizen import Citizen
from stack.info import StackInfo
from tests.oidc_helpers import person, portal_flow, signed_in


def query(response: httpx.Response) -> dict[str, list[str]]:
    return parse_qs(urlsplit(response.headers.get("location", "")).query)


async def test_unregistered_redirect_uri_is_never_redirected_to(http: httpx.AsyncClient, info: StackInfo) -> None:
    flow = portal_flow(info)
    flow.redirect_uri = "https://attacker.example/callback"
    _, challenge = pkce_pair()
    reply = await http.get(flow.authorize_url("s", "n", challenge))
    assert reply.status_code == 400
    assert "location" not in reply.headers
    assert "attacker" not in reply.text


async def test_unknown_client_and_oversized_parameters_get_an_error_page(
    http: httpx.AsyncClient, info: StackInfo
) -> None:
    flow = portal_flow(info)
    flow.client_id = "no-such-client"
    _, challenge = pkce_pair()
    assert (await http.get(flow.authorize_url("s", "n", challenge))).status_code == 400
    flow = portal_flow(info)
    reply = await http.get(flow.authorize_url("s" * 5000, "n", challenge))
    assert reply.status_code == 400
    assert "location" not in reply.headers


async def test_missing_or_plain_pkce_is_refused(http: httpx.AsyncClient, info: StackInfo) -> None:
    flow = portal_flow(info)
    url = flow.authorize_url("st", "n", "x" * 43).replace("code_challenge_method=S256", "code_challenge_method=plain")
    reply = await http.get(url)
    assert reply.status_code in (302, 303)
    assert query(reply)["error"] == ["invalid_request"]
    assert query(reply)["state"] == ["st"]
    assert query(reply)["iss"] == [info.oidc_issuer]
    no_pkce = url.split("&code_challenge=")[0]
    reply = await http.get(no_pkce)
    assert query(reply)["error"] == ["invalid_request"]


async def test_implicit_and_unknown_response_types_are_refused(http: httpx.AsyncClient, info: StackInfo) -> None:
    flow = portal_flow(info)
    _, challenge = pkce_pair()
    reply = await http.get(flow.authorize_url("s", "n", challenge).replace("response_type=code", "response_type=token"))
    assert query(reply)["error"] == ["unsupported_response_type"]


async def test_prompt_none_without_a_session(http: httpx.AsyncClient, info: StackInfo) -> None:
    flow = portal_flow(info, prompt="none")
    _, challenge = pkce_pair()
    reply = await http.get(flow.authorize_url("st", "n", challenge))
    assert query(reply)["error"] == ["login_required"]
    assert query(reply)["state"] == ["st"]


async def test_wrong_verifier_reused_code_and_forged_code(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    who = await person(info, fresh_citizen)
    flow = portal_flow(info)
    _, params = await signed_in(http, flow, who)
    wrong = await flow.redeem(http, params["code"], "w" * 50)
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    good = await flow.redeem(http, params["code"], params["_verifier"])
    assert good.status_code == 200  # a wrong verifier issues nothing; the holder of the right one still can
    assert (await flow.redeem(http, params["code"], params["_verifier"])).json()["error"] == "invalid_grant"
    forged = await flow.redeem(http, params["code"][:-6] + "AAAAAA", params["_verifier"])
    assert forged.json()["error"] == "invalid_grant"


async def test_code_reuse_revokes_the_tokens_it_gave(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    who = await person(info, fresh_citizen)
    flow = portal_flow(info, scope="openid offline_access")
    _, params = await signed_in(http, flow, who)
    first = await flow.redeem(http, params["code"], params["_verifier"])
    assert first.status_code == 200
    again = await flow.redeem(http, params["code"], params["_verifier"])
    assert again.json()["error"] == "invalid_grant"
    refreshed = await http.post(
        f"{info.oidc_issuer}/token",
        auth=(flow.client_id, flow.client_secret),
        data={"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]},
    )
    assert refreshed.json()["error"] == "invalid_grant"


def test_expired_codes_do_not_open() -> None:
    codec = SealedCodec(b"k" * 32, "authorization-code")
    assert codec.decode(codec.encode({"a": 1}, ttl=60)) is not None
    assert codec.decode(codec.encode({"a": 1}, ttl=-1)) is None
    assert SealedCodec(b"j" * 32, "authorization-code").decode(codec.encode({"a": 1}, ttl=60)) is None


async def test_wrong_client_secret(http: httpx.AsyncClient, info: StackInfo) -> None:
    flow = portal_flow(info)
    reply = await http.post(
        f"{info.oidc_issuer}/token",
        auth=(flow.client_id, "wrong"),
        data={"grant_type": "authorization_code", "code": "x", "redirect_uri": flow.redirect_uri},
    )
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"
    assert (await http.post(f"{info.oidc_issuer}/token", data={"grant_type": "password"})).status_code in (400, 401)


async def test_refresh_rotation_and_reuse_detection(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    who = await person(info, fresh_citizen)
    flow = portal_flow(info, scope="openid offline_access")
    _, params = await signed_in(http, flow, who)
    tokens = (await flow.redeem(http, params["code"], params["_verifier"])).json()

    async def refresh(token: str) -> httpx.Response:
        return await http.post(
            f"{info.oidc_issuer}/token",
            auth=(flow.client_id, flow.client_secret),
            data={"grant_type": "refresh_token", "refresh_token": token},
        )

    second = await refresh(tokens["refresh_token"])
    assert second.status_code == 200
    assert second.json()["refresh_token"] != tokens["refresh_token"]  # rotated
    reused = await refresh(tokens["refresh_token"])
    assert reused.json()["error"] == "invalid_grant"
    family_gone = await refresh(second.json()["refresh_token"])
    assert family_gone.json()["error"] == "invalid_grant"  # the reuse revoked the whole family


async def test_revoked_access_token_at_userinfo_and_introspection(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    who = await person(info, fresh_citizen)
    flow = portal_flow(info)
    _, params = await signed_in(http, flow, who)
    access = (await flow.redeem(http, params["code"], params["_verifier"])).json()["access_token"]
    auth = (flow.client_id, flow.client_secret)
    active = (await http.post(f"{info.oidc_issuer}/introspect", auth=auth, data={"token": access})).json()
    assert active["active"] is True
    assert active["client_id"] == flow.client_id
    assert who.id_number not in str(active)
    assert (await http.post(f"{info.oidc_issuer}/revoke", auth=auth, data={"token": access})).status_code == 200
    userinfo = await http.get(f"{info.oidc_issuer}/userinfo", headers={"authorization": f"Bearer {access}"})
    assert userinfo.status_code == 401
    assert "invalid_token" in userinfo.headers["www-authenticate"]
    gone = (await http.post(f"{info.oidc_issuer}/introspect", auth=auth, data={"token": access})).json()
    assert gone == {"active": False}


async def test_userinfo_without_or_with_a_bad_token(http: httpx.AsyncClient, info: StackInfo) -> None:
    for header in ({}, {"authorization": "Bearer nope"}, {"authorization": "Bearer " + "a.b.c" * 2000}):
        reply = await http.get(f"{info.oidc_issuer}/userinfo", headers=header)
        assert reply.status_code == 401
        assert reply.json()["error"] == "invalid_token"


async def test_oversized_token_request_body(http: httpx.AsyncClient, info: StackInfo) -> None:
    reply = await http.post(
        f"{info.oidc_issuer}/token",
        content=b"a=" + b"x" * 100_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert reply.status_code == 413
    assert reply.json()["error"] == "invalid_request"


async def test_logout_to_an_unregistered_uri_is_refused(http: httpx.AsyncClient, info: StackInfo) -> None:
    flow = portal_flow(info)
    params = {"client_id": flow.client_id, "post_logout_redirect_uri": "https://attacker.example/"}
    asked = await http.get(f"{info.oidc_issuer}/logout", params=params)
    assert asked.status_code == 200  # no id_token_hint: the citizen is asked first (a POST confirms)
    assert 'action="/logout"' in asked.text
    reply = await http.post(f"{info.oidc_issuer}/logout", data=params)
    assert reply.status_code == 400
    assert "location" not in reply.headers


async def test_login_form_without_csrf_is_refused(http: httpx.AsyncClient, info: StackInfo) -> None:
    browser = Browser(http)
    flow = portal_flow(info)
    _, challenge = pkce_pair()
    await browser.follow("GET", flow.authorize_url("s", "n", challenge), stop_at=flow.redirect_uri)
    reply = await browser.request(
        "POST",
        f"{info.oidc_issuer}/login",
        data={"csrf": "forged", "id_number": "001099000001", "password": "whatever12"},
    )
    assert reply.status_code == 400
    assert callback_params(reply) == {}


async def test_code_reuse_revokes_the_first_access_token_at_userinfo_and_the_vault(
    http: httpx.AsyncClient, info: StackInfo, stack, fresh_citizen: Citizen
) -> None:
    """RFC 6749 §4.1.2: a code redeemed twice revokes what it gave, access tokens included (Security BCP
    RFC 9700 §4.5): userinfo and the vault's interceptor (revocation list polled from PostgreSQL) refuse it."""
    import asyncio
    import time

    import grpc

    from protos.vault.v1 import vault_pb2 as vpb
    from protos.vault.v1 import vault_pb2_grpc as vgrpc
    from tests.conftest import channel_as
    from tests.vault_helpers import VAULT, bearer

    who = await person(info, fresh_citizen)
    flow = portal_flow(info, scope="openid vault.read", resource=VAULT)
    _, params = await signed_in(http, flow, who)
    first = await flow.redeem(http, params["code"], params["_verifier"])
    assert first.status_code == 200, first.text
    access = first.json()["access_token"]
    userinfo = f"{info.oidc_issuer}/userinfo"
    assert (await http.get(userinfo, headers={"authorization": f"Bearer {access}"})).status_code == 200
    async with channel_as(stack, "vault", "edge") as channel:
        vault = vgrpc.VaultStub(channel)
        await vault.ListDocuments(vpb.ListDocumentsRequest(), metadata=bearer(access), timeout=10)
        again = await flow.redeem(http, params["code"], params["_verifier"])
        assert again.json()["error"] == "invalid_grant"
        refused = await http.get(userinfo, headers={"authorization": f"Bearer {access}"})
        assert refused.status_code == 401
        assert "revoked" in refused.json()["error_description"]
        started, refusal = time.monotonic(), None
        while refusal is None:
            try:
                await vault.ListDocuments(vpb.ListDocumentsRequest(), metadata=bearer(access), timeout=10)
            except grpc.aio.AioRpcError as error:
                refusal = error
            else:  # the revocation list is polled every 0.5 s: allow several polls
                assert time.monotonic() - started < 5.0, "the vault still accepts the first redemption's token"
                await asyncio.sleep(0.1)
        assert refusal.code() == grpc.StatusCode.UNAUTHENTICATED, refusal.details()


NEAR_MISSES = {
    "trailing slash": lambda uri: uri + "/",
    "extra query": lambda uri: uri + "?next=/admin",
    "longer path": lambda uri: uri + "/more",
    "longer last segment": lambda uri: uri + "x",
    "path letter case": lambda uri: uri.replace("/callback", "/Callback"),
    "host letter case": lambda uri: uri.replace("localhost", "LOCALHOST"),
    "scheme letter case": lambda uri: uri.replace("http://", "HTTP://"),
    "userinfo": lambda uri: uri.replace("http://", "http://attacker@"),
    "percent-encoding": lambda uri: uri.replace("/callback", "/%63allback"),
    "fragment": lambda uri: uri + "#x",
    "no port": lambda uri: urlsplit(uri)._replace(netloc="localhost").geturl(),
}


@pytest.mark.parametrize("miss", NEAR_MISSES)
async def test_a_near_miss_of_the_registered_redirect_uri_gets_an_error_page(
    http: httpx.AsyncClient, info: StackInfo, miss: str
) -> None:
    """Exact string comparison (RFC 9700 §4.1.3): anything but the registered URI is an error page, never a redirect."""
    flow = portal_flow(info)
    registered = flow.redirect_uri
    flow.redirect_uri = NEAR_MISSES[miss](registered)
    assert flow.redirect_uri != registered
    _, challenge = pkce_pair()
    reply = await http.get(flow.authorize_url("s", "n", challenge))
    assert reply.status_code == 400
    assert "location" not in reply.headers
    assert "redirect_uri" in reply.text


async def test_parallel_redemptions_of_one_code_issue_once_and_revoke_it(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    """Racing redemptions: one wins, the others see its tokens (the used-code row and the tokens it issued commit
    together) and revoke them, the access token and the refresh token alike."""
    import asyncio

    who = await person(info, fresh_citizen)
    flow = portal_flow(info, scope="openid offline_access")
    _, params = await signed_in(http, flow, who)
    replies = await asyncio.gather(*(flow.redeem(http, params["code"], params["_verifier"]) for _ in range(8)))
    winners = [r for r in replies if r.status_code == 200]
    assert len(winners) == 1, [(r.status_code, r.text[:100]) for r in replies]
    assert {r.json()["error"] for r in replies if r.status_code != 200} == {"invalid_grant"}
    tokens = winners[0].json()
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    assert (await http.get(f"{info.oidc_issuer}/userinfo", headers=bearer)).status_code == 401
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = await http.post(f"{info.oidc_issuer}/token", auth=(flow.client_id, flow.client_secret), data=form)
    assert refreshed.json()["error"] == "invalid_grant"
