"""The browser fixtures (Chromium through Playwright) for the passkey browser test: those of tests/browser."""

from tests.browser.conftest import (  # noqa: F401 - fixtures and the evidence hook, re-exported for this folder
    browser,
    context,
    page,
    platform,
    pytest_runtest_makereport,
)
