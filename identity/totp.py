"""Time-based one-time passwords (RFC 6238) with pyotp: 6 digits, 30-second steps, SHA-1.

Verification accepts the current step and one either side (RFC 6238 §5.2 network delay) and returns
the matched step, so the caller can refuse any code at or before the last accepted step: a code
works once (SP 800-63B-4 §3.1.4.2 replay resistance).
"""

from __future__ import annotations

import io
import time

import pyotp
import qrcode
from qrcode.image.pure import PyPNGImage

ISSUER = "Định danh điện tử"
STEP = 30
DIGITS = 6
WINDOW = 1


def new_secret() -> str:
    return pyotp.random_base32(length=32)  # 160 bits, RFC 4226 §4 recommendation


def provisioning_uri(secret: str, account_label: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(name=account_label, issuer_name=ISSUER)


def qr_png(uri: str) -> bytes:
    image = qrcode.make(uri, image_factory=PyPNGImage, box_size=6, border=2)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP)


def matching_step(secret: str, code: str, last_step: int, now: float | None = None) -> int | None:
    """The time step ``code`` belongs to (within ±1 of now and after ``last_step``), or None."""
    code = code.strip()
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    now_step = current_step(now)
    for step in range(now_step - WINDOW, now_step + WINDOW + 1):
        if step > last_step and pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None


def code_at(secret: str, now: float | None = None) -> str:
    """The code a phone would show now (the demo and the tests use it)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).at(time.time() if now is None else now)
