"""``python -m tests.hsm_setup``: make sure the PKCS#11 tests (tests/hsm/) can run on this machine.

They sign through SoftHSM2, Debian's ``softhsm2`` (the module ``/usr/lib/softhsm/libsofthsm2.so`` and
``softhsm2-util``), with ``python-pkcs11`` (pinned in pyproject). When the module is missing this installs the
package with apt-get (root, as on the development machines and in CI), then initialises a throw-away token in a
temporary directory and signs once with an Ed25519 and a P-256 key in it. Exits non-zero with the reason on failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.browser_setup import apt_install

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
UTIL = "softhsm2-util"
HOW_TO_FIX = "run `.venv/bin/python -m tests.hsm_setup` (as root: it installs Debian's softhsm2 with apt-get)"


def missing() -> str | None:
    """Why the HSM tests cannot run here, or None when they can."""
    if not MODULE.is_file():
        return f"{MODULE} is missing: {HOW_TO_FIX}"
    if shutil.which(UTIL) is None:
        return f"{UTIL} is missing: {HOW_TO_FIX}"
    return None


def _run(command: list[str], env: dict[str, str] | None = None, quiet: bool = False) -> None:
    if not quiet:
        print("+", " ".join(command), flush=True)
    full = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", **(env or {})}
    result = subprocess.run(command, env=full, check=False, capture_output=quiet, text=True)
    if result.returncode != 0:
        detail = f": {result.stderr.strip() or result.stdout.strip()}" if quiet else ""
        raise SystemExit(f"hsm setup: `{' '.join(command)}` failed (exit {result.returncode}){detail}")


def ensure_softhsm() -> None:
    if missing() is None:
        return
    apt_install("hsm setup", "softhsm2", str(MODULE))
    if (reason := missing()) is not None:
        raise SystemExit(f"hsm setup: apt-get installed softhsm2 but {reason}")


def write_config(folder: Path) -> Path:
    """A SoftHSM2 configuration whose tokens live in ``folder/tokens`` (what SOFTHSM2_CONF names)."""
    tokens = folder / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    config = folder / "softhsm2.conf"
    config.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    return config


def init_token(config: Path, label: str, pin: str, so_pin: str) -> None:
    """``softhsm2-util --init-token --free``: a new token in the first free slot."""
    command = [UTIL, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin]
    _run(command, env={"SOFTHSM2_CONF": str(config)}, quiet=True)


_CHECK = """
import sys
from pathlib import Path
from core.keys.pkcs11 import Token
token = Token(Path(sys.argv[1]), "setup-check", "1234")
for alg in ("EdDSA", "ES256"):
    signer = token.generate(f"check-{alg}", alg)
    assert len(signer.sign(b"hsm setup")) == 64, alg
"""


def check_signing() -> None:
    """Sign once in a throw-away token (in a child process: SoftHSM2 reads SOFTHSM2_CONF once per process)."""
    with tempfile.TemporaryDirectory(prefix="hsm-setup-") as folder:
        config = write_config(Path(folder))
        init_token(config, "setup-check", "1234", "5678")
        root = Path(__file__).resolve().parent.parent
        env = {"SOFTHSM2_CONF": str(config), "PYTHONPATH": str(root)}
        _run([sys.executable, "-c", _CHECK, str(MODULE)], env=env, quiet=True)


def main() -> None:
    ensure_softhsm()
    check_signing()
    print(f"hsm tests ready: {MODULE} signs ES256 and EdDSA through python-pkcs11")


if __name__ == "__main__":
    main()
