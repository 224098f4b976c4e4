"""ICD-10 codes against the WHO 2019 classification, and the shipped Vietnamese titles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import InvalidArgument
from issuance.health import icd10

DATA = Path(icd10.__file__).parent / "data" / "icd10_vi.json"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("J06.9", "J06.9"),
        ("J069", "J06.9"),
        (" j06.9 ", "J06.9"),
        ("I10", "I10"),
        ("E11.9", "E11.9"),
        ("U07.1", "U07.1"),
        ("U071", "U07.1"),
        ("N39.0", "N39.0"),
        ("Z00.0", "Z00.0"),
        ("A97.1", "A97.1"),
        ("O80", "O80"),
    ],
)
def test_valid_codes_normalise(raw: str, code: str) -> None:
    assert icd10.normalise(raw) == code
    assert icd10.diagnosis(raw).code == code


def test_a_diagnosis_carries_its_titles() -> None:
    found = icd10.diagnosis("J069")
    assert found.title_en == "Acute upper respiratory infection, unspecified"
    assert found.title_vi == "Nhiễm trùng đường hô hấp trên cấp, không đặc hiệu"
    assert found.title == found.title_vi
    assert found.compact == "J069"
    assert found.leaf
    assert not icd10.diagnosis("J06").leaf


def test_a_code_without_a_vietnamese_title_shows_the_english_one() -> None:
    found = icd10.diagnosis("A00.0")
    assert found.title_vi is None
    assert found.title == found.title_en == "Cholera due to Vibrio cholerae 01, biovar cholerae"


@pytest.mark.parametrize("raw", ["J06.7", "I10.0", "K58.9", "Z99.99", "A00.00"])
def test_unknown_codes_are_refused_naming_the_code(raw: str) -> None:
    with pytest.raises(InvalidArgument, match=raw.replace(".", r"\.")):
        icd10.diagnosis(raw)


@pytest.mark.parametrize("raw", ["A90", "A91"])
def test_dengue_codes_retired_in_2019_point_to_a97(raw: str) -> None:
    with pytest.raises(InvalidArgument, match=r"A97"):
        icd10.diagnosis(raw)


@pytest.mark.parametrize("raw", ["X", "XXI", "J00-J06", "A00-A09", "j00-j06"])
def test_chapters_and_blocks_are_not_diagnosis_codes(raw: str) -> None:
    with pytest.raises(InvalidArgument, match=r"chapter|block"):
        icd10.diagnosis(raw)


@pytest.mark.parametrize("raw", ["U07", "U08", "U07.9", "U09.9"])
def test_codes_reserved_for_emergency_use_are_refused(raw: str) -> None:
    with pytest.raises(InvalidArgument, match=r"not assigned"):
        icd10.diagnosis(raw)


@pytest.mark.parametrize("raw", ["", "   ", "J", "J0", "J06.", "J06..9", "J6.9", "1J06", "J06.9x", "J06-9", "Ｊ06.9"])
def test_malformed_codes_are_refused(raw: str) -> None:
    with pytest.raises(InvalidArgument, match=r"not an ICD-10 code"):
        icd10.diagnosis(raw)


@pytest.mark.parametrize("raw", [None, 106, b"J06.9"])
def test_non_strings_are_refused(raw: object) -> None:
    with pytest.raises(InvalidArgument):
        icd10.diagnosis(raw)  # type: ignore[arg-type]


def test_a_long_input_is_not_echoed_whole() -> None:
    with pytest.raises(InvalidArgument) as caught:
        icd10.diagnosis("J" * 500)
    assert len(caught.value.message) < 120


def test_the_titles_file_states_its_source_and_use() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    assert data["classification"] == "WHO ICD-10 2019"
    assert "4469/QĐ-BYT" in data["source"]
    assert "Display only" in data["use"]
    assert list(data["titles"]) == sorted(data["titles"])


def test_every_vietnamese_title_is_for_a_valid_2019_diagnosis_code() -> None:
    titles = json.loads(DATA.read_text(encoding="utf-8"))["titles"]
    assert len(titles) >= 100
    for code, title in titles.items():
        found = icd10.diagnosis(code)  # raises for an unknown code, a chapter, a block, a placeholder
        assert found.code == code, code
        assert found.title_vi == title
        assert title, code
        assert title.strip() == title, code


def test_the_common_outpatient_codes_have_vietnamese_titles() -> None:
    titles = icd10.vietnamese_titles()
    for code in ["J00", "J02", "J03", "J06.9", "I10", "E11", "K29", "A09", "A97", "J45", "M54", "N39.0", "O80"]:
        assert code in titles, code
    for code in ["Z00.0", "Z23", "Z24", "Z25", "Z26", "Z27", "U07.1"]:
        assert code in titles, code


def test_the_titles_mapping_is_read_only() -> None:
    with pytest.raises(TypeError):
        icd10.vietnamese_titles()["J00"] = "x"  # type: ignore[index]
