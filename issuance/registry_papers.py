"""Two state-held papers printed from a citizen's registry record, for the demo issuer (``issuance.demo_issuer``).

* **The citizen ID card record** (vault type ``CITIZEN_ID_CARD``): what the card states, as the National
  Population Database holds it — personal identification number, name, date of birth, sex, nationality,
  ethnicity, religion, hometown, permanent and current residence, the card's date and place of issue — and how
  long the card is valid. Law on Identification No. 26/2023/QH15 Art. 18 (what the card shows) and Art. 21: the
  card is renewed at 14, 25, 40 and 60 years of age; one issued or renewed within the two years before such an
  age stays valid until the next one; from 60 it has no expiry.
* **The residence confirmation** (``RESIDENCE_CONFIRMATION``, "Giấy xác nhận thông tin về cư trú", form CT07 of
  Circular 55/2021/TT-BCA as amended by Circular 66/2023/TT-BCA, under the Law on Residence No. 68/2020/QH14):
  the citizen's identity and places of residence as the Residence Database holds them; valid for one year from
  its date (Circular 55/2021/TT-BCA Art. 17(3)), and no longer once the residence information changes.

Both are laid out in the frame of the certificate (``issuance.pdf.render_document``: the national motto, the
issuing authority and number, the title, the sections, the signature block, the QR and the verification line),
in Vietnamese with its diacritics (DejaVu Serif, ``issuance/fonts``). Pure: no I/O; the issuer signs and delivers.
The registry does not hold temporary residence separately, so the confirmation prints the current address as the
place of current residence and "—" for temporary residence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from issuance import pdf
from registry.citizen import Citizen, Sex
from vault.documents import DocumentType

AUTHORITY = "CỤC CẢNH SÁT QUẢN LÝ HÀNH CHÍNH VỀ TRẬT TỰ XÃ HỘI"
PLACE = "Hà Nội"
SIGNER_TITLE = "CỤC TRƯỞNG"
SIGNER_NAME = "Trần Văn Minh (demo)"
ID_CARD_TITLE = "Thông tin thẻ căn cước"
RESIDENCE_TITLE = "Giấy xác nhận thông tin về cư trú"
RENEWAL_AGES = (14, 25, 40, 60)  # Law on Identification 2023 Art. 21(1)
RENEWAL_GRACE_YEARS = 2  # Art. 21(2): issued within two years before a renewal age, valid until the next one
RESIDENCE_VALID_YEARS = 1  # Circular 55/2021/TT-BCA Art. 17(3)
SEX_VI = {Sex.MALE: "Nam", Sex.FEMALE: "Nữ"}


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper: what the vault files it as, its title, filename, number, dates and the PDF bytes."""

    document_type: DocumentType
    title: str
    filename: str
    number: str
    issued_on: date
    expires_on: date | None
    pdf: bytes


def _birthday(born: date, years: int) -> date:
    try:
        return born.replace(year=born.year + years)
    except ValueError:  # born on 29 February
        return date(born.year + years, 3, 1)


def card_expiry(date_of_birth: date, issued_on: date) -> date | None:
    """The day an ID card issued on ``issued_on`` stops being valid (Law on Identification 2023 Art. 21): the
    birthday of the next renewal age, or of the one after when that is within two years; None from 60."""
    for index, age in enumerate(RENEWAL_AGES):
        due = _birthday(date_of_birth, age)
        if due <= issued_on:
            continue
        if _birthday(issued_on, RENEWAL_GRACE_YEARS) >= due:  # within two years before the age
            return _birthday(date_of_birth, RENEWAL_AGES[index + 1]) if index + 1 < len(RENEWAL_AGES) else None
        return due
    return None


def _dmy(day: date | None) -> str:
    return f"{day:%d/%m/%Y}" if day is not None else "Không thời hạn"


def _signature(issued_on: date) -> pdf.Signature:
    return pdf.Signature(PLACE, issued_on, "", SIGNER_TITLE, SIGNER_NAME)


def id_card_record(citizen: Citizen, *, number: str, issued_on: date, qr_png: bytes, verify_url: str) -> Paper:
    """The citizen ID card record of ``citizen`` (see the module docstring)."""
    expires = card_expiry(citizen.date_of_birth, citizen.id_card_issue_date)
    identity = pdf.Section(
        "THÔNG TIN TRÊN THẺ CĂN CƯỚC",
        rows=(
            ("Số định danh cá nhân", citizen.id_number),
            ("Họ, chữ đệm và tên khai sinh", citizen.full_name),
            ("Ngày, tháng, năm sinh", _dmy(citizen.date_of_birth)),
            ("Giới tính", SEX_VI[citizen.sex]),
            ("Quốc tịch", citizen.nationality),
            ("Dân tộc", citizen.ethnicity),
            ("Tôn giáo", citizen.religion),
            ("Quê quán", citizen.hometown),
            ("Nơi thường trú", citizen.permanent_address.formatted),
            ("Nơi ở hiện tại", citizen.current_address.formatted),
        ),
    )
    card = pdf.Section(
        "THÔNG TIN VỀ THẺ",
        rows=(
            ("Ngày cấp", _dmy(citizen.id_card_issue_date)),
            ("Nơi cấp", citizen.id_card_issue_place),
            ("Có giá trị đến", _dmy(expires)),
        ),
        paragraphs=(
            "Thông tin được trích từ Cơ sở dữ liệu quốc gia về dân cư (Luật Căn cước số 26/2023/QH15, Điều 18, 21).",
        ),
    )
    content = pdf.render_document(
        ID_CARD_TITLE.upper(),
        [identity, card],
        qr_png,
        verify_url=verify_url,
        authority=AUTHORITY,
        number=number,
        signature=_signature(issued_on),
    )
    filename = f"thong-tin-the-can-cuoc-{citizen.id_number}.pdf"
    return Paper(DocumentType.CITIZEN_ID_CARD, ID_CARD_TITLE, filename, number, issued_on, expires, content)


def residence_confirmation(citizen: Citizen, *, number: str, issued_on: date, qr_png: bytes, verify_url: str) -> Paper:
    """The residence confirmation (form CT07) of ``citizen`` (see the module docstring)."""
    expires = _birthday(issued_on, RESIDENCE_VALID_YEARS)
    person = pdf.Section(
        "THÔNG TIN CÔNG DÂN",
        rows=(
            ("1. Họ, chữ đệm và tên", citizen.full_name),
            ("2. Ngày, tháng, năm sinh", _dmy(citizen.date_of_birth)),
            ("3. Giới tính", SEX_VI[citizen.sex]),
            ("4. Số định danh cá nhân", citizen.id_number),
            ("5. Dân tộc", citizen.ethnicity),
            ("6. Tôn giáo", citizen.religion),
            ("7. Quốc tịch", citizen.nationality),
            ("8. Quê quán", citizen.hometown),
        ),
    )
    residence = pdf.Section(
        "THÔNG TIN VỀ CƯ TRÚ",
        rows=(
            ("9. Nơi thường trú", citizen.permanent_address.formatted),
            ("10. Nơi tạm trú", "—"),
            ("11. Nơi ở hiện tại", citizen.current_address.formatted),
        ),
        paragraphs=(
            "Thông tin về cư trú được xác nhận theo Cơ sở dữ liệu về cư trú (Luật Cư trú số 68/2020/QH14; "
            "Thông tư số 55/2021/TT-BCA, sửa đổi bởi Thông tư số 66/2023/TT-BCA).",
            f"Giấy xác nhận có giá trị {RESIDENCE_VALID_YEARS} năm kể từ ngày cấp (đến ngày {_dmy(expires)}); "
            "hết giá trị khi thông tin về cư trú của công dân thay đổi.",
        ),
    )
    content = pdf.render_document(
        RESIDENCE_TITLE.upper(),
        [person, residence],
        qr_png,
        verify_url=verify_url,
        authority=AUTHORITY,
        number=number,
        signature=_signature(issued_on),
    )
    filename = f"xac-nhan-cu-tru-{citizen.id_number}.pdf"
    return Paper(DocumentType.RESIDENCE_CONFIRMATION, RESIDENCE_TITLE, filename, number, issued_on, expires, content)


__all__ = ["Paper", "card_expiry", "id_card_record", "residence_confirmation"]
