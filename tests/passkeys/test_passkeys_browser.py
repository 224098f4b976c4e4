"""Passkeys in Chromium with its virtual authenticator (DevTools protocol, WebAuthn domain): enrolment on the OP's
passkey page, then sign-in with the passkey as the second factor after the password, then passwordless — refused
while the account is level 1, accepted at level 2 — each time back at the demo portal with the ``amr``/``acr`` the
ID token carries. The stack's issuer is ``http://localhost:<port>``: a secure context, and ``localhost`` is the
RP ID (an IP address could not be one)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protos.identity.v1 import identity_pb2 as ipb
from protos.identity.v1 import identity_pb2_grpc as igrpc
from registry.citizen import Citizen
from stack.info import StackInfo
from tests.browser.signin import Platform, back_on, follow, second_factor, sign_in_with_password
from tests.oidc_helpers import person

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, CDPSession, Locator, Page

AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


async def virtual_authenticator(context: BrowserContext, page: Page) -> tuple[CDPSession, str]:
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    added = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    return cdp, added["authenticatorId"]


def amr_row(page: Page) -> Locator:
    """The demo portal's ``amr`` claim (its table of the ID token's claims)."""
    return page.locator("#claims tr", has_text="authentication methods").locator("td")


async def to_login(page: Page, context: BrowserContext, platform: Platform) -> None:
    """Signed out (no cookies: no SSO session), from the portal to the OP's login page."""
    await context.clear_cookies()
    await page.goto(platform.portal)
    await follow(page, page.locator("#login"))


async def test_enrol_then_second_factor_then_passwordless_in_chromium(
    page: Page, context: BrowserContext, platform: Platform, info: StackInfo, fresh_citizen: Citizen
) -> None:
    from playwright.async_api import expect

    who = await person(info, fresh_citizen)
    citizen: dict[str, Any] = {"id_number": who.id_number, "password": who.password}
    cdp, authenticator = await virtual_authenticator(context, page)

    # password + TOTP (no passkey yet: the TOTP page offers none)
    await to_login(page, context, platform)
    await expect(page.locator("#passkey-signin")).to_be_visible()  # WebAuthn exists here: the button shows
    await sign_in_with_password(page, citizen)
    await page.wait_for_load_state("networkidle")
    await expect(page.locator("#passkey-second")).to_be_hidden()
    await second_factor(page, who.totp_secret)
    await back_on(page, platform.portal)

    # enrolment on the OP's passkey page (the SSO session is fresh)
    await page.goto(platform.issuer + "/security/passkeys")
    await expect(page.locator("#no-passkeys")).to_be_visible()
    await page.locator("#passkey-name").fill("Chromium ảo")
    await follow(page, page.locator("#passkey-add [data-passkey-start]"))
    await expect(page.locator("#passkeys li")).to_have_count(1)
    await expect(page.locator("#passkeys li")).to_contain_text("Chromium ảo")
    await expect(page.locator("#passkeys li")).to_contain_text("gắn với một thiết bị")  # not backup eligible
    credentials = (await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator}))["credentials"]
    assert len(credentials) == 1
    assert credentials[0]["isResidentCredential"] is True
    assert credentials[0]["rpId"] == "localhost"

    # the passkey as the second factor, instead of a code
    await to_login(page, context, platform)
    await sign_in_with_password(page, citizen)
    await expect(page.locator("#passkey-second")).to_be_visible()
    await follow(page, page.locator("#passkey-second [data-passkey-start]"))
    await back_on(page, platform.portal)
    await expect(amr_row(page)).to_have_text("pwd, hwk, user")
    await expect(page.locator("#claims")).to_contain_text(fresh_citizen.id_number)

    # passwordless: refused for a level-1 account, with the way to go on
    await to_login(page, context, platform)
    await follow(page, page.locator("#passkey-signin [data-passkey-start]"))
    await expect(page.locator('[role="alert"]')).to_contain_text("mức độ 2")
    assert await page.locator('input[name="password"]').count() == 1  # still the login page

    # … and accepted once an officer verified the citizen in person (level 2)
    async with info.channel("identity") as operator:
        await igrpc.IdentityStub(operator).SetAssuranceLevel(
            ipb.SetAssuranceLevelRequest(id_number=who.id_number, level=2, note="Công an phường Bến Nghé")
        )
    await to_login(page, context, platform)
    await follow(page, page.locator("#passkey-signin [data-passkey-start]"))
    await back_on(page, platform.portal)
    claims = page.locator("#claims")
    await expect(claims).to_contain_text(fresh_citizen.id_number)
    await expect(amr_row(page)).to_have_text("hwk, user")  # no password: the passkey with user verification
    after = (await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator}))["credentials"]
    assert after[0]["signCount"] > credentials[0]["signCount"]
