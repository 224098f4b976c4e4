"""Audiences and scopes a citizen consented to, nothing more (RFC 8707 resource indicators, RFC 6749 §3.3).

Each test registers its own client through ``dinhdanh clients`` (as an operator would) with the resources and
scopes it needs, signs a fresh citizen in through the real edge, and looks at what came back: the redirect, the
consent page, the code, the access token's ``aud`` and ``scope``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from bench.browserless import Browser, SignIn, callback_params, csrf_of, pkce_pair, sign_in
from core.keys.purposes import AUTHORIZATION_CODE
from identity.oidc.clients import PORTAL_SCOPES, RESOURCES
from identity.oidc.sealed import SealedCodec
from registry.citizen import Citizen
from services.edge.http import LANG_COOKIE
from services.edge.i18n import TEXT
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.oidc_helpers import Person, person
from tests.test_cli import dinhdanh
from tests.vault_helpers import keyed_agency

VAULT = "urn:dinhdanh:service:vault"
REGISTRY = "urn:dinhdanh:service:registry"
CONSENT = "urn:dinhdanh:service:consent"
REDIRECT = "https://cong-thu.example/callback"  # registered, never contacted: the browser stops at it
VAULT_LABEL = "Xem và thay đổi giấy tờ trong Kho dữ liệu cá nhân"


@dataclass
class Flow(SignIn):
    """A sign-in that may name several resources (RFC 8707 §2: ``resource`` repeated)."""

    resources: tuple[str, ...] = ()

    def authorize_url(self, state: str, nonce: str, challenge: str) -> str:
        more = "".join("&" + urlencode({"resource": r}) for r in self.resources)
        return super().authorize_url(state, nonce, challenge) + more


def portal(stack: Stack, *options: str) -> dict[str, Any]:
    code, made = dinhdanh(stack, "clients", "add-portal", "--name", "Cổng thử", "--redirect-uri", REDIRECT, *options)
    assert code == 0, made
    return made


def flow_of(info: StackInfo, client: dict[str, Any], scope: str, *resources: str) -> Flow:
    return Flow(info.oidc_issuer, client["client_id"], client["client_secret"], REDIRECT, scope, resources=resources)


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's payload, unverified (the tokens come straight from the OP here)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


def error_of(reply: httpx.Response) -> dict[str, list[str]]:
    return parse_qs(urlsplit(reply.headers.get("location", "")).query)


async def until_consent(browser: Browser, flow: Flow, who: Person | None) -> tuple[httpx.Response, str]:
    """Authorize, then password and TOTP when asked; the page reached (consent) or the redirect, and the verifier."""
    verifier, challenge = pkce_pair()
    page = await browser.follow("GET", flow.authorize_url("s", "n", challenge), stop_at=REDIRECT)
    if who is not None and 'name="password"' in page.text:
        page = await browser.follow("POST", f"{flow.issuer}/login", stop_at=REDIRECT, data={
            "csrf": csrf_of(page), "id_number": who.id_number, "password": who.password})  # fmt: skip
        page = await browser.follow("POST", f"{flow.issuer}/login/totp", stop_at=REDIRECT,
                                    data={"csrf": csrf_of(page), "code": who.code()})  # fmt: skip
    return page, verifier


async def allow(browser: Browser, flow: Flow, page: httpx.Response) -> dict[str, str]:
    assert 'name="decision"' in page.text, page.text[:300]
    reply = await browser.follow("POST", f"{flow.issuer}/consent", stop_at=REDIRECT,
                                 data={"csrf": csrf_of(page), "decision": "allow"})  # fmt: skip
    return callback_params(reply)


async def token_request(http: httpx.AsyncClient, flow: Flow, data: dict[str, Any]) -> httpx.Response:
    return await http.post(f"{flow.issuer}/token", data=data, auth=(flow.client_id, flow.client_secret))


def redemption(code: str, verifier: str) -> dict[str, Any]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}


async def test_a_resource_the_client_is_not_registered_for_is_an_invalid_target_redirect(
    http: httpx.AsyncClient, stack: Stack, info: StackInfo
) -> None:
    flow = flow_of(info, portal(stack), "openid", VAULT)
    for asked in (flow, flow_of(info, {"client_id": flow.client_id, "client_secret": ""}, "openid", "urn:x:nothing")):
        _, challenge = pkce_pair()
        reply = await http.get(asked.authorize_url("st", "n", challenge))
        assert reply.status_code in (302, 303), reply.text[:300]
        assert reply.headers["location"].startswith(REDIRECT + "?")  # client and redirect_uri are valid
        query = error_of(reply)
        assert query["error"] == ["invalid_target"]
        assert (query["state"], query["iss"]) == (["st"], [info.oidc_issuer])


async def test_the_token_endpoint_refuses_a_resource_outside_the_grant(
    http: httpx.AsyncClient, stack: Stack, info: StackInfo, fresh_citizen: Citizen
) -> None:
    flow = flow_of(info, portal(stack), "openid")
    who = await person(info, fresh_citizen)
    params = await sign_in(Browser(http), flow, who.id_number, who.password, who.code())
    form = redemption(params["code"], params["_verifier"])
    refused = await token_request(http, flow, {**form, "resource": VAULT})
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_target")
    granted = await token_request(http, flow, form)  # the refusal did not use the code up
    assert granted.status_code == 200, granted.text
    assert claims_of(granted.json()["access_token"])["aud"] == [info.oidc_issuer]
    keyed, agency = keyed_agency(stack, "Sở Tư pháp", "--purpose", "lookup", "--scope", "registry.read")
    assert agency["resources"] == [REGISTRY], agency
    refused = await keyed.token_response(http, info.oidc_issuer, "registry.read", VAULT)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_target")
    granted = await keyed.token_response(http, info.oidc_issuer, "registry.read", REGISTRY)
    assert claims_of(granted.json()["access_token"])["aud"] == [info.oidc_issuer, REGISTRY]


async def test_the_consent_page_names_each_resource(
    http: httpx.AsyncClient, stack: Stack, info: StackInfo, fresh_citizen: Citizen
) -> None:
    client = portal(stack, "--scope", "vault.read", "--scope", "vault.write", "--resource", VAULT)
    flow = flow_of(info, client, "openid vault.read vault.write", VAULT)
    browser = Browser(http)
    page, _ = await until_consent(browser, flow, await person(info, fresh_citizen))
    assert 'name="decision"' in page.text
    assert VAULT_LABEL in page.text
    assert "Xem giấy tờ trong Kho dữ liệu cá nhân" in page.text  # vault.read
    assert VAULT not in page.text  # plain words, not the identifier
    browser.cookies[LANG_COOKIE] = "en"
    page, _ = await until_consent(browser, flow, None)  # the SSO session: straight to the consent page
    assert "See and change the papers in your personal data store" in page.text


async def test_consent_to_one_resource_does_not_cover_another(
    http: httpx.AsyncClient, stack: Stack, info: StackInfo, fresh_citizen: Citizen
) -> None:
    client = portal(stack, "--scope", "vault.read", "--resource", VAULT, "--resource", REGISTRY)
    browser = Browser(http)
    page, _ = await until_consent(browser, flow_of(info, client, "openid vault.read", VAULT),
                                  await person(info, fresh_citizen))  # fmt: skip
    assert "code" in await allow(browser, flow_of(info, client, "openid vault.read", VAULT), page)
    again, _ = await until_consent(browser, flow_of(info, client, "openid vault.read", VAULT), None)
    assert "code" in callback_params(again), "the same scopes and resource: remembered"
    silent = flow_of(info, client, "openid vault.read", REGISTRY)
    silent.extra = {"prompt": "none"}
    quiet, _ = await until_consent(browser, silent, None)
    assert error_of(quiet)["error"] == ["consent_required"], "prompt=none: no page, so no token for it either"
    other, _ = await until_consent(browser, flow_of(info, client, "openid vault.read", REGISTRY), None)
    assert other.status_code == 200
    assert 'name="decision"' in other.text, "another resource: the citizen is asked again"
    assert "Cơ sở dữ liệu quốc gia về dân cư" in other.text


async def test_a_refresh_narrows_the_audiences_and_never_adds_one(
    http: httpx.AsyncClient, stack: Stack, info: StackInfo, fresh_citizen: Citizen
) -> None:
    client = portal(stack, "--scope", "offline_access", *("--resource", VAULT, "--resource", REGISTRY),
                    "--resource", CONSENT)  # fmt: skip
    flow = flow_of(info, client, "openid offline_access", VAULT, REGISTRY)
    who = await person(info, fresh_citizen)
    params = await sign_in(Browser(http), flow, who.id_number, who.password, who.code())
    tokens = (await token_request(http, flow, redemption(params["code"], params["_verifier"]))).json()
    assert claims_of(tokens["access_token"])["aud"] == [info.oidc_issuer, VAULT, REGISTRY]

    async def refresh(token: str, *resources: str) -> httpx.Response:
        data = {"grant_type": "refresh_token", "refresh_token": token, "resource": list(resources)}
        return await token_request(http, flow, data)

    for wider in ((CONSENT,), (VAULT, CONSENT)):
        refused = await refresh(tokens["refresh_token"], *wider)
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_target"), refused.text
    narrowed = await refresh(tokens["refresh_token"], VAULT)  # the refusals did not use the token up
    assert narrowed.status_code == 200, narrowed.text
    assert claims_of(narrowed.json()["access_token"])["aud"] == [info.oidc_issuer, VAULT]
    whole = await refresh(narrowed.json()["refresh_token"])  # the grant keeps every resource
    assert claims_of(whole.json()["access_token"])["aud"] == [info.oidc_issuer, VAULT, REGISTRY]


async def test_the_code_holds_only_the_scopes_the_client_may_have(
    http: httpx.AsyncClient, stack: Stack, info: StackInfo, fresh_citizen: Citizen
) -> None:
    client = portal(stack)  # openid profile only
    flow = flow_of(info, client, "openid profile national_id address")
    browser = Browser(http)
    who = await person(info, fresh_citizen)
    page, verifier = await until_consent(browser, flow, who)
    assert "Số định danh cá nhân" not in page.text, "the consent page asks only what the client may have"
    params = await allow(browser, flow, page)
    codes = SealedCodec(stack.secrets.keys("edge").key(AUTHORIZATION_CODE), "authorization-code")
    sealed = codes.decode(params["code"])
    assert sealed is not None
    assert sealed["scope"] == "openid profile"
    tokens = (await token_request(http, flow, redemption(params["code"], verifier))).json()
    assert tokens["scope"] == "openid profile"
    userinfo = await http.get(f"{info.oidc_issuer}/userinfo",
                              headers={"authorization": f"Bearer {tokens['access_token']}"})  # fmt: skip
    assert "national_id" not in userinfo.json()
    assert who.id_number not in userinfo.text


async def test_an_agency_gets_only_the_scopes_it_is_registered_for(
    http: httpx.AsyncClient, stack: Stack, info: StackInfo
) -> None:
    keyed, _ = keyed_agency(stack, "Sở đọc", "--purpose", "read", "--scope", "vault.read")
    reply = await keyed.token_response(http, info.oidc_issuer, "vault.read vault.issue", VAULT)
    assert reply.status_code == 200, reply.text
    assert reply.json()["scope"] == "vault.read"
    assert claims_of(reply.json()["access_token"])["scope"] == "vault.read"


def test_every_resource_and_portal_scope_has_plain_words_in_both_languages() -> None:
    for words in TEXT.values():
        assert all(f"resource_{r}" in words for r in RESOURCES)
        assert all(f"scope_{s}" in words for s in PORTAL_SCOPES)
