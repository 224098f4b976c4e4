"""The OpenID Provider as relying parties see it: code + PKCE, tokens, userinfo, SSO, logout."""

from __future__ import annotations

import secrets

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet

from bench.browserless import Browser, callback_params, csrf_of
from registry.citizen import Citizen
from stack.info import StackInfo
from tests.oidc_helpers import person, portal_flow, signed_in


async def test_discovery_and_jwks(http: httpx.AsyncClient, info: StackInfo) -> None:
    meta = (await http.get(f"{info.oidc_issuer}/.well-known/openid-configuration")).json()
    assert meta["issuer"] == info.oidc_issuer
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert "password" not in meta["grant_types_supported"]
    methods = set(meta["token_endpoint_auth_methods_supported"])
    assert methods == {"client_secret_basic", "private_key_jwt", "tls_client_auth"}  # RFC 8705 §2.1 on the mTLS port
    keys = (await http.get(meta["jwks_uri"])).json()["keys"]
    assert {k["alg"] for k in keys} == {"RS256", "ES256"}
    assert len(keys) >= 4  # a current and a published next key per algorithm
    assert all("d" not in k for k in keys), "no private key material"


async def test_code_flow_with_pkce_as_authlib_client_sees_it(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    who = await person(info, fresh_citizen)
    flow = portal_flow(info, scope="openid profile address phone national_id offline_access")
    meta = (await http.get(f"{info.oidc_issuer}/.well-known/openid-configuration")).json()
    rp = AsyncOAuth2Client(flow.client_id, flow.client_secret, scope=flow.scope, redirect_uri=flow.redirect_uri,
                           code_challenge_method="S256")  # fmt: skip
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(8)
    url, state = rp.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    browser = Browser(http)
    page = await browser.follow("GET", url, stop_at=flow.redirect_uri)
    page = await browser.follow(
        "POST",
        f"{info.oidc_issuer}/login",
        stop_at=flow.redirect_uri,
        data={"csrf": csrf_of(page), "id_number": who.id_number, "password": who.password},
    )
    page = await browser.follow(
        "POST",
        f"{info.oidc_issuer}/login/totp",
        stop_at=flow.redirect_uri,
        data={"csrf": csrf_of(page), "code": who.code()},
    )
    assert 'name="decision"' in page.text  # first time: the consent page names the claims
    assert "Số định danh cá nhân" in page.text
    reply = await browser.follow("POST", f"{info.oidc_issuer}/consent", stop_at=flow.redirect_uri,
                                 data={"csrf": csrf_of(page), "decision": "allow"})  # fmt: skip
    params = callback_params(reply)
    assert params["state"] == state
    assert params["iss"] == info.oidc_issuer  # RFC 9207
    async with rp:
        token = await rp.fetch_token(meta["token_endpoint"], code=params["code"], code_verifier=verifier)
    assert token["token_type"] == "Bearer"
    assert token["refresh_token"]  # offline_access was asked for and consented to
    keyset = KeySet.import_key_set((await http.get(meta["jwks_uri"])).json())
    id_token = jwt.decode(token["id_token"], keyset, algorithms=["RS256"])
    assert id_token.header["alg"] == "RS256"
    claims = id_token.claims
    assert (claims["iss"], claims["aud"], claims["nonce"]) == (info.oidc_issuer, [flow.client_id], nonce)
    assert who.id_number not in token["id_token"] + token["access_token"]  # sub is opaque (Core §8)
    assert who.id_number not in str(claims) + str(jwt.decode(token["access_token"], keyset).claims)
    assert claims["amr"] == ["pwd", "otp"]
    assert claims["acr"] == "1"
    access = jwt.decode(token["access_token"], keyset, algorithms=["ES256"])
    assert access.header["typ"] == "at+jwt"
    assert info.oidc_issuer in access.claims["aud"]
    userinfo = await http.get(meta["userinfo_endpoint"], headers={"authorization": f"Bearer {token['access_token']}"})
    data = userinfo.json()
    assert data["sub"] == claims["sub"]
    assert data["national_id"] == who.id_number  # only because national_id was asked for and consented
    assert data["name"] == fresh_citizen.full_name
    assert data["phone_number"] == "+84" + fresh_citizen.phone[1:]
    assert data["address"]["region"] == fresh_citizen.permanent_address.province


async def test_sso_second_portal_asks_no_credentials_and_logout_ends_it(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    who = await person(info, fresh_citizen)
    first = portal_flow(info, "portal")
    browser, params = await signed_in(http, first, who)
    token = (await first.redeem(http, params["code"], params["_verifier"])).json()
    second = portal_flow(info, "portal_2")
    from bench.browserless import pkce_pair

    verifier, challenge = pkce_pair()
    page = await browser.follow("GET", second.authorize_url("s2", "n2", challenge), stop_at=second.redirect_uri)
    assert 'name="password"' not in page.text  # single sign-on: no credentials asked
    if 'name="decision"' in page.text:
        page = await browser.follow("POST", f"{info.oidc_issuer}/consent", stop_at=second.redirect_uri,
                                    data={"csrf": csrf_of(page), "decision": "allow"})  # fmt: skip
    code = callback_params(page)["code"]
    assert (await second.redeem(http, code, verifier)).status_code == 200
    post_logout = first.redirect_uri.rsplit("/", 1)[0] + "/"
    out = await browser.request(
        "GET", f"{info.oidc_issuer}/logout",
        params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": post_logout, "state": "bye"},
    )  # fmt: skip
    assert out.status_code == 303
    assert out.headers["location"] == post_logout + "?state=bye"
    verifier, challenge = pkce_pair()
    page = await browser.follow("GET", first.authorize_url("s3", "n3", challenge), stop_at=first.redirect_uri)
    assert 'name="password"' in page.text  # the SSO session is over


async def test_client_credentials_for_an_agency(http: httpx.AsyncClient, info: StackInfo, stack) -> None:
    from tests.vault_helpers import keyed_agency

    keyed, agency = keyed_agency(stack, "Sở Y tế Hà Nội", "--purpose", "health-book")  # FAPI 2.0: key + DPoP
    reply = await keyed.token_response(http, info.oidc_issuer, "vault.issue", "urn:dinhdanh:service:vault")
    token = reply.json()
    assert reply.status_code == 200, token
    assert token["token_type"] == "DPoP"
    assert "refresh_token" not in token
    claims = jwt.decode(
        token["access_token"], KeySet.import_key_set((await http.get(f"{info.oidc_issuer}/jwks")).json())
    )
    assert claims.claims["sub"] == agency["client_id"]
    assert "urn:dinhdanh:service:vault" in claims.claims["aud"]
    assert claims.claims["scope"] == "vault.issue"


async def test_first_sign_in_enrolls_totp_on_the_login_pages(
    http: httpx.AsyncClient, info: StackInfo, fresh_citizen: Citizen
) -> None:
    import re

    from bench.browserless import pkce_pair
    from identity import totp
    from tests.identity_calls import PASSWORD, activate

    async with info.channel("identity") as identity:
        await activate(identity, fresh_citizen, "test-enroll")  # no TOTP yet
    flow = portal_flow(info)
    browser = Browser(http)
    _, challenge = pkce_pair()
    page = await browser.follow("GET", flow.authorize_url("s", "n", challenge), stop_at=flow.redirect_uri)
    page = await browser.follow(
        "POST",
        f"{info.oidc_issuer}/login",
        stop_at=flow.redirect_uri,
        data={"csrf": csrf_of(page), "id_number": fresh_citizen.id_number, "password": PASSWORD},
    )
    assert 'src="data:image/png;base64,' in page.text
    assert 'autocomplete="one-time-code"' in page.text
    secret = re.search(r'<code id="secret">([A-Z2-7]+)</code>', page.text)
    assert secret
    wrong = await browser.follow("POST", f"{info.oidc_issuer}/login/enroll", stop_at=flow.redirect_uri,
                                 data={"csrf": csrf_of(page), "code": "000000"})  # fmt: skip
    assert wrong.status_code == 401
    # A wrong code is no dead end: the same page again, with the error and the secret already scanned.
    assert 'role="alert"' in wrong.text
    assert f'<code id="secret">{secret.group(1)}</code>' in wrong.text
    reloaded = await browser.follow("GET", f"{info.oidc_issuer}/login/enroll", stop_at=flow.redirect_uri)
    assert f'<code id="secret">{secret.group(1)}</code>' in reloaded.text  # a reload keeps the secret
    done = await browser.follow("POST", f"{info.oidc_issuer}/login/enroll", stop_at=flow.redirect_uri,
                                data={"csrf": csrf_of(page), "code": totp.code_at(secret.group(1))})  # fmt: skip
    if 'name="decision"' in done.text:
        done = await browser.follow("POST", f"{info.oidc_issuer}/consent", stop_at=flow.redirect_uri,
                                    data={"csrf": csrf_of(done), "decision": "allow"})  # fmt: skip
    assert "code" in callback_params(done)


async def test_wrong_password_and_english_pages(http: httpx.AsyncClient, info: StackInfo) -> None:
    from bench.browserless import pkce_pair

    flow = portal_flow(info)
    browser = Browser(http)
    _, challenge = pkce_pair()
    page = await browser.follow("GET", flow.authorize_url("s", "n", challenge), stop_at=flow.redirect_uri)
    english = await browser.request("GET", f"{info.oidc_issuer}/login?lang=en")
    assert '<html lang="en">' in english.text
    assert "Sign in with your national e-identity" in english.text
    reply = await browser.request(
        "POST",
        f"{info.oidc_issuer}/login",
        data={"csrf": csrf_of(page), "id_number": "001099000001", "password": "nope nope"},
    )
    assert reply.status_code == 401
    assert "Wrong ID number or password." in reply.text  # the language choice is remembered
