"""The edge's passkey endpoints over HTTP (services/edge/passkey_routes.py): who may ask for options, the CSP of
the pages that run a ceremony (and only those), and refusals as 4xx pages or JSON errors, never a 500."""

from __future__ import annotations

import json
import secrets

import httpx

from bench.browserless import Browser, csrf_of, pkce_pair
from registry.citizen import Citizen
from stack.info import StackInfo
from tests.oidc_helpers import person, portal_flow


async def login_page(browser: Browser, info: StackInfo) -> httpx.Response:
    _, challenge = pkce_pair()
    flow = portal_flow(info)
    url = flow.authorize_url(secrets.token_urlsafe(8), secrets.token_urlsafe(8), challenge)
    page = await browser.follow("GET", url)
    assert page.status_code == 200, page.text[:300]
    assert 'name="password"' in page.text
    return page


async def options(browser: Browser, info: StackInfo, mode: str, csrf: str, **headers: str) -> httpx.Response:
    headers = {"content-type": "application/json", "x-csrf-token": csrf, **headers}
    url = f"{info.oidc_issuer}/login/passkey/options"
    return await browser.request("POST", url, content=json.dumps({"mode": mode}), headers=headers)


async def test_login_options_and_refusals(http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen) -> None:
    browser = Browser(http)
    page = await login_page(browser, info)
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1]
    assert '<script src="/passkeys.js"></script>' in page.text
    script = await http.get(f"{info.oidc_issuer}/passkeys.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    csrf = csrf_of(page)

    passwordless = await options(browser, info, "passwordless", csrf)
    assert passwordless.status_code == 200, passwordless.text
    body = passwordless.json()
    assert body["options"]["rpId"] == "localhost"
    assert body["options"]["userVerification"] == "required"
    assert body["handle"]
    assert passwordless.headers["cache-control"] == "no-store"

    assert (await options(browser, info, "passwordless", "not-the-token")).status_code == 403
    assert (await options(browser, info, "passwordless", csrf, origin="http://evil.example")).status_code == 403
    assert (await options(browser, info, "bogus", csrf)).status_code == 400
    assert (await options(browser, info, "second", csrf)).status_code == 412  # no password step yet
    assert (await options(Browser(http), info, "passwordless", csrf)).status_code == 403  # no flow cookie

    # a response that is not a credential: the login page again with the reason, not a 500
    bad = await browser.request("POST", f"{info.oidc_issuer}/login/passkey", data={
        "csrf": csrf, "mode": "passwordless", "handle": body["handle"], "credential": "{}"})  # fmt: skip
    assert bad.status_code == 401
    assert 'role="alert"' in bad.text

    # after the password, an account without a passkey gets no passkey options (the TOTP page hides the button)
    who = await person(info, fresh_citizen)
    totp = await browser.follow("POST", f"{info.oidc_issuer}/login",
                                data={"csrf": csrf, "id_number": who.id_number, "password": who.password})  # fmt: skip
    assert 'name="code"' in totp.text
    assert "script-src 'self'" in totp.headers["content-security-policy"]
    second = await options(browser, info, "second", csrf)
    assert second.status_code == 412, second.text
    assert second.json()["error"] == "no_passkey"


async def test_security_pages_need_a_session(http: httpx.AsyncClient, info: StackInfo) -> None:
    page = await http.get(f"{info.oidc_issuer}/security/passkeys")
    assert page.status_code == 401
    assert "script-src" not in page.headers["content-security-policy"]  # a message page runs no script
    refused = await http.post(f"{info.oidc_issuer}/security/passkeys/options", content="{}",
                              headers={"content-type": "application/json", "x-csrf-token": "x"})  # fmt: skip
    assert refused.status_code == 401
    assert refused.json()["error"] == "login_required"
    finish = await http.post(f"{info.oidc_issuer}/security/passkeys", data={"csrf": "x", "credential": "{}"})
    assert finish.status_code == 401
