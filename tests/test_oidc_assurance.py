"""Required assurance levels (OpenID Connect Core §3.1.2.1 ``acr_values``, §5.5.1.1 essential ``acr``, the
client's ``min_acr``): a level-1 account is refused with an explanatory page and the portal gets
``access_denied``; never a token below the level asked for. A level-2 account gets ``acr`` "2"."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from bench.browserless import Browser, SignIn, callback_params, csrf_of, pkce_pair, sign_in
from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from registry.citizen import Citizen
from stack.info import StackInfo
from stack.supervisor import Stack
from tests.oidc_helpers import Person, person, portal_flow
from tests.test_cli import dinhdanh

BACK_LINK = re.compile(r'<a id="back" href="([^"]+)"')


async def level_2(info: StackInfo, who: Person) -> Person:
    """An operator verified ``who`` in person (``dinhdanh accounts verify-in-person``)."""
    async with info.channel("identity") as channel:
        request = ipb.SetAssuranceLevelRequest(id_number=who.id_number, level=2, note="Công an phường Ba Đình")
        account = await igrpc.IdentityStub(channel).SetAssuranceLevel(request, timeout=10)
    assert account.assurance_level == 2
    return who


async def through_login(browser: Browser, flow: SignIn, who: Person, state: str = "st") -> httpx.Response:
    """Authorize → password → TOTP, following the OP's redirects; the page (or redirect) that comes next."""
    _, challenge = pkce_pair()
    page = await browser.follow("GET", flow.authorize_url(state, "n", challenge), stop_at=flow.redirect_uri)
    assert 'name="password"' in page.text, page.text[:300]
    form = {"csrf": csrf_of(page), "id_number": who.id_number, "password": who.password}
    page = await browser.follow("POST", f"{flow.issuer}/login", stop_at=flow.redirect_uri, data=form)
    return await browser.follow("POST", f"{flow.issuer}/login/totp", stop_at=flow.redirect_uri,
                                data={"csrf": csrf_of(page), "code": who.code()})  # fmt: skip


def back_link(page: httpx.Response) -> dict[str, list[str]]:
    found = BACK_LINK.search(page.text)
    assert found, page.text[:600]
    url = html.unescape(found.group(1))
    return {"_base": [url.split("?", 1)[0]], **parse_qs(urlsplit(url).query)}


async def assert_refused(browser: Browser, flow: SignIn, page: httpx.Response) -> None:
    """The explanatory page (Vietnamese, then English), and its way back: ``access_denied`` for the portal."""
    assert page.status_code == 403, (page.status_code, page.text[:400])
    assert "code=" not in page.headers.get("location", "")
    assert "mức độ 2" in page.text
    assert "xác minh trực tiếp" in page.text  # how to reach level 2: in-person verification
    back = back_link(page)
    assert back["_base"] == [flow.redirect_uri]
    assert back["error"] == ["access_denied"]
    assert "2" in back["error_description"][0]
    assert back["state"] == ["st"]
    assert back["iss"] == [flow.issuer]
    assert "code" not in back
    english = await browser.request("GET", str(page.url) + "?lang=en")
    assert english.status_code == 403
    assert '<html lang="en">' in english.text
    assert "level 2" in english.text
    assert "in person" in english.text


async def test_discovery_says_the_claims_parameter_is_supported(http: httpx.AsyncClient, info: StackInfo) -> None:
    meta = (await http.get(f"{info.oidc_issuer}/.well-known/openid-configuration")).json()
    assert meta["claims_parameter_supported"] is True
    assert meta["acr_values_supported"] == ["1", "2"]
    assert "acr" in meta["claims_supported"]


async def test_acr_values_2_refuses_a_level_1_account(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    who = await person(info, fresh_citizen)
    flow = portal_flow(info, acr_values="2")
    browser = Browser(http)
    page = await through_login(browser, flow, who)
    await assert_refused(browser, flow, page)
    # The SSO session (level 1) never answers a level-2 request with a code: prompt=none gets access_denied …
    _, challenge = pkce_pair()
    quiet = SignIn(flow.issuer, flow.client_id, flow.client_secret, flow.redirect_uri, flow.scope,
                   {"acr_values": "2", "prompt": "none"})  # fmt: skip
    reply = await browser.follow("GET", quiet.authorize_url("q", "n", challenge), stop_at=flow.redirect_uri)
    assert callback_params(reply)["error"] == "access_denied"
    assert "code" not in callback_params(reply)
    # … and without prompt=none the citizen is asked to sign in again (a level granted since then shows).
    page = await browser.follow("GET", flow.authorize_url("s", "n", challenge), stop_at=flow.redirect_uri)
    assert 'name="password"' in page.text
    # A level-1 request (or none) from the same session is answered as before.
    plain = portal_flow(info, acr_values="1 2")
    reply = await browser.follow("GET", plain.authorize_url("s", "n", challenge), stop_at=flow.redirect_uri)
    if 'name="decision"' in reply.text:
        reply = await browser.follow("POST", f"{info.oidc_issuer}/consent", stop_at=flow.redirect_uri,
                                     data={"csrf": csrf_of(reply), "decision": "allow"})  # fmt: skip
    assert "code" in callback_params(reply)


async def test_essential_acr_in_the_claims_parameter_refuses_a_level_1_account(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    who = await person(info, fresh_citizen)
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["2"]}}})
    flow = portal_flow(info, claims=claims)
    browser = Browser(http)
    await assert_refused(browser, flow, await through_login(browser, flow, who))


async def test_voluntary_acr_claim_does_not_refuse_and_bad_values_are_request_errors(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    _, challenge = pkce_pair()
    for extra in ({"claims": "{not json"}, {"claims": '{"id_token": {"acr": {"essential": true, "value": 2}}}'},
                  {"acr_values": "urn:other:loa:high"}):  # fmt: skip
        flow = portal_flow(info, **extra)
        reply = await http.get(flow.authorize_url("bad", "n", challenge))
        assert reply.status_code in (302, 303), reply.text[:300]
        assert callback_params(reply)["error"] == "invalid_request", extra
        assert callback_params(reply)["state"] == "bad"
    who = await person(info, fresh_citizen)
    voluntary = json.dumps({"id_token": {"acr": {"values": ["2"]}}})  # not essential: Core §5.5.1 voluntary
    flow = portal_flow(info, claims=voluntary)
    params = await sign_in(Browser(http), flow, who.id_number, who.password, who.code())
    token = (await flow.redeem(http, params["code"], params["_verifier"])).json()
    keyset = KeySet.import_key_set((await http.get(f"{info.oidc_issuer}/jwks")).json())
    assert jwt.decode(token["id_token"], keyset).claims["acr"] == "1"


async def test_a_level_2_account_gets_acr_2(http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen) -> None:
    who = await level_2(info, await person(info, fresh_citizen))
    flow = portal_flow(info, acr_values="2")
    params = await sign_in(Browser(http), flow, who.id_number, who.password, who.code())
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code == 200, reply.text
    keyset = KeySet.import_key_set((await http.get(f"{info.oidc_issuer}/jwks")).json())
    assert jwt.decode(reply.json()["id_token"], keyset).claims["acr"] == "2"
    assert jwt.decode(reply.json()["access_token"], keyset).claims["acr"] == "2"


async def test_a_client_registered_with_min_acr_2(
    http: httpx.AsyncClient, info: StackInfo, stack: Stack, fresh_citizens
) -> None:
    code, made = dinhdanh(stack, "clients", "add-portal", "--name", "Cổng cấp phiếu lý lịch tư pháp",
                          "--redirect-uri", "https://lltp.example/callback", "--min-acr", "2")  # fmt: skip
    assert code == 0, made
    assert made["min_acr"] == 2
    flow = SignIn(info.oidc_issuer, made["client_id"], made["client_secret"], "https://lltp.example/callback", "openid")
    low = await person(info, next(fresh_citizens))
    browser = Browser(http)
    await assert_refused(browser, flow, await through_login(browser, flow, low))  # no acr_values needed
    high = await level_2(info, await person(info, next(fresh_citizens)))
    params = await sign_in(Browser(http), flow, high.id_number, high.password, high.code())
    reply = await flow.redeem(http, params["code"], params["_verifier"])
    assert reply.status_code == 200, reply.text
    keyset = KeySet.import_key_set((await http.get(f"{info.oidc_issuer}/jwks")).json())
    assert jwt.decode(reply.json()["id_token"], keyset).claims["acr"] == "2"
    code, bad = dinhdanh(stack, "clients", "add-portal", "--name", "x", "--redirect-uri",
                         "https://x.example/cb", "--min-acr", "3")  # fmt: skip
    assert code != 0
    assert "min-acr" in bad["error"] or "level" in bad["error"]
