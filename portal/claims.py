"""The citizen's claims as the portal shows them: Vietnamese labels, protocol claims left out."""

from __future__ import annotations

import json
from typing import Any

# Claims about the token rather than the citizen (OIDC Core §2, §5.1): never shown.
PROTOCOL_CLAIMS = frozenset(
    {"iss", "aud", "exp", "iat", "nbf", "jti", "nonce", "at_hash", "c_hash", "azp", "sid", "auth_time", "sub"}
)

LABELS: dict[str, str] = {
    "name": "Họ và tên (full name)",
    "family_name": "Họ (family name)",
    "middle_name": "Tên đệm (middle name)",
    "given_name": "Tên (given name)",
    "national_id": "Số định danh cá nhân (personal ID number)",
    "id_number": "Số định danh cá nhân (personal ID number)",
    "birthdate": "Ngày sinh (date of birth)",
    "gender": "Giới tính (sex)",
    "nationality": "Quốc tịch (nationality)",
    "locale": "Ngôn ngữ (locale)",
    "address": "Địa chỉ (address)",
    "phone_number": "Số điện thoại (phone)",
    "phone_number_verified": "Số điện thoại đã xác minh (phone verified)",
    "email": "Thư điện tử (email)",
    "email_verified": "Thư điện tử đã xác minh (email verified)",
    "acr": "Mức độ xác thực (authentication level)",
    "amr": "Phương thức xác thực (authentication methods)",
}
_ORDER = list(LABELS)
_GENDER = {"male": "Nam (male)", "female": "Nữ (female)"}


def shown(claims: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, text)`` rows for the claims table: known claims first, in a fixed order."""
    names = [n for n in claims if n not in PROTOCOL_CLAIMS and claims[n] not in (None, "", [], {})]
    names.sort(key=lambda n: (_ORDER.index(n) if n in LABELS else len(_ORDER), n))
    return [(LABELS.get(n, n), _text(n, claims[n])) for n in names]


def _text(name: str, value: Any) -> str:
    if name == "gender" and isinstance(value, str):
        return _GENDER.get(value, value)
    if isinstance(value, bool):
        return "có (yes)" if value else "không (no)"
    if isinstance(value, dict):
        if isinstance(value.get("formatted"), str):
            return value["formatted"]
        return ", ".join(str(v) for v in value.values() if v not in (None, ""))
    if isinstance(value, list):
        return ", ".join(_text("", v) for v in value)
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)
