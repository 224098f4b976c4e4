"""Subject identifiers that do not reveal the citizen's ID number (OpenID Connect Core §8).

``sub`` must be stable and unique per citizen, but the 12-digit personal ID number is personal data
released only under the ``national_id`` scope. So ``sub`` is the ID number under deterministic
authenticated encryption (AES-SIV, RFC 5297) under the ``oidc-subject`` key (core.keys.purposes): the same
citizen always gets the same ``sub``, only the processes holding that key (edge, registry, vault) can turn
it back into the number, and a forged ``sub`` does not open.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from core.keys.sealing import b64, unb64

_AD = [b"dinhdanh/oidc-subject/v1"]


class Subjects:
    def __init__(self, key: bytes) -> None:
        """``key``: the 64 bytes of the ``oidc-subject`` purpose."""
        self._siv = AESSIV(key)

    def subject(self, id_number: str) -> str:
        return b64(self._siv.encrypt(id_number.encode(), _AD))

    def id_number(self, subject: str) -> str | None:
        raw = unb64(subject) if 0 < len(subject) <= 64 else None
        if raw is None:
            return None
        try:
            return self._siv.decrypt(raw, _AD).decode()
        except (InvalidTag, ValueError):
            return None
