"""consent.purposes: the catalog's entries are complete, bilingual and cite a legal basis."""

from __future__ import annotations

import pytest

from consent.purposes import CATALOG, CONSENT_LAW, Purpose, purpose
from core.errors import InvalidArgument


def test_the_catalog_holds_six_to_ten_complete_purposes() -> None:
    assert 6 <= len(CATALOG) <= 10
    for code, entry in CATALOG.items():
        assert entry.code == code
        assert entry.text_vi != entry.text_en
        assert not entry.text_vi.isascii(), "the Vietnamese text is written with its diacritics"
        assert set(CONSENT_LAW) <= set(entry.legal_basis), "every purpose rests on the citizen's consent"
        assert len(entry.legal_basis) > len(CONSENT_LAW), "and on the law under which the agency asks"


def test_lookup_and_unknown_code() -> None:
    assert purpose("BANK_KYC").text_en.startswith("Know-your-customer")
    with pytest.raises(InvalidArgument, match="unknown purpose"):
        purpose("MARKETING")


def test_the_catalog_is_read_only() -> None:
    with pytest.raises(TypeError):
        CATALOG["MARKETING"] = CATALOG["BANK_KYC"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("code", "vi", "basis"), [("bank kyc", "Ngân hàng", ("x",)), ("BANK", "", ("x",)), ("BANK", "x", ())]
)
def test_a_purpose_is_well_formed(code: str, vi: str, basis: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="purpose"):
        Purpose(code, vi, "Bank", basis)
