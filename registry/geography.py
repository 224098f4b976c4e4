"""Today's administrative geography: 34 provincial units, communes and wards, streets and hamlets.

Resolution 202/2025/QH15 of the National Assembly (12 June 2025, effective 1 July 2025) merged the 63
provinces and centrally-run cities into 34 (6 centrally-run cities, 28 provinces); the amended Law on
Organisation of Local Government (No. 72/2025/QH15) abolished the district level at the same date, so an
address is now street/hamlet → commune (xã) or ward (phường) → province (tỉnh) or city (thành phố).

Everything here is static data plus small pure helpers that take a caller-supplied ``random.Random``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from types import MappingProxyType

from registry.citizen import Address

CENTRAL_CITIES: tuple[str, ...] = (
    "Thành phố Hà Nội",
    "Thành phố Huế",
    "Thành phố Hải Phòng",
    "Thành phố Đà Nẵng",
    "Thành phố Hồ Chí Minh",
    "Thành phố Cần Thơ",
)
"""The 6 centrally-run cities after Resolution 202/2025/QH15."""

PROVINCES: tuple[str, ...] = (
    "Tỉnh Tuyên Quang",
    "Tỉnh Cao Bằng",
    "Tỉnh Lai Châu",
    "Tỉnh Lào Cai",
    "Tỉnh Thái Nguyên",
    "Tỉnh Điện Biên",
    "Tỉnh Lạng Sơn",
    "Tỉnh Sơn La",
    "Tỉnh Phú Thọ",
    "Tỉnh Bắc Ninh",
    "Tỉnh Quảng Ninh",
    "Tỉnh Hưng Yên",
    "Tỉnh Ninh Bình",
    "Tỉnh Thanh Hóa",
    "Tỉnh Nghệ An",
    "Tỉnh Hà Tĩnh",
    "Tỉnh Quảng Trị",
    "Tỉnh Quảng Ngãi",
    "Tỉnh Gia Lai",
    "Tỉnh Khánh Hòa",
    "Tỉnh Lâm Đồng",
    "Tỉnh Đắk Lắk",
    "Tỉnh Đồng Nai",
    "Tỉnh Tây Ninh",
    "Tỉnh Vĩnh Long",
    "Tỉnh Đồng Tháp",
    "Tỉnh Cà Mau",
    "Tỉnh An Giang",
)
"""The 28 provinces after Resolution 202/2025/QH15."""

NEW_UNITS: tuple[str, ...] = CENTRAL_CITIES + PROVINCES
"""All 34 provincial-level units in force since 1 July 2025."""

_HN, _HUE, _HP, _DN, _HCM, _CT = CENTRAL_CITIES

OLD_TO_NEW: Mapping[str, str] = MappingProxyType(
    {
        "001": _HN,  # Hà Nội (unchanged)
        "002": "Tỉnh Tuyên Quang",  # Hà Giang
        "004": "Tỉnh Cao Bằng",  # unchanged
        "006": "Tỉnh Thái Nguyên",  # Bắc Kạn
        "008": "Tỉnh Tuyên Quang",
        "010": "Tỉnh Lào Cai",
        "011": "Tỉnh Điện Biên",  # unchanged
        "012": "Tỉnh Lai Châu",  # unchanged
        "014": "Tỉnh Sơn La",  # unchanged
        "015": "Tỉnh Lào Cai",  # Yên Bái
        "017": "Tỉnh Phú Thọ",  # Hòa Bình
        "019": "Tỉnh Thái Nguyên",
        "020": "Tỉnh Lạng Sơn",  # unchanged
        "022": "Tỉnh Quảng Ninh",  # unchanged
        "024": "Tỉnh Bắc Ninh",  # Bắc Giang
        "025": "Tỉnh Phú Thọ",
        "026": "Tỉnh Phú Thọ",  # Vĩnh Phúc
        "027": "Tỉnh Bắc Ninh",
        "030": _HP,  # Hải Dương
        "031": _HP,
        "033": "Tỉnh Hưng Yên",
        "034": "Tỉnh Hưng Yên",  # Thái Bình
        "035": "Tỉnh Ninh Bình",  # Hà Nam
        "036": "Tỉnh Ninh Bình",  # Nam Định
        "037": "Tỉnh Ninh Bình",
        "038": "Tỉnh Thanh Hóa",  # unchanged
        "040": "Tỉnh Nghệ An",  # unchanged
        "042": "Tỉnh Hà Tĩnh",  # unchanged
        "044": "Tỉnh Quảng Trị",  # Quảng Bình
        "045": "Tỉnh Quảng Trị",
        "046": _HUE,  # Thừa Thiên Huế (became a centrally-run city in 2025 before the merger)
        "048": _DN,
        "049": _DN,  # Quảng Nam
        "051": "Tỉnh Quảng Ngãi",
        "052": "Tỉnh Gia Lai",  # Bình Định
        "054": "Tỉnh Đắk Lắk",  # Phú Yên
        "056": "Tỉnh Khánh Hòa",
        "058": "Tỉnh Khánh Hòa",  # Ninh Thuận
        "060": "Tỉnh Lâm Đồng",  # Bình Thuận
        "062": "Tỉnh Quảng Ngãi",  # Kon Tum
        "064": "Tỉnh Gia Lai",
        "066": "Tỉnh Đắk Lắk",
        "067": "Tỉnh Lâm Đồng",  # Đắk Nông
        "068": "Tỉnh Lâm Đồng",
        "070": "Tỉnh Đồng Nai",  # Bình Phước
        "072": "Tỉnh Tây Ninh",
        "074": _HCM,  # Bình Dương
        "075": "Tỉnh Đồng Nai",
        "077": _HCM,  # Bà Rịa - Vũng Tàu
        "079": _HCM,
        "080": "Tỉnh Tây Ninh",  # Long An
        "082": "Tỉnh Đồng Tháp",  # Tiền Giang
        "083": "Tỉnh Vĩnh Long",  # Bến Tre
        "084": "Tỉnh Vĩnh Long",  # Trà Vinh
        "086": "Tỉnh Vĩnh Long",
        "087": "Tỉnh Đồng Tháp",
        "089": "Tỉnh An Giang",
        "091": "Tỉnh An Giang",  # Kiên Giang
        "092": _CT,
        "093": _CT,  # Hậu Giang
        "094": _CT,  # Sóc Trăng
        "095": "Tỉnh Cà Mau",  # Bạc Liêu
        "096": "Tỉnh Cà Mau",
    }
)
"""Old (pre-1 July 2025) province code → the unit it belongs to today, per Resolution 202/2025/QH15."""

OLD_POPULATION: Mapping[str, int] = MappingProxyType(
    {
        "001": 8054, "002": 854, "004": 530, "006": 314, "008": 785, "010": 731, "011": 599,
        "012": 460, "014": 1249, "015": 822, "017": 855, "019": 1287, "020": 782, "022": 1321,
        "024": 1804, "025": 1464, "026": 1152, "027": 1369, "030": 1893, "031": 2029, "033": 1253,
        "034": 1861, "035": 853, "036": 1781, "037": 983, "038": 3641, "040": 3328, "042": 1289,
        "044": 896, "045": 633, "046": 1129, "048": 1135, "049": 1496, "051": 1232, "052": 1487,
        "054": 873, "056": 1232, "058": 591, "060": 1231, "062": 541, "064": 1514, "066": 1870,
        "067": 622, "068": 1297, "070": 995, "072": 1170, "074": 2426, "075": 3097, "077": 1149,
        "079": 8993, "080": 1689, "082": 1765, "083": 1289, "084": 1010, "086": 1023, "087": 1600,
        "089": 1908, "091": 1724, "092": 1236, "093": 734, "094": 1200, "095": 907, "096": 1194,
    }
)  # fmt: skip
"""Population in thousands by old province code (2019 Population and Housing Census, rounded).

Used as the weight of each province as a place of birth registration.
"""

URBAN_SHARE: Mapping[str, float] = MappingProxyType(
    {
        _HN: 0.50, _HUE: 0.50, _HP: 0.45, _DN: 0.55, _HCM: 0.80, _CT: 0.45,
        "Tỉnh Quảng Ninh": 0.65, "Tỉnh Bắc Ninh": 0.45, "Tỉnh Đồng Nai": 0.45, "Tỉnh Khánh Hòa": 0.50,
        "Tỉnh Thái Nguyên": 0.40, "Tỉnh Lâm Đồng": 0.40, "Tỉnh Đắk Lắk": 0.30, "Tỉnh Gia Lai": 0.30,
    }
)  # fmt: skip
"""Approximate share of residents living in wards (phường) rather than communes (xã); default 0.25."""

DEFAULT_URBAN_SHARE = 0.25

MIGRATION_DESTINATIONS: tuple[tuple[str, float], ...] = (
    (_HCM, 40.0),
    (_HN, 25.0),
    ("Tỉnh Đồng Nai", 6.0),
    ("Tỉnh Bắc Ninh", 5.0),
    (_HP, 4.0),
    (_DN, 4.0),
    (_CT, 3.0),
    ("Tỉnh Tây Ninh", 3.0),
    ("Tỉnh Hưng Yên", 2.0),
    ("Tỉnh Khánh Hòa", 2.0),
    ("Tỉnh Lâm Đồng", 2.0),
    ("Tỉnh Thái Nguyên", 2.0),
    ("Tỉnh Quảng Ninh", 2.0),
)
"""Where internal migrants mostly live (weights, roughly after the 2019 census migration tables)."""

_SOUTHERN: frozenset[str] = frozenset(
    {_HCM, _CT, "Tỉnh Đồng Nai", "Tỉnh Tây Ninh", "Tỉnh Vĩnh Long", "Tỉnh Đồng Tháp", "Tỉnh Cà Mau",
     "Tỉnh An Giang"}
)  # fmt: skip
_NORTHWEST: frozenset[str] = frozenset({"Tỉnh Lai Châu", "Tỉnh Điện Biên", "Tỉnh Sơn La"})

COMMUNE_STEMS: tuple[str, ...] = (
    "An Bình", "An Hòa", "An Khánh", "An Lạc", "An Nhơn", "An Phú", "An Thạnh", "Bình An",
    "Bình Hòa", "Bình Minh", "Bình Thạnh", "Cẩm Bình", "Chiến Thắng", "Đại Đồng", "Định Hòa",
    "Đông Hòa", "Đông Hưng", "Đồng Tâm", "Đức Thắng", "Gia Lộc", "Hiệp Hòa", "Hòa Bình",
    "Hòa Phú", "Hòa Thành", "Hòa Thuận", "Hồng Phong", "Hợp Thành", "Hưng Đạo", "Hưng Long",
    "Kiến Thành", "Kim Long", "Lê Lợi", "Long Biên", "Long Hòa", "Long Phú", "Minh Đức",
    "Minh Khai", "Mỹ Hòa", "Mỹ Thạnh", "Nghĩa Hưng", "Ngọc Lâm", "Phú Hòa", "Phú Lộc",
    "Phú Mỹ", "Phú Thịnh", "Phước Hòa", "Phước Long", "Quang Trung", "Quyết Thắng", "Sơn Thủy",
    "Tân An", "Tân Bình", "Tân Hiệp", "Tân Lập", "Tân Phong", "Tân Phú", "Tân Thành", "Tân Tiến",
    "Thạnh Phú", "Thanh Bình", "Thanh Sơn", "Thành Công", "Thống Nhất", "Thuận An", "Thuận Hòa",
    "Tiến Thành", "Trung Hòa", "Trường Xuân", "Vĩnh Hòa", "Vĩnh Thạnh", "Xuân Hòa", "Xuân Phú",
    "Yên Hòa", "Yên Thế", "Hoàng Hoa Thám", "Quang Hưng", "Đông Sơn", "Tây Sơn", "Nam Sơn",
    "Bắc Sơn", "Hải Thành", "Hương Sơn", "Kỳ Sơn", "Lạc Long", "Liên Hòa", "Minh Tân",
    "Nhân Hòa", "Phong Phú", "Phúc Thành", "Quảng Phú", "Tam Hiệp", "Thạch Bàn", "Thái Hòa",
    "Thiện Tân", "Trà Lĩnh", "Văn Lang", "Vạn Phúc", "Việt Hưng", "Vĩnh Lộc", "Xuân Lâm",
)  # fmt: skip
"""Stems of commune and ward names; common across the country (the same stem exists in many provinces)."""

STREET_NAMES: tuple[str, ...] = (
    "Lê Lợi", "Trần Hưng Đạo", "Nguyễn Trãi", "Lý Thường Kiệt", "Hai Bà Trưng", "Quang Trung",
    "Nguyễn Huệ", "Lê Duẩn", "Điện Biên Phủ", "Hùng Vương", "Phan Chu Trinh", "Phan Bội Châu",
    "Nguyễn Du", "Nguyễn Văn Cừ", "Võ Thị Sáu", "Trần Phú", "Lê Lai", "Nguyễn Thị Minh Khai",
    "Lê Hồng Phong", "Ngô Quyền", "Bà Triệu", "Lê Thánh Tông", "Nguyễn Văn Linh", "Võ Văn Kiệt",
    "Cách Mạng Tháng Tám", "Ba Mươi Tháng Tư", "Tôn Đức Thắng", "Hoàng Diệu", "Chu Văn An",
    "Nguyễn Đình Chiểu", "Lý Tự Trọng", "Trường Chinh", "Phạm Văn Đồng", "Nguyễn Chí Thanh",
    "Lê Quý Đôn", "Nguyễn Thái Học", "Trần Quang Khải", "Lý Thái Tổ", "Đinh Tiên Hoàng",
    "Lê Đại Hành", "Nguyễn Công Trứ", "Hàm Nghi", "Hoàng Văn Thụ", "Nguyễn Khuyến", "Tô Hiến Thành",
    "Phạm Ngũ Lão", "Yết Kiêu", "Nguyễn Biểu", "Võ Nguyên Giáp", "Trần Nhân Tông", "Lạc Long Quân",
    "Âu Cơ", "Kim Đồng", "Nguyễn Văn Trỗi", "Hoàng Quốc Việt", "Xuân Thủy", "Giải Phóng",
    "Thống Nhất", "Độc Lập", "Hòa Bình",
)  # fmt: skip
"""Street names (mostly national heroes and historic dates) found in nearly every town."""

HAMLET_STEMS: tuple[str, ...] = (
    "Đông", "Tây", "Nam", "Bắc", "Trung", "Thượng", "Hạ", "Đoài", "Đình", "Đồng Tâm", "Tiền Phong",
    "Quyết Tiến", "Phú Xuân", "Thanh Lương", "Yên Thái", "Hòa Mỹ", "Trung Thành", "Tân Sơn",
)  # fmt: skip
"""Named villages (thôn) of the North and Centre; numbered ones ("Thôn 3") are generated separately."""

SOUTHERN_HAMLET_STEMS: tuple[str, ...] = (
    "Tân Lợi", "Bình Hòa", "Phú Mỹ", "Tân Hưng", "An Thạnh", "Long Thới", "Mỹ Phước", "Hòa Lạc",
    "Bình Thạnh", "Phước Lộc", "Long Hưng", "Tân Thới", "Vĩnh Lợi", "Mỹ An", "Thạnh Lợi", "Cây Dương",
)  # fmt: skip
"""Named hamlets (ấp) of the South."""

NORTHWEST_VILLAGE_STEMS: tuple[str, ...] = (
    "Na Hin", "Nà Sản", "Co Mạ", "Pá Khoang", "Huổi Lóng", "Nậm Lầu", "Hua La", "Mường Thanh",
    "Phiêng Luông", "Nà Tấu", "Pá Vạt", "Sin Suối Hồ",
)  # fmt: skip
"""Named villages (bản) of the Northwest highlands (Thai and H'Mông place names)."""

RESIDENTIAL_GROUP = "Tổ dân phố"
"""Residential group (tổ dân phố), the community unit below a ward."""


def hamlet_word(unit: str) -> str:
    """The village-level word in ``unit``: "Ấp" in the South, "Bản" in the Northwest, else "Thôn"."""
    if unit in _SOUTHERN:
        return "Ấp"
    if unit in _NORTHWEST:
        return "Bản"
    return "Thôn"


def _hamlet_stems(word: str) -> tuple[str, ...]:
    if word == "Ấp":
        return SOUTHERN_HAMLET_STEMS
    if word == "Bản":
        return NORTHWEST_VILLAGE_STEMS
    return HAMLET_STEMS


def urban_share(unit: str) -> float:
    """Approximate probability that a resident of ``unit`` lives in a ward rather than a commune."""
    return URBAN_SHARE.get(unit, DEFAULT_URBAN_SHARE)


def commune_name(stem: str, urban: bool) -> str:
    """Full name of a commune-level unit: ``"Phường X"`` (urban ward) or ``"Xã X"`` (rural commune)."""
    return f"Phường {stem}" if urban else f"Xã {stem}"


# Precomputed for the generator's hot path (one dict lookup per address instead of several).
_WARDS: tuple[str, ...] = tuple(commune_name(stem, True) for stem in COMMUNE_STEMS)
_COMMUNES: tuple[str, ...] = tuple(commune_name(stem, False) for stem in COMMUNE_STEMS)
_STREETS: tuple[str, ...] = tuple(f"đường {name}" for name in STREET_NAMES)
_PROFILES: dict[str, tuple[float, str, tuple[str, ...]]] = {
    unit: (urban_share(unit), hamlet_word(unit), _hamlet_stems(hamlet_word(unit))) for unit in NEW_UNITS
}


def street_line(rng: random.Random, unit: str, urban: bool) -> str:
    """A plausible first address line: house number and street (or residential group) in a ward,
    village or hamlet in a commune."""
    rand = rng.random
    roll = rand()
    if urban:
        if roll >= 0.8:
            return f"{RESIDENTIAL_GROUP} {int(rand() * 40) + 1}"
        street = _STREETS[int(rand() * len(_STREETS))]
        if roll < 0.6:
            return f"Số {int(rand() * 300) + 1} {street}"
        return f"Số {int(rand() * 120) + 1} ngõ {int(rand() * 200) + 1} {street}"
    _, word, stems = _PROFILES[unit]
    if roll < 0.5:
        return f"{word} {int(rand() * 15) + 1}"
    return f"{word} {stems[int(rand() * len(stems))]}"


def random_address(rng: random.Random, unit: str) -> Address:
    """A random address inside the provincial unit ``unit`` (one of :data:`NEW_UNITS`)."""
    rand = rng.random
    if rand() < _PROFILES[unit][0]:
        return Address(street_line(rng, unit, True), _WARDS[int(rand() * len(_WARDS))], unit)
    return Address(street_line(rng, unit, False), _COMMUNES[int(rand() * len(_COMMUNES))], unit)


def hometown(rng: random.Random, unit: str) -> str:
    """A hometown (quê quán) in today's units: ``"Xã X, Tỉnh Y"``, or ``"Phường X, Thành phố Y"``.

    A hometown is the ancestral place (usually the father's) and so is rural more often than a current
    address: wards are drawn at half the unit's urban share.
    """
    rand = rng.random
    names = _WARDS if rand() < _PROFILES[unit][0] / 2 else _COMMUNES
    return f"{names[int(rand() * len(names))]}, {unit}"
