"""What of a citizen's own record each OpenID scope releases (``GetMyRecord``).

The same scopes release the same facts as the OpenID Provider's userinfo claims (identity.oidc.claims,
OpenID Connect Core §5.4): ``profile`` the name, birth date, sex and nationality; ``address`` the permanent
address; ``phone`` the phone number; ``national_id`` the 12-digit number. Nothing else of the record (ethnicity,
religion, hometown, current address, ID card details) is released to a token, whatever its scopes.
"""

from __future__ import annotations

from collections.abc import Iterable

RELEASES: dict[str, tuple[str, ...]] = {
    "profile": ("full_name", "date_of_birth", "sex", "nationality"),
    "address": ("permanent_address",),
    "phone": ("phone",),
    "national_id": ("id_number",),
}


def released(scopes: Iterable[str]) -> frozenset[str]:
    """The fields of ``registry.citizen.Citizen`` these scopes release."""
    return frozenset(field for scope in scopes for field in RELEASES.get(scope, ()))
