"""The 12-digit personal identification number (số định danh cá nhân, also the CCCD card number).

Structure per Decree 137/2015/NĐ-CP, Article 13, with the codes laid down in Circular 07/2016/TT-BCA
(Articles 6–7 and the province-code annex); unchanged under the Law on Identification No. 26/2023/QH15
and Decree 70/2024/NĐ-CP::

    PPP G YY NNNNNN
    │   │ │  └── 6 random digits
    │   │ └───── last two digits of the birth year
    │   └─────── century and sex: 0/1 = 1900s male/female, 2/3 = 2000s, 4/5 = 2100s, 6/7 = 2200s, 8/9 = 2300s
    └─────────── code of the province or centrally-run city where the birth was registered

Province codes are those of the 63 provincial units that existed before the 2025 reorganisation;
numbers already issued never change, so the codes stay valid after the merger (see
:mod:`registry.geography` for the mapping to today's 34 units).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

from registry.citizen import Sex

__all__ = [
    "OLD_PROVINCES",
    "IdNumber",
    "InvalidIdNumber",
    "compose",
    "mask",
    "parse",
]

LENGTH = 12
"""Number of digits in a personal identification number (Circular 07/2016/TT-BCA, Article 7)."""

FIRST_CENTURY = 1900
"""Century encoded by gender/century digits 0 and 1 (Circular 07/2016/TT-BCA, Article 7(2))."""

LAST_CENTURY = 2300
"""Century encoded by gender/century digits 8 and 9."""

MAX_SERIAL = 999_999
"""Largest value of the 6 random trailing digits."""

OLD_PROVINCES: Mapping[str, str] = MappingProxyType(
    {
        "001": "Hà Nội",
        "002": "Hà Giang",
        "004": "Cao Bằng",
        "006": "Bắc Kạn",
        "008": "Tuyên Quang",
        "010": "Lào Cai",
        "011": "Điện Biên",
        "012": "Lai Châu",
        "014": "Sơn La",
        "015": "Yên Bái",
        "017": "Hòa Bình",
        "019": "Thái Nguyên",
        "020": "Lạng Sơn",
        "022": "Quảng Ninh",
        "024": "Bắc Giang",
        "025": "Phú Thọ",
        "026": "Vĩnh Phúc",
        "027": "Bắc Ninh",
        "030": "Hải Dương",
        "031": "Hải Phòng",
        "033": "Hưng Yên",
        "034": "Thái Bình",
        "035": "Hà Nam",
        "036": "Nam Định",
        "037": "Ninh Bình",
        "038": "Thanh Hóa",
        "040": "Nghệ An",
        "042": "Hà Tĩnh",
        "044": "Quảng Bình",
        "045": "Quảng Trị",
        "046": "Thừa Thiên Huế",
        "048": "Đà Nẵng",
        "049": "Quảng Nam",
        "051": "Quảng Ngãi",
        "052": "Bình Định",
        "054": "Phú Yên",
        "056": "Khánh Hòa",
        "058": "Ninh Thuận",
        "060": "Bình Thuận",
        "062": "Kon Tum",
        "064": "Gia Lai",
        "066": "Đắk Lắk",
        "067": "Đắk Nông",
        "068": "Lâm Đồng",
        "070": "Bình Phước",
        "072": "Tây Ninh",
        "074": "Bình Dương",
        "075": "Đồng Nai",
        "077": "Bà Rịa - Vũng Tàu",
        "079": "Hồ Chí Minh",
        "080": "Long An",
        "082": "Tiền Giang",
        "083": "Bến Tre",
        "084": "Trà Vinh",
        "086": "Vĩnh Long",
        "087": "Đồng Tháp",
        "089": "An Giang",
        "091": "Kiên Giang",
        "092": "Cần Thơ",
        "093": "Hậu Giang",
        "094": "Sóc Trăng",
        "095": "Bạc Liêu",
        "096": "Cà Mau",
    }
)
"""Province codes of Circular 07/2016/TT-BCA, Annex I: code → name of the (pre-2025) province."""


class InvalidIdNumber(ValueError):
    """A string that is not a valid personal identification number.

    The message says what is wrong but never repeats the number itself, so it is safe to log.
    """


@dataclass(frozen=True, slots=True)
class IdNumber:
    """A parsed, valid personal identification number (Circular 07/2016/TT-BCA, Article 7)."""

    value: str
    province_code: str
    sex: Sex
    birth_year: int

    @property
    def province_name(self) -> str:
        """Name of the (pre-2025) province where the birth was registered."""
        return OLD_PROVINCES[self.province_code]

    @property
    def serial(self) -> int:
        """The 6 random trailing digits as an integer."""
        return int(self.value[6:])

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        # Masked so that an IdNumber that ends up in a log line or a traceback does not leak the number.
        return (
            f"IdNumber(value={mask(self.value)!r}, province_code={self.province_code!r}, "
            f"sex={self.sex!r}, birth_year={self.birth_year!r})"
        )


def _century_sex_digit(sex: Sex, birth_year: int) -> int:
    """Digit 4 of the number: ``2 × (century − 19) + (1 if female)`` (Circular 07/2016/TT-BCA, Art. 7(2))."""
    return 2 * (birth_year // 100 - FIRST_CENTURY // 100) + (1 if sex is Sex.FEMALE else 0)


def parse(raw: str, today: date | None = None) -> IdNumber:
    """Validate and decode a personal identification number.

    Surrounding whitespace is ignored. The number must be exactly 12 ASCII digits, start with one of the
    63 province codes of Circular 07/2016/TT-BCA and encode a birth year no later than ``today``'s year
    (``today`` defaults to the current date). Raises :class:`InvalidIdNumber` otherwise.
    """
    if not isinstance(raw, str):
        raise InvalidIdNumber(f"ID number must be a string, not {type(raw).__name__}")
    value = raw.strip()
    if len(value) != LENGTH:
        raise InvalidIdNumber(f"ID number must be exactly {LENGTH} digits, got {len(value)} characters")
    if not (value.isascii() and value.isdigit()):
        raise InvalidIdNumber(f"ID number must contain only the digits 0-9 ({LENGTH} of them)")
    province_code = value[:3]
    if province_code not in OLD_PROVINCES:
        raise InvalidIdNumber(f"ID number starts with unknown province code {province_code}")
    century_sex = int(value[3])
    sex = Sex.FEMALE if century_sex % 2 else Sex.MALE
    birth_year = FIRST_CENTURY + 100 * (century_sex // 2) + int(value[4:6])
    current_year = (today or date.today()).year
    if birth_year > current_year:
        raise InvalidIdNumber(f"ID number encodes birth year {birth_year}, which is after {current_year}")
    return IdNumber(value=value, province_code=province_code, sex=sex, birth_year=birth_year)


def compose(province_code: str, sex: Sex, birth_year: int, serial: int) -> str:
    """Build the 12-digit number from its parts (inverse of :func:`parse`).

    ``province_code`` is one of :data:`OLD_PROVINCES`, ``birth_year`` lies in 1900–2399 (the centuries
    the gender/century digit can encode) and ``serial`` in 0–999999 (zero-padded to 6 digits).
    Raises :class:`ValueError` for any out-of-range part.
    """
    if province_code not in OLD_PROVINCES:
        raise ValueError(f"unknown province code {province_code!r}")
    if not isinstance(sex, Sex):
        raise ValueError(f"sex must be a Sex, not {sex!r}")
    if not FIRST_CENTURY <= birth_year < LAST_CENTURY + 100:
        raise ValueError(f"birth year {birth_year} cannot be encoded (must be {FIRST_CENTURY}-{LAST_CENTURY + 99})")
    if not 0 <= serial <= MAX_SERIAL:
        raise ValueError(f"serial {serial} out of range 0-{MAX_SERIAL}")
    return f"{province_code}{_century_sex_digit(sex, birth_year)}{birth_year % 100:02d}{serial:06d}"


def mask(id_number: str) -> str:
    """Hide all but the last 3 characters, for logs: ``"001203012345"`` → ``"*********345"``.

    Works on any string, valid or not (personal data minimisation, Decree 13/2023/NĐ-CP, Article 3).
    """
    text = str(id_number)
    return "*" * max(len(text) - 3, 0) + text[-3:]
