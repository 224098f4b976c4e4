"""The one interface through which a process reaches key material."""

from __future__ import annotations

from typing import Protocol


class KeyUnavailable(LookupError):
    """This process was not given the key of a purpose (a configuration error, raised at start)."""


class KeyProvider(Protocol):
    def key(self, purpose: str) -> bytes:
        """The key of ``purpose`` (``core.keys.purposes``); ``KeyUnavailable`` when this process holds none."""
        ...
