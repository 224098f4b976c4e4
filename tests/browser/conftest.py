"""Browser fixtures: Debian's Chromium driven by Playwright (async API, on the session event loop).

The ``platform`` (OP, demo portals, demo citizen) and a ``browser`` per session, a fresh ``context`` (cookies,
storage) and ``page`` per test. Without Chromium or Playwright the tests fail with the fix to run
(``python -m tests.browser_setup``); they are never skipped.
On failure every page of the test's context is saved to ``bench-results/browser/`` (screenshot, HTML, URL).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from stack.supervisor import Stack
from tests.browser.signin import Platform, platform_of
from tests.browser_setup import CHROMIUM, CHROMIUM_ARGS, missing

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

TIMEOUT_MS = 15_000
EVIDENCE = Path(__file__).resolve().parents[2] / "bench-results" / "browser"
_reports = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_reports, {})[report.when] = report
    return report


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    problem = missing()
    if problem:
        pytest.fail(f"browser tests cannot run: {problem}", pytrace=False)
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        await chromium.close()


@pytest.fixture(scope="session")
def platform(stack: Stack) -> Platform:
    return platform_of(stack)


@pytest.fixture
async def context(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    reports = request.node.stash.get(_reports, {})
    if any(r.failed for r in reports.values()):
        await _save_evidence(context, request.node.nodeid)
    await context.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


async def _save_evidence(context: BrowserContext, nodeid: str) -> None:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.rpartition("::")[2])
    for number, open_page in enumerate(context.pages):
        try:  # evidence is best effort: never hide the test's own failure
            png, html = await open_page.screenshot(full_page=True), await open_page.content()
        except Exception as exc:
            png, html = b"", f"<!-- could not save the page: {exc} -->"
        print(f"browser evidence: {_write(f'{stem}-{number}', open_page.url, png, html)} ({open_page.url})")


def _write(name: str, url: str, png: bytes, html: str) -> Path:
    EVIDENCE.mkdir(parents=True, exist_ok=True)
    if png:
        (EVIDENCE / f"{name}.png").write_bytes(png)
    (EVIDENCE / f"{name}.html").write_text(f"<!-- {url} -->\n{html}")
    return EVIDENCE / f"{name}.png"
