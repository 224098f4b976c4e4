"""A fresh SoftHSM2 token per test session, in a temp dir of its own (SOFTHSM2_CONF names its config).

SoftHSM2 reads ``SOFTHSM2_CONF`` once per process, when the module is first loaded (``C_Initialize``), and
``python-pkcs11`` loads one module per process: so the token is made once per session (per xdist worker), before
anything here opens it; processes started by the tests (a stack's edge, a wrong-PIN start) get the same
``SOFTHSM2_CONF`` in their environment and see the same token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.keys.pkcs11 import Token
from tests import hsm_setup

PIN = "4821-7730"
SO_PIN = "9902-1154"


@dataclass(frozen=True)
class SoftHSM:
    config: Path
    module: Path
    label: str
    pin_file: Path

    def env(self) -> dict[str, str]:
        """The settings of a process that signs in this token (core/settings.py)."""
        return {
            "SOFTHSM2_CONF": str(self.config),
            "DINHDANH_KEY_BACKEND": "pkcs11",
            "DINHDANH_PKCS11_MODULE": str(self.module),
            "DINHDANH_PKCS11_TOKEN": self.label,
            "DINHDANH_PKCS11_PIN_FILE": str(self.pin_file),
        }

    def open(self) -> Token:
        return Token.open(self.module, self.label, self.pin_file)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHSM:
    if (reason := hsm_setup.missing()) is not None:
        pytest.fail(reason)
    folder = tmp_path_factory.mktemp("softhsm")
    config = hsm_setup.write_config(folder)
    hsm_setup.init_token(config, "dinhdanh-test", PIN, SO_PIN)
    pin_file = folder / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    os.environ["SOFTHSM2_CONF"] = str(config)  # before this process loads the module
    return SoftHSM(config, hsm_setup.MODULE, "dinhdanh-test", pin_file)


@pytest.fixture(scope="session")
def token(softhsm: SoftHSM) -> Token:
    return softhsm.open()
