"""Signing in at the platform's OpenID Provider in a real browser: helpers shared by the browser tests.

Written against these conventions of the OP's pages:

- login: ``<input name="id_number" autocomplete="username">``, ``<input name="password" type="password"
  autocomplete="current-password">`` and a ``<button type="submit">`` in the same form;
- second factor: ``<input name="code" autocomplete="one-time-code" inputmode="numeric">`` and a submit button;
- consent (may be skipped by the OP): ``<button type="submit" name="decision" value="allow">``;
- a language switch link ``a[href*="lang=en"]`` that keeps the page (and the sign-in) and sets ``<html lang="en">``;
- RP-initiated logout with a valid ``id_token_hint`` returns to ``post_logout_redirect_uri`` (a confirmation page,
  if any, is a form whose submit button confirms).

``var/stack.json`` gives ``oidc_issuer``, ``demo_portal``, ``demo_portal_2`` (a second client) and ``demo_citizen``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from identity.totp import STEP, code_at, current_step
from stack.supervisor import Stack

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

NEEDED = ("oidc_issuer", "demo_portal", "demo_portal_2", "demo_citizen")


@dataclass(frozen=True)
class Platform:
    issuer: str
    portal: str
    portal_2: str
    citizen: dict[str, Any]


def platform_of(stack: Stack) -> Platform:
    """The OP, the demo portals and the demo citizen, from the stack's ``var/stack.json``."""
    data = json.loads((stack.var / "stack.json").read_text())
    absent = [key for key in NEEDED if not data.get(key)]
    if absent:
        pytest.fail(
            f"var/stack.json has no {absent}: the stack does not run the OP and the demo portals", pytrace=False
        )
    return Platform(
        issuer=data["oidc_issuer"].rstrip("/"),
        portal=data["demo_portal"].rstrip("/"),
        portal_2=data["demo_portal_2"].rstrip("/"),
        citizen=data["demo_citizen"],
    )


def at(base: str) -> re.Pattern[str]:
    """Any URL on ``base`` (scheme, host and port)."""
    return re.compile("^" + re.escape(base) + "(/|$)")


async def follow(page: Page, action: Locator) -> None:
    """Clicks ``action`` and waits until the page it leads to (after any redirects) has loaded."""
    async with page.expect_navigation():
        await action.click()


def login_form(page: Page) -> Locator:
    return page.locator("form", has=page.locator('input[name="id_number"]'))


def totp_form(page: Page) -> Locator:
    return page.locator("form", has=page.locator('input[name="code"]'))


def consent_allow(page: Page) -> Locator:
    return page.locator('button[type="submit"][name="decision"][value="allow"]')


async def expect_login_page(page: Page, issuer: str) -> None:
    from playwright.async_api import expect

    await expect(page).to_have_url(at(issuer))
    id_number = page.locator('input[name="id_number"]')
    password = page.locator('input[name="password"]')
    await expect(id_number).to_be_visible()
    await expect(id_number).to_have_attribute("autocomplete", "username")
    await expect(password).to_have_attribute("type", "password")
    await expect(password).to_have_attribute("autocomplete", "current-password")
    await expect(login_form(page).locator('button[type="submit"]')).to_be_visible()


async def sign_in_with_password(page: Page, citizen: dict[str, Any]) -> None:
    form = login_form(page)
    await form.locator('input[name="id_number"]').fill(citizen["id_number"])
    await form.locator('input[name="password"]').fill(citizen["password"])
    await follow(page, form.locator('button[type="submit"]'))


async def second_factor(page: Page, secret: str) -> None:
    """Enters the TOTP code; a code works once per 30 s step, so when this step's code (or the next's) was
    already used (by another test) the next unused step's code follows, waiting for its step if need be."""
    from playwright.async_api import expect

    code = page.locator('input[name="code"]')
    await expect(code).to_be_visible()
    await expect(code).to_have_attribute("autocomplete", "one-time-code")
    await expect(code).to_have_attribute("inputmode", "numeric")
    tried: set[int] = set()
    for _ in range(3):  # at most 3 refusals: below the 5 free TOTP failures of the throttling policy
        step = min(set(range(current_step(), current_step() + 2)) - tried, default=None)
        if step is None:  # this step's and the next's codes were refused: wait for the next step
            await asyncio.sleep(STEP - time.time() % STEP + 0.5)
            step = current_step() + 1
        tried.add(step)
        form = totp_form(page)
        await form.locator('input[name="code"]').fill(code_at(secret, step * STEP))
        await follow(page, form.locator('button[type="submit"]'))
        if not await totp_form(page).count():
            return
    pytest.fail(f"the OP refused the TOTP codes of steps {sorted(tried)} ({page.url})")


async def back_on(page: Page, portal: str) -> None:
    """From the OP's pages back to ``portal``, allowing consent when asked, never entering credentials."""
    for _ in range(3):
        if at(portal).match(page.url):
            return
        if await login_form(page).count() or await totp_form(page).count():
            pytest.fail(f"the OP asked for credentials again at {page.url}")
        if not await consent_allow(page).count():
            break
        await follow(page, consent_allow(page))
    if not at(portal).match(page.url):
        pytest.fail(f"expected to be back on {portal}, at {page.url}")


async def expect_signed_in(page: Page, citizen: dict[str, Any]) -> None:
    from playwright.async_api import expect

    claims = page.locator("#claims")
    await expect(claims).to_contain_text(citizen["id_number"])  # scope national_id
    await expect(claims).to_contain_text("Họ và tên")  # the `name` claim (scope profile)
    await expect(page.locator("#logout")).to_be_visible()
