"""Single sign-on in a real browser: two demo portals (two clients) on the platform's OpenID Provider.

The OP's page conventions the helpers rely on are in ``tests/browser/signin.py``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests.browser.signin import (
    Platform,
    at,
    back_on,
    expect_login_page,
    expect_signed_in,
    follow,
    second_factor,
    sign_in_with_password,
)

if TYPE_CHECKING:
    from playwright.async_api import Page


async def test_single_sign_on_across_two_portals_then_logout(page: Page, platform: Platform) -> None:
    from playwright.async_api import expect

    citizen = platform.citizen

    # Portal 1: the full sign-in (password, then TOTP, then consent if asked).
    await page.goto(platform.portal)
    await follow(page, page.locator("#login"))
    await expect_login_page(page, platform.issuer)
    await sign_in_with_password(page, citizen)
    await second_factor(page, citizen["totp_secret"])
    await back_on(page, platform.portal)
    await expect_signed_in(page, citizen)

    # Portal 2, another client: the OP session signs the citizen in without credentials.
    await page.goto(platform.portal_2)
    await follow(page, page.locator("#login"))
    await back_on(page, platform.portal_2)
    await expect_signed_in(page, citizen)

    # Logout from portal 2 (RP-initiated): signed out there, and the OP session is gone.
    await follow(page, page.locator("#logout"))
    if at(platform.issuer).match(page.url):  # the OP asked to confirm
        await follow(page, page.locator('form button[type="submit"]').first)
    await expect(page).to_have_url(at(platform.portal_2))
    await expect(page.locator("#login")).to_be_visible()

    await page.goto(f"{platform.portal}/login")
    await expect_login_page(page, platform.issuer)

    # The language switch: Vietnamese first, English on request, the sign-in form still there.
    html = page.locator("html")
    await expect(html).to_have_attribute("lang", re.compile(r"^vi"))
    await follow(page, page.locator('a[href*="lang=en"]').first)
    await expect(html).to_have_attribute("lang", re.compile(r"^en"))
    await expect(page.locator('input[name="id_number"]')).to_be_visible()
