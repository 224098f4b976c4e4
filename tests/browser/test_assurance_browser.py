"""A portal that requires assurance level 2, in a real browser: a level-1 citizen is told why the sign-in stops
and how to reach level 2 (Vietnamese first, English on request), and the way back gives the portal
``access_denied``.

The OP's page conventions the helpers rely on are in ``tests/browser/signin.py``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from bench.browserless import pkce_pair
from registry.citizen import Citizen
from stack.info import StackInfo
from tests.browser.signin import Platform, at, expect_login_page, follow, second_factor, sign_in_with_password
from tests.oidc_helpers import person, portal_flow

if TYPE_CHECKING:
    from playwright.async_api import Page


async def test_level_1_citizen_at_a_level_2_request_sees_why_and_the_portal_gets_access_denied(
    page: Page, platform: Platform, info: StackInfo, fresh_citizen: Citizen
) -> None:
    from playwright.async_api import expect

    who = await person(info, fresh_citizen)
    _, challenge = pkce_pair()
    await page.goto(portal_flow(info, acr_values="2").authorize_url("st", "n", challenge))
    await expect_login_page(page, platform.issuer)
    await sign_in_with_password(page, {"id_number": who.id_number, "password": who.password})
    await second_factor(page, who.totp_secret)
    await expect(page).to_have_url(re.compile(re.escape(platform.issuer) + "/login/assurance"))
    await expect(page.locator("h1")).to_contain_text("mức độ 2")
    await expect(page.locator("main")).to_contain_text("xác minh trực tiếp")
    await follow(page, page.locator('a[href*="lang=en"]').first)
    await expect(page.locator("html")).to_have_attribute("lang", re.compile(r"^en"))
    await expect(page.locator("main")).to_contain_text("verified in person")
    await follow(page, page.locator("#back"))
    await expect(page).to_have_url(at(platform.portal))
    assert "error=access_denied" in page.url
    assert "code=" not in page.url
