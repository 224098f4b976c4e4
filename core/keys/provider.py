"""The one interface through which a process reaches key material."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from core.keys.signing import Signer


class KeyUnavailable(LookupError):
    """This process was not given the key of a purpose (a configuration error, raised at start)."""


class KeyProvider(Protocol):
    def key(self, purpose: str) -> bytes:
        """The key of ``purpose`` (``core.keys.purposes``); ``KeyUnavailable`` when this process holds none."""
        ...

    def signer(self, purpose: str) -> Signer:
        """The signer of a signing purpose (``core.keys.signing.ALGORITHMS``): derived from its seed by the
        file-backed providers, a key in the token by ``core.keys.pkcs11.TokenKeyProvider``."""
        ...
