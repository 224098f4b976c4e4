"""Userinfo claims drawn from the population registry, by scope (OpenID Connect Core §5.1, §5.4).

``national_id`` is this platform's scope for the 12-digit personal identification number; it is
released only when asked for and consented to, like any other scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "family_name", "given_name", "middle_name", "birthdate", "gender", "locale", "nationality"),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
    "national_id": ("national_id",),
}


@dataclass(frozen=True)
class CitizenRecord:
    id_number: str
    full_name: str
    date_of_birth: str
    sex: str  # "male" / "female"
    nationality: str
    street: str
    commune: str
    province: str
    phone: str


class CitizenRecords(Protocol):
    async def record(self, id_number: str) -> CitizenRecord | None: ...


def e164(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return "+84" + digits[1:] if digits.startswith("0") else "+" + digits


def claims_for(record: CitizenRecord, subject: str, scope: str) -> dict[str, Any]:
    scopes = set(scope.split())
    claims: dict[str, Any] = {"sub": subject}
    if "profile" in scopes:
        parts = record.full_name.split()
        claims.update(
            name=record.full_name,
            family_name=parts[0],
            given_name=parts[-1],
            middle_name=" ".join(parts[1:-1]) or None,
            birthdate=record.date_of_birth,
            gender=record.sex,
            locale="vi-VN",
            nationality=record.nationality,
        )
    if "address" in scopes:
        claims["address"] = {
            "formatted": f"{record.street}, {record.commune}, {record.province}",
            "street_address": record.street,
            "locality": record.commune,
            "region": record.province,
            "country": "VN",
        }
    if "phone" in scopes:
        claims.update(phone_number=e164(record.phone), phone_number_verified=True)
    if "national_id" in scopes:
        claims["national_id"] = record.id_number
    return {k: v for k, v in claims.items() if v is not None}
