"""``python -m tests.hsm_setup``: make sure the PKCS#11 tests can run on this machine (SoftHSM2 from apt).

(Stub written by the lead; the owner of the HSM part fills it in.)
"""

from __future__ import annotations

if __name__ == "__main__":
    pass
