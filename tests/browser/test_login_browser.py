"""The OP's login pages in a real browser: TOTP enrolment on the QR page, a wrong password, a wrong code, the
throttling wait and the lockout message.

The OP's page conventions the helpers rely on are in ``tests/browser/signin.py``.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import asyncpg

from identity import totp
from registry.citizen import Citizen
from stack.info import StackInfo
from tests.browser.signin import (
    Platform,
    at,
    back_on,
    expect_login_page,
    follow,
    login_form,
    second_factor,
    sign_in_with_password,
    totp_form,
)
from tests.identity_calls import PASSWORD, activate
from tests.oidc_helpers import person

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page


async def open_login(page: Page, platform: Platform) -> None:
    await page.goto(platform.portal)
    await follow(page, page.locator("#login"))
    await expect_login_page(page, platform.issuer)


def alert(page: Page) -> Locator:
    return page.locator('[role="alert"]')


async def test_first_sign_in_enrols_totp_on_the_qr_page(
    page: Page, platform: Platform, info: StackInfo, fresh_citizen: Citizen
) -> None:
    from playwright.async_api import expect

    async with info.channel("identity") as identity:
        await activate(identity, fresh_citizen, "browser-enrol")  # an account without TOTP yet
    await open_login(page, platform)
    await sign_in_with_password(page, {"id_number": fresh_citizen.id_number, "password": PASSWORD})
    qr = page.locator('img[src^="data:image/png;base64,"]')
    await expect(qr).to_be_visible()
    assert await qr.evaluate("img => img.complete && img.naturalWidth > 0"), "the QR code is not a decodable image"
    secret = (await page.locator("#secret").inner_text()).strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    await expect(page.locator('input[name="code"]')).to_have_attribute("autocomplete", "one-time-code")
    form = totp_form(page)
    await form.locator('input[name="code"]').fill(totp.code_at(secret, time.time()))
    await follow(page, form.locator('button[type="submit"]'))
    await back_on(page, platform.portal)
    await expect(page.locator("#claims")).to_contain_text(fresh_citizen.id_number)


async def test_wrong_password_then_wrong_code_then_in(
    page: Page, platform: Platform, info: StackInfo, fresh_citizen: Citizen
) -> None:
    from playwright.async_api import expect

    who = await person(info, fresh_citizen)
    citizen = {"id_number": who.id_number, "password": who.password}
    await open_login(page, platform)
    await sign_in_with_password(page, {**citizen, "password": "not the password 2026"})
    await expect(alert(page)).to_have_text("Sai số định danh hoặc mật khẩu.")
    await expect(login_form(page).locator('input[name="id_number"]')).to_have_value(who.id_number)  # kept
    await sign_in_with_password(page, citizen)
    form = totp_form(page)
    await form.locator('input[name="code"]').fill("000000")
    await follow(page, form.locator('button[type="submit"]'))
    await expect(alert(page)).to_have_text("Mã xác thực không đúng hoặc đã được dùng.")
    await second_factor(page, who.totp_secret)
    await back_on(page, platform.portal)
    await expect(page.locator("#claims")).to_contain_text(who.id_number)


async def test_repeated_wrong_passwords_show_the_wait_then_the_lock(
    page: Page, platform: Platform, info: StackInfo, fresh_citizen: Citizen
) -> None:
    from playwright.async_api import expect

    who = await person(info, fresh_citizen)
    await open_login(page, platform)
    wrong = {"id_number": who.id_number, "password": "not the password 2026"}
    for _ in range(8):  # 5 free failures per source, then doubling waits
        await sign_in_with_password(page, wrong)
        text = await alert(page).inner_text()
        if "thử lại sau" in text:
            break
        assert text == "Sai số định danh hoặc mật khẩu.", text
    waited = re.search(r"thử lại sau (\d+) giây", text)
    assert waited, f"no wait after 8 wrong passwords: {text!r}"
    assert int(waited.group(1)) >= 1
    # As if 100 consecutive failures had happened (the account lock of SP 800-63B §3.2.2).
    conn = await asyncpg.connect(info.postgres_dsn)
    try:
        await conn.execute(
            "INSERT INTO identity.throttle (account, source, factor, failures, last_failure)"
            " VALUES ($1, '*all', '*', 100, now()) ON CONFLICT (account, source, factor) DO UPDATE SET failures = 100",
            who.id_number,
        )
    finally:
        await conn.close()
    await page.goto(f"{platform.portal}/login")
    await expect_login_page(page, platform.issuer)
    await sign_in_with_password(page, {"id_number": who.id_number, "password": who.password})
    await expect(alert(page)).to_contain_text("Tài khoản tạm khóa")
    await expect(page).to_have_url(at(platform.issuer))
