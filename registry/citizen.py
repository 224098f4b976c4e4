"""Citizen record as held by the national population database.

The fields follow the information the National Population Database holds about a citizen under
Article 9 of the Law on Identification No. 26/2023/QH15 (personal identification number, full name,
date of birth, sex, hometown, ethnicity, religion, nationality, permanent and current residence), plus
the issue date and place printed on the identity card and the contact phone number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Sex(StrEnum):
    """Sex as recorded in the population database (giới tính)."""

    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True, slots=True)
class Address:
    """A residence in today's two-level administrative structure (province → commune).

    Since 1 July 2025 (Resolution 202/2025/QH15 and the 2025 amended Law on Organisation of Local
    Government) there is no district level: an address is street/hamlet, commune or ward, province.
    """

    street: str
    commune: str
    province: str

    @property
    def formatted(self) -> str:
        """The address on one line: ``"street, commune, province"``."""
        return f"{self.street}, {self.commune}, {self.province}"


@dataclass(frozen=True, slots=True)
class Citizen:
    """One person in the simulated national population database."""

    id_number: str
    full_name: str
    date_of_birth: date
    sex: Sex
    nationality: str
    ethnicity: str
    religion: str
    hometown: str
    permanent_address: Address
    current_address: Address
    id_card_issue_date: date
    id_card_issue_place: str
    phone: str
