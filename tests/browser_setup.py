"""``python -m tests.browser_setup``: make sure the browser tests can run on this machine.

They drive Debian's Chromium (``/usr/bin/chromium``, from apt) through the ``playwright`` Python package;
Playwright's own browser downloads (``playwright install``) are never used. When Chromium is missing this
installs it with apt-get (root, as on the development machines and in CI); when ``playwright`` does not
import it is installed into this interpreter at the pinned version. Exits non-zero with the reason on failure.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
PLAYWRIGHT = "playwright==1.65.2"
# Headless, no sandbox (root in containers), and no traffic of the browser's own (updates, sync, QUIC).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--disable-quic",
]
HOW_TO_FIX = "run `.venv/bin/python -m tests.browser_setup` (as root: it installs Debian's chromium with apt-get)"


def missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} is missing: {HOW_TO_FIX}"
    try:
        importlib.import_module("playwright.async_api")
    except ImportError as exc:
        return f"the playwright package does not import ({exc}): {HOW_TO_FIX}"
    return None


def _run(command: list[str], setup: str = "browser setup") -> None:
    print("+", " ".join(command), flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(command, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{setup}: `{' '.join(command)}` failed (exit {result.returncode})")


def apt_install(setup: str, package: str, missing: str) -> None:
    """Install Debian's ``package`` with apt-get (as root) for ``setup`` (its name in messages), because ``missing``
    (what is absent) is; exits with what to do where apt-get is absent or this is not root."""
    if shutil.which("apt-get") is None:
        raise SystemExit(f"{setup}: {missing} is missing and there is no apt-get: install {package} by hand")
    if os.geteuid() != 0:
        raise SystemExit(
            f"{setup}: {missing} is missing; run as root, or: "
            f"sudo apt-get update && sudo apt-get install -y --no-install-recommends {package}"
        )
    _run(["apt-get", "update"], setup)
    _run(["apt-get", "install", "-y", "--no-install-recommends", package], setup)


def ensure_chromium() -> None:
    if CHROMIUM.is_file():
        return
    apt_install("browser setup", "chromium", str(CHROMIUM))
    if not CHROMIUM.is_file():
        raise SystemExit(f"browser setup: apt-get installed chromium but {CHROMIUM} is still missing")


def ensure_playwright() -> None:
    try:
        importlib.import_module("playwright.async_api")
        return
    except ImportError:
        pass
    # Only the Python package: its browser downloads (`playwright install`) are never run.
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PLAYWRIGHT])
    importlib.invalidate_caches()
    try:
        importlib.import_module("playwright.async_api")
    except ImportError as exc:
        raise SystemExit(f"browser setup: playwright still does not import after installing it: {exc}") from None


def check_launch() -> str:
    """Starts Chromium headless through Playwright once; returns its version."""
    from playwright.sync_api import Error, sync_playwright

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            version = browser.version
            browser.close()
    except Error as exc:
        raise SystemExit(f"browser setup: Chromium does not start under Playwright: {exc}") from None
    return version


def main() -> None:
    ensure_chromium()
    ensure_playwright()
    version = check_launch()
    print(f"browser tests ready: {CHROMIUM} (Chromium {version}) driven by playwright")


if __name__ == "__main__":
    main()
