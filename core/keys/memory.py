"""Keys held in memory: for unit tests and one-off tools that were handed the bytes."""

from __future__ import annotations

from collections.abc import Mapping

from core.keys.provider import KeyUnavailable
from core.keys.signing import SoftSigner, derive


class KeyMap:
    def __init__(self, keys: Mapping[str, bytes]) -> None:
        self._keys = dict(keys)

    def key(self, purpose: str) -> bytes:
        try:
            return self._keys[purpose]
        except KeyError:
            raise KeyUnavailable(f"no {purpose!r} key was given to this process") from None

    def signer(self, purpose: str) -> SoftSigner:
        """The key the purpose's seed stands for (``core.keys.signing.derive``), as before signers existed."""
        return derive(purpose, self.key(purpose))
