"""An HTTP-shaped answer from the provider: status, JSON body or redirect, headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)

    @location.setter
    def location(self, value: str) -> None:
        """authlib's RFC 9207 extension rewrites the redirect to add ``iss``."""
        self.headers = [(k, v) for k, v in self.headers if k.lower() != "location"] + [("Location", value)]
