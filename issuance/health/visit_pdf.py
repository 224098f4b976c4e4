"""One visit of the electronic health book as a PDF ("Tóm tắt hồ sơ khám bệnh, chữa bệnh").

What a visit summary shows follows the Ministry of Health's decision 1332/QĐ-BYT (2024) on the electronic health
book (its administrative part from the population database, then the facility, the dates, the reason, the main
and accompanying diagnoses in ICD-10 with their titles, procedures, prescriptions, test results, vaccinations,
follow-up and referral), laid out in the frame of ``issuance.pdf.render_document`` (national motto, the issuing
authority, DejaVu Serif cut to Latin and Vietnamese from ``issuance/fonts``).

The QR bottom left carries a compact JWS (RFC 7515, ES256, ``typ`` ``health-visit+jwt``) signed with the health
service's key (HEALTH_SIGNING): the visit's platform id, the facility's code and record id, the discharge time and
the SHA-256 of the visit's canonical JSON (``visits.content_hash``), so the printed summary can be matched to the
record it came from; the key is the health issuer's published JWKS (``stack/issuers.py``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

from joserfc import jws

from issuance import pdf, qr
from issuance.health.book import Administrative
from issuance.health.visits import VIETNAM, Visit, content_hash, to_json_value
from issuance.issuer_keys import ALGORITHM, SigningKey

__all__ = ["AUTHORITY", "QR_TYPE", "TITLE", "VisitPdf", "check_printable", "filename", "qr_token", "render"]

TITLE = "TÓM TẮT HỒ SƠ KHÁM BỆNH, CHỮA BỆNH"
AUTHORITY = "SỔ SỨC KHỎE ĐIỆN TỬ"
QR_TYPE = "health-visit+jwt"
SEX = {"male": "Nam", "female": "Nữ"}


@dataclass(frozen=True, slots=True)
class VisitPdf:
    """The rendered summary and the name it is downloaded under."""

    content: bytes
    filename: str


def _day(instant: datetime) -> str:
    return instant.astimezone(VIETNAM).strftime("%d/%m/%Y")


def _time(instant: datetime) -> str:
    return instant.astimezone(VIETNAM).strftime("%H:%M %d/%m/%Y")


def _line(text: str) -> str:
    """Free text on one line (a facility's reason may hold line breaks; the PDF prints none)."""
    return " ".join(text.split())


def _strings(value: object, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _strings(item, f"{path}.{key}" if path else key)]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in _strings(item, f"{path}[{index}]")]
    return []


def check_printable(visit: Visit) -> None:
    """INVALID_ARGUMENT naming the member when a text of the visit holds a character the PDF fonts cannot print
    (DejaVu Serif cut to Latin and Vietnamese: e.g. CJK), so a stored visit always renders."""
    for path, text in _strings(to_json_value(visit), ""):
        pdf.check_text(_line(text), path)


def filename(visit: Visit) -> str:
    """``kham-benh-20261130-79014-KCB-2026-000123.pdf`` (ASCII: the record id's printable ASCII, ``/`` replaced)."""
    record = "".join(c if c.isalnum() or c in "-_." else "-" for c in visit.record_id)
    return f"kham-benh-{visit.discharged_at.astimezone(VIETNAM):%Y%m%d}-{visit.facility.code}-{record}.pdf"


def qr_token(key: SigningKey, visit_id: str, visit: Visit) -> str:
    """The compact JWS the QR carries (see the module docstring)."""
    claims = {
        "visit_id": visit_id,
        "facility": visit.facility.code,
        "record_id": visit.record_id,
        "discharged_at": int(visit.discharged_at.timestamp()),
        "content_sha256": base64.urlsafe_b64encode(content_hash(visit)).decode().rstrip("="),
    }
    payload = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": QR_TYPE}
    return str(jws.serialize_compact(header, payload, key.private, algorithms=[ALGORITHM]))


def sections(administrative: Administrative, visit: Visit) -> list[pdf.Section]:
    """The summary's sections, in the order of decision 1332/QĐ-BYT's book."""
    admin = administrative
    found = [
        pdf.Section(
            "I. THÔNG TIN HÀNH CHÍNH",
            rows=(
                ("Họ và tên", admin.full_name),
                ("Ngày sinh", admin.date_of_birth.strftime("%d/%m/%Y")),
                ("Giới tính", SEX.get(admin.sex.value, admin.sex.value)),
                ("Số định danh cá nhân", admin.id_number),
                ("Quốc tịch", admin.nationality),
                ("Nơi thường trú", admin.permanent_address.formatted),
            ),
        ),
        pdf.Section(
            "II. CƠ SỞ KHÁM BỆNH, CHỮA BỆNH",
            rows=(
                ("Tên cơ sở", visit.facility.name or "—"),
                ("Mã cơ sở (MA_CSKCB)", visit.facility.code),
                ("Mã hồ sơ (MA_LK)", visit.record_id),
                *((("Bác sĩ điều trị", visit.doctor),) if visit.doctor else ()),
            ),
        ),
        pdf.Section(
            "III. THÔNG TIN KHÁM BỆNH",
            rows=(("Ngày vào", _time(visit.admitted_at)), ("Ngày ra", _time(visit.discharged_at))),
            paragraphs=(f"Lý do khám: {visit.reason}",),
        ),
    ]
    diagnoses = [f"Bệnh chính: {visit.main_diagnosis.code} – {visit.main_diagnosis.title}"]
    diagnoses += [f"Bệnh kèm theo: {d.code} – {d.title}" for d in visit.secondary_diagnoses]
    diagnoses += [f"Ghi chú của bác sĩ ({d.code}): {d.text}" for d in visit.diagnoses if d.text]
    found.append(pdf.Section("IV. CHẨN ĐOÁN (ICD-10)", paragraphs=tuple(diagnoses)))
    if visit.procedures:
        found.append(
            pdf.Section(
                "V. THỦ THUẬT, DỊCH VỤ",
                paragraphs=tuple(f"{p.name}" + (f" (mã {p.code})" if p.code else "") for p in visit.procedures),
            )
        )
    if visit.prescriptions:
        lines = []
        for p in visit.prescriptions:
            amount = f"{format(p.quantity.normalize(), 'f')} {p.unit}".strip()
            how = ", ".join(part for part in (p.dose, p.frequency) if part)
            lines.append(f"{p.drug}: {how}; số lượng {amount}; {p.days} ngày")
        found.append(pdf.Section("VI. ĐƠN THUỐC", paragraphs=tuple(lines)))
    if visit.lab_results:
        rows = tuple(
            (r.test, " ".join(part for part in (r.value, r.unit) if part)
             + (f" (tham chiếu {r.reference_range})" if r.reference_range else ""))
            for r in visit.lab_results
        )  # fmt: skip
        found.append(pdf.Section("VII. KẾT QUẢ XÉT NGHIỆM", rows=rows))
    if visit.vaccinations:
        lines = [f"{v.vaccine}, mũi {v.dose_number}, lô {v.lot}, ngày {v.date:%d/%m/%Y}" for v in visit.vaccinations]
        found.append(pdf.Section("VIII. TIÊM CHỦNG", paragraphs=tuple(lines)))
    after = []
    if visit.follow_up is not None:
        after.append(f"Hẹn tái khám: ngày {visit.follow_up.strftime('%d/%m/%Y')}")
    if visit.referral is not None:
        after.append(f"Chuyển tuyến đến cơ sở {visit.referral.to_facility}: {visit.referral.reason}")
    if after:
        found.append(pdf.Section("IX. HẸN TÁI KHÁM, CHUYỂN TUYẾN", paragraphs=tuple(after)))
    return found


def render(administrative: Administrative, visit_id: str, visit: Visit, key: SigningKey, verify_url: str) -> VisitPdf:
    """The visit's summary as PDF bytes, with its signed QR."""
    qr_png = qr.render_qr(qr_token(key, visit_id, visit))
    printed = [
        pdf.Section(
            section.heading,
            rows=tuple((label, _line(value)) for label, value in section.rows),
            paragraphs=tuple(_line(text) for text in section.paragraphs),
            strong=section.strong,
        )
        for section in sections(administrative, visit)
    ]
    content = pdf.render_document(
        TITLE,
        printed,
        qr_png,
        verify_url=verify_url,
        authority=AUTHORITY,
        number=visit_id[:8].upper(),
        signature=pdf.Signature(day=visit.discharged_at.astimezone(VIETNAM).date(), title=visit.facility.name),
    )
    return VisitPdf(content, filename(visit))
