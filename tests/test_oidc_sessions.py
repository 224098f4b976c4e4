"""SSO sessions and logout: RP-Initiated Logout 1.0 §2 (ask unless the hint names the session's citizen), CSRF on
the confirming POST, and refresh tokens without ``offline_access`` that end with the session (Core §11)."""

from __future__ import annotations

import time

import httpx

from bench.browserless import Browser, SignIn, callback_params, csrf_of, pkce_pair, sign_in
from identity.oidc.provider import SESSION_TTL
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.oidc_helpers import person, portal_flow, signed_in
from tests.test_cli import dinhdanh


async def session_alive(browser: Browser, flow: SignIn) -> bool:
    """prompt=none: a code when the SSO session lives, ``login_required`` when it is over."""
    _, challenge = pkce_pair()
    quiet = SignIn(flow.issuer, flow.client_id, flow.client_secret, flow.redirect_uri, flow.scope, {"prompt": "none"})
    params = callback_params(await browser.request("GET", quiet.authorize_url("s", "n", challenge)))
    assert "code" in params or params.get("error") == "login_required", params
    return "code" in params


async def test_logout_with_another_citizens_id_token_asks_first(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizens
) -> None:
    flow = portal_flow(info)
    mine, _ = await signed_in(http, flow, await person(info, next(fresh_citizens)))
    _, theirs = await signed_in(http, flow, await person(info, next(fresh_citizens)))
    their_id_token = (await flow.redeem(http, theirs["code"], theirs["_verifier"])).json()["id_token"]
    post_logout = flow.redirect_uri.rsplit("/", 1)[0] + "/"
    params = {"id_token_hint": their_id_token, "post_logout_redirect_uri": post_logout, "state": "x"}
    asked = await mine.request("GET", f"{info.oidc_issuer}/logout", params=params)
    assert asked.status_code == 200, asked.headers.get("location")
    assert 'action="/logout"' in asked.text
    assert await session_alive(mine, flow)  # nothing ended without the citizen's answer
    confirmed = await mine.request("POST", f"{info.oidc_issuer}/logout", data={**params, "csrf": csrf_of(asked)})
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == post_logout + "?state=x"
    assert not await session_alive(mine, flow)


async def test_logout_with_the_sessions_own_id_token_ends_it_at_once(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    flow = portal_flow(info)
    browser, params = await signed_in(http, flow, await person(info, fresh_citizen))
    id_token = (await flow.redeem(http, params["code"], params["_verifier"])).json()["id_token"]
    out = await browser.request("GET", f"{info.oidc_issuer}/logout", params={"id_token_hint": id_token})
    assert out.status_code == 200
    assert 'action="/logout"' not in out.text  # not asked: the hint names this session's citizen
    assert not await session_alive(browser, flow)


async def test_post_logout_needs_the_csrf_token_of_the_question(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    flow = portal_flow(info)
    browser, _ = await signed_in(http, flow, await person(info, fresh_citizen))
    for form in ({}, {"csrf": "forged"}):
        forged = await browser.request("POST", f"{info.oidc_issuer}/logout", data=form)
        assert forged.status_code in (200, 400)
        assert await session_alive(browser, flow), form  # a cross-site form ends nothing
    asked = await browser.request("GET", f"{info.oidc_issuer}/logout")
    assert asked.status_code == 200
    confirmed = await browser.request("POST", f"{info.oidc_issuer}/logout", data={"csrf": csrf_of(asked)})
    assert confirmed.status_code == 200
    assert not await session_alive(browser, flow)


async def test_refresh_tokens_without_offline_access_end_with_the_session(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizen: Citizen
) -> None:
    code, made = dinhdanh(stack, "clients", "add-portal", "--name", "Cổng có làm mới theo phiên",
                          "--redirect-uri", "https://phien.example/callback", "--refresh")  # fmt: skip
    assert code == 0, made
    bound = SignIn(info.oidc_issuer, made["client_id"], made["client_secret"], "https://phien.example/callback",
                   "openid")  # fmt: skip
    offline = portal_flow(info, scope="openid offline_access")
    who = await person(info, fresh_citizen)
    browser, params = await signed_in(http, offline, who)
    offline_tokens = (await offline.redeem(http, params["code"], params["_verifier"])).json()
    bound_params = await sign_in(browser, bound, who.id_number, who.password, "unused: the SSO session answers")
    bound_tokens = (await bound.redeem(http, bound_params["code"], bound_params["_verifier"])).json()
    assert "offline_access" not in bound_tokens["scope"].split()
    assert bound_tokens["refresh_token"]  # by client policy, bound to the SSO session

    async def refresh(flow: SignIn, token: str) -> httpx.Response:
        return await http.post(f"{info.oidc_issuer}/token", auth=(flow.client_id, flow.client_secret),
                               data={"grant_type": "refresh_token", "refresh_token": token})  # fmt: skip

    rotated = await refresh(bound, bound_tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.text  # the session lives: the refresh works (and rotates)

    async def expiry(flow: SignIn, token: str) -> int:
        reply = await http.post(f"{info.oidc_issuer}/introspect", auth=(flow.client_id, flow.client_secret),
                                data={"token": token})  # fmt: skip
        return int(reply.json()["exp"])

    session_end = time.time() + SESSION_TTL
    assert await expiry(bound, rotated.json()["refresh_token"]) <= session_end  # no longer than its session
    assert await expiry(offline, offline_tokens["refresh_token"]) > session_end + 86400  # offline: 30 days
    hint = {"id_token_hint": offline_tokens["id_token"]}
    out = await browser.request("GET", f"{info.oidc_issuer}/logout", params=hint)
    assert out.status_code == 200
    assert not await session_alive(browser, offline)
    after = await refresh(bound, rotated.json()["refresh_token"])
    assert (after.status_code, after.json()["error"]) == (400, "invalid_grant")
    introspected = await http.post(f"{info.oidc_issuer}/introspect", auth=(bound.client_id, bound.client_secret),
                                   data={"token": rotated.json()["refresh_token"]})  # fmt: skip
    assert introspected.json() == {"active": False}
    kept = await refresh(offline, offline_tokens["refresh_token"])
    assert kept.status_code == 200, kept.text  # offline_access outlives the session (Core §11)
