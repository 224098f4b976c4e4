"""The purpose catalog: why an agency may ask for a citizen's documents, in words the citizen reads.

Modelled on the purpose of ReBIT's Account Aggregator consent artefact (a code from a published catalog, the
text shown to the customer, the legal reference). Each purpose names the legal instruments it rests on by
their title: the consent itself (the data subject's consent under Decree 13/2023/NĐ-CP on personal data
protection and the Law on Personal Data Protection 2025, in force from 1 January 2026) and the sectoral law
under which the agency asks. Article-level references are for the platform's legal team to add; none is
invented here.

The catalog is append-only: a code, once published, is never removed nor reused, because signed artefacts
name it (a purpose no longer offered would be marked so, not deleted).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from core.errors import InvalidArgument

CODE = re.compile(r"[A-Z][A-Z0-9_]{2,63}")

CONSENT_LAW = (
    "Nghị định 13/2023/NĐ-CP về bảo vệ dữ liệu cá nhân (Decree 13/2023/ND-CP on personal data protection)",
    "Luật Bảo vệ dữ liệu cá nhân 2025, hiệu lực từ 01/01/2026 (Law on Personal Data Protection 2025, in force "
    "from 1 January 2026)",
)
IDENTIFICATION_LAW = "Luật Căn cước 2023, số 26/2023/QH15 (Law on Identification 2023, No. 26/2023/QH15)"
ELECTRONIC_IDENTIFICATION = (
    "Nghị định 69/2024/NĐ-CP về định danh và xác thực điện tử (Decree 69/2024/ND-CP on electronic "
    "identification and authentication)"
)


@dataclass(frozen=True, slots=True)
class Purpose:
    """One entry of the catalog: its code, the Vietnamese and English texts, and its legal basis."""

    code: str
    text_vi: str
    text_en: str
    legal_basis: tuple[str, ...]

    def __post_init__(self) -> None:
        if not CODE.fullmatch(self.code):
            raise ValueError(f"purpose code {self.code!r} must be 3..64 of A-Z, 0-9 and _")
        if not self.text_vi.strip() or not self.text_en.strip() or not self.legal_basis:
            raise ValueError(f"purpose {self.code} needs both texts and a legal basis")


_PURPOSES = (
    Purpose(
        "PUBLIC_SERVICE_DOSSIER",
        "Giải quyết hồ sơ thủ tục hành chính, dịch vụ công",
        "Processing a public-service (administrative procedure) dossier",
        (
            *CONSENT_LAW,
            IDENTIFICATION_LAW,
            "Nghị định 45/2020/NĐ-CP về thực hiện thủ tục hành chính trên môi trường điện tử (Decree "
            "45/2020/ND-CP on administrative procedures in the electronic environment)",
        ),
    ),
    Purpose(
        "EMPLOYMENT_BACKGROUND_CHECK",
        "Kiểm tra lý lịch, văn bằng khi tuyển dụng lao động",
        "Employment background check (criminal record, diplomas) when hiring",
        (*CONSENT_LAW, "Bộ luật Lao động 2019 (Labour Code 2019)", "Luật Lý lịch tư pháp (Law on Judicial Records)"),
    ),
    Purpose(
        "HEALTH_INSURANCE_CLAIM",
        "Giải quyết thanh toán bảo hiểm y tế",
        "Settling a health insurance claim",
        (*CONSENT_LAW, "Luật Bảo hiểm y tế (Law on Health Insurance)"),
    ),
    Purpose(
        "SOCIAL_INSURANCE_BENEFIT",
        "Giải quyết chế độ bảo hiểm xã hội",
        "Settling a social insurance benefit",
        (*CONSENT_LAW, "Luật Bảo hiểm xã hội 2024 (Law on Social Insurance 2024)"),
    ),
    Purpose(
        "BANK_KYC",
        "Nhận biết và xác minh khách hàng (eKYC) khi mở tài khoản, cấp tín dụng",
        "Know-your-customer checks when opening a bank account or granting credit",
        (
            *CONSENT_LAW,
            "Luật Các tổ chức tín dụng 2024 (Law on Credit Institutions 2024)",
            "Luật Phòng, chống rửa tiền 2022 (Law on Anti-Money Laundering 2022)",
            ELECTRONIC_IDENTIFICATION,
        ),
    ),
    Purpose(
        "EDUCATION_ENROLMENT",
        "Tuyển sinh, nhập học",
        "School or university admission and enrolment",
        (*CONSENT_LAW, "Luật Giáo dục 2019 (Law on Education 2019)"),
    ),
    Purpose(
        "RESIDENCE_REGISTRATION",
        "Đăng ký thường trú, tạm trú",
        "Permanent or temporary residence registration",
        (*CONSENT_LAW, "Luật Cư trú 2020 (Law on Residence 2020)", IDENTIFICATION_LAW),
    ),
    Purpose(
        "NOTARISATION",
        "Công chứng hợp đồng, giao dịch",
        "Notarising a contract or transaction",
        (*CONSENT_LAW, "Luật Công chứng 2024 (Law on Notarization 2024)", IDENTIFICATION_LAW),
    ),
)

CATALOG: Mapping[str, Purpose] = MappingProxyType({purpose.code: purpose for purpose in _PURPOSES})


def purpose(code: str) -> Purpose:
    """The catalog entry for ``code``; an unknown code is the caller's mistake (INVALID_ARGUMENT)."""
    try:
        return CATALOG[code]
    except KeyError:
        raise InvalidArgument(f"unknown purpose {code[:64]!r}: the catalog holds {', '.join(CATALOG)}") from None
