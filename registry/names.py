"""Vietnamese personal names, ethnicities and religions with realistic weights.

A Vietnamese full name is written surname (họ) + middle name (tên đệm) + given name (tên), e.g.
"Nguyễn Thị Lan". Weights are relative (they need not sum to 100). Surname shares follow the commonly
cited distribution (Nguyễn ≈ 38 %, Trần ≈ 11 %, Lê ≈ 9.5 %, …); ethnicity and religion shares follow
the 2019 Population and Housing Census (General Statistics Office). Ethnic group names are those of the
official list of 54 groups (Decision 121-TCTK/PPCĐ of 1979, as used on identity cards); religion names
are those of religions recognised under the Law on Belief and Religion No. 02/2016/QH14.

All strings are in Unicode NFC with the traditional tone-mark placement ("Hòa", "Thủy") used in
official documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from registry.citizen import Sex

Weighted = tuple[tuple[str, float], ...]

SURNAMES: Weighted = (
    ("Nguyễn", 38.4),
    ("Trần", 11.0),
    ("Lê", 9.5),
    ("Phạm", 7.0),
    ("Hoàng", 3.3),
    ("Huỳnh", 2.0),
    ("Phan", 4.5),
    ("Vũ", 2.2),
    ("Võ", 1.7),
    ("Đặng", 2.1),
    ("Bùi", 2.0),
    ("Đỗ", 1.4),
    ("Hồ", 1.3),
    ("Ngô", 1.3),
    ("Dương", 1.0),
    ("Lý", 0.5),
    ("Đào", 0.8),
    ("Đoàn", 0.7),
    ("Trương", 0.7),
    ("Trịnh", 0.6),
    ("Lương", 0.5),
    ("Mai", 0.5),
    ("Cao", 0.4),
    ("Lâm", 0.4),
    ("Hà", 0.4),
    ("Phùng", 0.3),
    ("Tô", 0.3),
    ("Tạ", 0.3),
    ("Châu", 0.2),
    ("Vương", 0.2),
    ("Thái", 0.2),
    ("Quách", 0.2),
    ("Lưu", 0.2),
    ("Kiều", 0.1),
    ("Triệu", 0.2),
    ("Thạch", 0.2),
)
"""Surnames (họ) with approximate share of the population in percent."""

MALE_TRADITIONAL_MIDDLE = "Văn"
FEMALE_TRADITIONAL_MIDDLE = "Thị"

MALE_MIDDLE: Weighted = (
    ("Hữu", 6.0),
    ("Đức", 8.0),
    ("Minh", 10.0),
    ("Quang", 6.0),
    ("Công", 5.0),
    ("Thành", 4.0),
    ("Xuân", 4.0),
    ("Ngọc", 4.0),
    ("Quốc", 6.0),
    ("Gia", 6.0),
    ("Hoàng", 5.0),
    ("Anh", 5.0),
    ("Tuấn", 4.0),
    ("Trung", 3.0),
    ("Đình", 5.0),
    ("Mạnh", 3.0),
    ("Thanh", 5.0),
    ("Bảo", 5.0),
    ("Duy", 4.0),
    ("Nhật", 4.0),
    ("Hoài", 2.0),
    ("Tiến", 3.0),
    ("Trọng", 3.0),
)
"""Male middle names other than the traditional "Văn" (whose share depends on the birth year)."""

FEMALE_MIDDLE: Weighted = (
    ("Ngọc", 10.0),
    ("Thu", 6.0),
    ("Thanh", 7.0),
    ("Kim", 5.0),
    ("Thùy", 5.0),
    ("Phương", 5.0),
    ("Minh", 5.0),
    ("Bảo", 4.0),
    ("Mai", 4.0),
    ("Hồng", 5.0),
    ("Khánh", 4.0),
    ("Diệu", 3.0),
    ("Hoài", 3.0),
    ("Lan", 2.0),
    ("Như", 3.0),
    ("Quỳnh", 3.0),
    ("Tuyết", 2.0),
    ("Hải", 2.0),
    ("Tường", 2.0),
    ("Ánh", 2.0),
    ("Thảo", 3.0),
    ("Mỹ", 3.0),
    ("Cẩm", 2.0),
    ("Hà", 2.0),
)
"""Female middle names other than the traditional "Thị" (whose share depends on the birth year)."""

MALE_GIVEN: tuple[str, ...] = (
    "Anh", "Bảo", "Bình", "Cường", "Dũng", "Duy", "Đạt", "Đức", "Dương", "Hải", "Hiếu", "Hoàng",
    "Hùng", "Huy", "Hưng", "Khang", "Khánh", "Khoa", "Khôi", "Kiên", "Long", "Lâm", "Lộc", "Mạnh",
    "Minh", "Nam", "Nghĩa", "Nhân", "Phong", "Phúc", "Quân", "Quang", "Sơn", "Tài", "Tâm", "Thắng",
    "Thành", "Thịnh", "Toàn", "Trung", "Tuấn", "Tùng", "Việt", "Vinh", "Vũ", "Hậu", "Hiển", "Trí",
    "Thiện", "Tú", "Hòa", "Lực", "Chiến", "Công", "Đông", "Hào", "Quý", "Thái", "Tiến", "Tín",
)  # fmt: skip
"""Male given names (tên)."""

FEMALE_GIVEN: tuple[str, ...] = (
    "Anh", "Ánh", "Chi", "Dung", "Duyên", "Giang", "Hà", "Hạnh", "Hằng", "Hiền", "Hoa", "Hồng",
    "Huệ", "Hương", "Hường", "Lan", "Liên", "Linh", "Loan", "Mai", "My", "Nga", "Ngân", "Ngọc",
    "Nhung", "Như", "Oanh", "Phương", "Quỳnh", "Tâm", "Thảo", "Thanh", "Thủy", "Thúy", "Trang",
    "Trâm", "Trinh", "Uyên", "Vân", "Vy", "Xuân", "Yến", "Diệp", "Nhi", "Hân", "Thư", "Tuyết",
    "Lệ", "Nguyệt", "Phượng", "Quyên", "Thơ", "Hậu", "Lụa", "Bích", "Châu", "Đào", "Lài",
)  # fmt: skip
"""Female given names (tên)."""

ETHNICITIES: Weighted = (
    ("Kinh", 85.3),
    ("Tày", 1.9),
    ("Thái", 1.9),
    ("Mường", 1.5),
    ("H'Mông", 1.5),  # listed as "Mông" in Decision 121-TCTK/PPCĐ
    ("Khmer", 1.4),
    ("Nùng", 1.1),
    ("Dao", 0.9),
    ("Hoa", 0.8),
    ("Gia Rai", 0.5),
    ("Ê Đê", 0.4),
    ("Ba Na", 0.3),
    ("Sán Chay", 0.2),
    ("Chăm", 0.2),
    ("Cơ Ho", 0.2),
    ("Xơ Đăng", 0.2),
    ("Sán Dìu", 0.2),
    ("Hrê", 0.15),
    ("Ra Glai", 0.15),
    ("Mnông", 0.13),
    ("Thổ", 0.1),
    ("Stiêng", 0.1),
    ("Khơ Mú", 0.1),
    ("Bru - Vân Kiều", 0.1),
)
"""Ethnic groups (dân tộc) with their share of the population in percent (2019 census, rounded)."""

ETHNIC_POOLS: Mapping[str, Weighted] = MappingProxyType(
    {
        "northeast": (
            ("Tày", 35), ("Nùng", 25), ("H'Mông", 15), ("Dao", 15), ("Sán Chay", 5), ("Sán Dìu", 5),
        ),
        "northwest": (("Thái", 50), ("H'Mông", 30), ("Dao", 6), ("Khơ Mú", 6), ("Mường", 4), ("Tày", 4)),
        "muong": (("Mường", 75), ("Thái", 15), ("Dao", 5), ("Tày", 5)),
        "north_central": (("Thái", 55), ("Thổ", 15), ("Khơ Mú", 15), ("H'Mông", 10), ("Mường", 5)),
        "bru": (("Bru - Vân Kiều", 90), ("Thái", 5), ("Mường", 5)),
        "highlands": (
            ("Gia Rai", 30), ("Ê Đê", 20), ("Ba Na", 15), ("Xơ Đăng", 10), ("Cơ Ho", 10), ("Mnông", 8),
            ("Hrê", 4), ("Ra Glai", 3),
        ),
        "cham": (("Chăm", 55), ("Ra Glai", 40), ("Hoa", 5)),
        "khmer": (("Khmer", 85), ("Hoa", 12), ("Chăm", 3)),
        "southeast": (("Hoa", 50), ("Khmer", 15), ("Stiêng", 15), ("Nùng", 10), ("Tày", 5), ("Chăm", 5)),
        "national": tuple((name, weight) for name, weight in ETHNICITIES if name != "Kinh"),
    }
)  # fmt: skip
"""Ethnic minorities of each region, weighted (2019 census, rounded); "national" is the country-wide mix."""

ETHNIC_MIX: Mapping[str, tuple[float, str]] = MappingProxyType(
    {
        "002": (0.12, "northeast"), "004": (0.05, "northeast"), "006": (0.12, "northeast"),
        "008": (0.46, "northeast"), "010": (0.35, "northeast"), "015": (0.53, "northeast"),
        "019": (0.72, "northeast"), "020": (0.16, "northeast"), "022": (0.88, "northeast"),
        "024": (0.87, "northeast"), "026": (0.97, "northeast"),
        "011": (0.18, "northwest"), "012": (0.14, "northwest"), "014": (0.17, "northwest"),
        "017": (0.27, "muong"), "025": (0.85, "muong"), "037": (0.97, "muong"), "038": (0.83, "muong"),
        "040": (0.85, "north_central"),
        "044": (0.98, "bru"), "045": (0.88, "bru"), "046": (0.96, "bru"),
        "049": (0.92, "highlands"), "051": (0.87, "highlands"), "052": (0.97, "highlands"),
        "054": (0.95, "highlands"), "056": (0.95, "highlands"), "062": (0.45, "highlands"),
        "064": (0.52, "highlands"), "066": (0.65, "highlands"), "067": (0.63, "highlands"),
        "068": (0.75, "highlands"),
        "058": (0.76, "cham"), "060": (0.92, "cham"),
        "070": (0.80, "southeast"), "072": (0.98, "southeast"), "074": (0.97, "southeast"),
        "075": (0.92, "southeast"), "077": (0.97, "southeast"), "079": (0.93, "southeast"),
        "084": (0.67, "khmer"), "086": (0.98, "khmer"), "089": (0.94, "khmer"), "091": (0.86, "khmer"),
        "092": (0.97, "khmer"), "093": (0.97, "khmer"), "094": (0.64, "khmer"), "095": (0.89, "khmer"),
        "096": (0.97, "khmer"),
    }
)  # fmt: skip
"""Old province code → (share of Kinh, pool of the others) by province of birth registration (2019 census,
rounded). Provinces not listed are about 99 % Kinh with the national minority mix."""

DEFAULT_ETHNIC_MIX: tuple[float, str] = (0.99, "national")

ETHNIC_SURNAMES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "Tày": ("Hoàng", "Nông", "Lương", "Ma", "Hà", "Lục", "Nguyễn", "Triệu"),
        "Nùng": ("Hoàng", "Nông", "Lương", "Lục", "Vi", "Triệu", "Mã"),
        "Thái": ("Lò", "Cầm", "Lường", "Quàng", "Tòng", "Vi", "Hà", "Lang"),
        "Mường": ("Bùi", "Đinh", "Quách", "Hà", "Xa", "Cao"),
        "H'Mông": ("Giàng", "Vàng", "Sùng", "Thào", "Lý", "Mùa", "Hạng", "Lầu"),
        "Dao": ("Triệu", "Bàn", "Đặng", "Lý", "Phùng", "Chảo"),
        "Khơ Mú": ("Vi", "Lô", "Cụt", "Lò"),
        "Sán Dìu": ("Diệp", "Trương", "Lý", "Tạ"),
        "Khmer": ("Thạch", "Sơn", "Danh", "Kim", "Lâm", "Lý", "Châu"),
        "Hoa": ("Lâm", "Trương", "Lý", "Quách", "Hồ", "Diệp", "Mạch", "Tăng"),
        "Chăm": ("Đàng", "Thuận", "Quảng", "Lưu", "Châu", "Thông"),
    }
)
"""Surnames typical of an ethnic group; groups not listed use :data:`SURNAMES`."""

RELIGIONS: Weighted = (
    ("Không", 86.3),
    ("Công giáo", 6.1),
    ("Phật giáo", 4.8),
    ("Tin Lành", 1.0),
    ("Phật giáo Hòa Hảo", 1.0),
    ("Cao Đài", 0.6),
)
"""Religion (tôn giáo) as recorded; "Không" means none (2019 census shares in percent)."""

NATIONALITY = "Việt Nam"
"""Nationality (quốc tịch) of every simulated citizen."""


def traditional_middle_share(sex: Sex, birth_year: int) -> float:
    """Probability that the middle name is the traditional "Văn" (male) or "Thị" (female).

    These middle names were near-universal for people born before the 1970s and have become steadily
    less common since; the step function below is a rough fit, not an official statistic.
    """
    if sex is Sex.FEMALE:
        if birth_year < 1975:
            return 0.75
        return 0.5 if birth_year < 1995 else 0.2
    if birth_year < 1975:
        return 0.55
    return 0.35 if birth_year < 1995 else 0.12
