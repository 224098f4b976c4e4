"""What the identity logic needs from the population registry, and nothing more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CitizenFacts:
    id_number: str
    full_name: str
    phone: str


class CitizenDirectory(Protocol):
    async def lookup(self, id_number: str) -> CitizenFacts | None:
        """The citizen on record, or None when the registry has no such ID number."""
