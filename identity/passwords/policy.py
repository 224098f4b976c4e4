"""Password rules of NIST SP 800-63B-4, §3.1.1.2 (memorized secrets).

- at least 8 characters (passwords here are always paired with TOTP, so the 15-character minimum
  for single-factor use does not apply), at least 64 allowed (we allow 256);
- all printing characters and spaces allowed, Unicode normalised with NFKC before hashing;
- no composition rules (no "one digit, one capital");
- a blocklist: commonly used and breached passwords (zxcvbn's list of the 30,000 most common
  passwords from breach corpora), repetitive or sequential strings, and words of this context
  (the service's names, the citizen's ID number, phone and name).
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from core.errors import InvalidArgument

MIN_LENGTH = 8
MAX_LENGTH = 256
SERVICE_WORDS = ("dinhdanh", "định danh", "vneid", "matkhau", "mật khẩu", "password", "dichvucong")
SEQUENCES = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def normalize(password: str) -> str:
    """NFKC, as SP 800-63B-4 §3.1.1.2 recommends before hashing (a password typed on any keyboard)."""
    return unicodedata.normalize("NFKC", password)


@lru_cache(maxsize=1)
def _breached() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check(password: str, context: Iterable[str] = ()) -> str:
    """Return the normalised password, or raise ``InvalidArgument`` saying which rule it breaks."""
    if len(password) > MAX_LENGTH:
        raise InvalidArgument(f"password longer than {MAX_LENGTH} characters")
    normal = normalize(password)
    if len(normal) < MIN_LENGTH:
        raise InvalidArgument(f"password shorter than {MIN_LENGTH} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in normal):
        raise InvalidArgument("password contains control characters")
    folded = normal.casefold()
    if folded in _breached():
        raise InvalidArgument("password is among commonly used or breached passwords; choose another")
    if _repetitive(folded):
        raise InvalidArgument("password is a repetitive or sequential string; choose another")
    for word in (*SERVICE_WORDS, *context):
        word = word.casefold().strip()
        if len(word) >= 4 and word in folded and len(folded) - len(word) < 6:
            raise InvalidArgument("password is too close to your ID number, phone, name or this service")
    return normal


def _repetitive(folded: str) -> bool:
    """Few distinct characters ("aaaaaaaa", "abababab"), or mostly a keyboard or alphabet run."""
    if len(set(folded)) <= 2:
        return True
    for seq in SEQUENCES:
        if folded in seq or folded in seq[::-1]:
            return True
    steps = [
        (ord(b) - ord(a)) % 10 if a.isdigit() and b.isdigit() else ord(b) - ord(a)
        for a, b in itertools.pairwise(folded)
    ]
    return sum(step in (1, -1, 9) for step in steps) >= 0.8 * len(steps)
