"""What the identity logic needs from the population registry, and nothing more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CitizenFacts:
    id_number: str
    full_name: str
    phone: str
    id_card_issue_date: str = ""  # ISO 8601: the identity card's, for the evidence of an in-person verification
    id_card_issue_place: str = ""  # who issued it


class CitizenDirectory(Protocol):
    async def lookup(self, id_number: str) -> CitizenFacts | None:
        """The citizen on record, or None when the registry has no such ID number."""
