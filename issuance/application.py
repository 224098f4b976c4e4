"""The request for a criminal-record certificate: 6 answers from the citizen, 17 fields from the registry.

The request form (tờ khai yêu cầu cấp Phiếu lý lịch tư pháp, Mẫu số 03/2013/TT-LLTP of Circular 16/2013/TT-BTP,
as amended) has the 23 fields of :data:`FIELDS`. As in the VNeID pilot, the citizen answers only what the
population database cannot know (:data:`ASKED`): the form, the purpose, the number of copies, the delivery,
the ban-certification choice and a contact e-mail. Every other field fills from the citizen's record in the
National Population Database (Law on Identification 2023, No. 26/2023/QH15, Art. 9), and the filled form
says, field by field, where each value came from.

The place of birth is the province where the birth was registered, read from the ID number's first three digits
(Decree 137/2015/NĐ-CP, Art. 13). The database holds parents' and spouse's names and other names (Art. 9(1));
this platform's simulated record does not, so those fields fill from ``family`` when the registry supplies it
and are otherwise left blank, marked as not recorded (never invented).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

from core.errors import InvalidArgument
from issuance.forms import FormNo
from registry.citizen import Citizen, Sex
from registry.idnumber import OLD_PROVINCES

REGISTRY = "Cơ sở dữ liệu quốc gia về dân cư"
CITIZEN = "Người yêu cầu khai"
MAX_COPIES = 10  # a platform limit: the law sets none
MAX_ADDRESS = 300
EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)

FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "full_name": "Họ và tên",
        "other_names": "Tên gọi khác",
        "sex": "Giới tính",
        "date_of_birth": "Ngày, tháng, năm sinh",
        "place_of_birth": "Nơi sinh",
        "hometown": "Quê quán",
        "nationality": "Quốc tịch",
        "ethnicity": "Dân tộc",
        "id_number": "Số định danh cá nhân / Căn cước",
        "id_issue_date": "Ngày cấp",
        "id_issue_place": "Nơi cấp",
        "permanent_residence": "Nơi thường trú",
        "current_residence": "Nơi ở hiện tại",
        "father_name": "Họ và tên cha",
        "mother_name": "Họ và tên mẹ",
        "spouse_name": "Họ và tên vợ/chồng",
        "phone": "Số điện thoại",
        "form": "Loại Phiếu yêu cầu cấp",
        "purpose": "Mục đích yêu cầu cấp Phiếu",
        "copies": "Số lượng Phiếu yêu cầu cấp",
        "delivery": "Hình thức nhận Phiếu",
        "ban_certification": (
            "Yêu cầu xác nhận về việc cấm đảm nhiệm chức vụ, thành lập, quản lý doanh nghiệp, hợp tác xã"
        ),
        "email": "Thư điện tử",
    }
)
"""The 23 fields of the request form, in its order, with their printed labels."""

ASKED = ("form", "purpose", "copies", "delivery", "ban_certification", "email")


@dataclass(frozen=True, slots=True)
class RequestPurpose:
    code: str
    text_vi: str
    forms: frozenset[FormNo]


_BOTH = frozenset(FormNo)
_PURPOSES = (
    RequestPurpose("EMPLOYMENT", "Bổ sung hồ sơ xin việc", frozenset({FormNo.ONE})),
    RequestPurpose("BUSINESS", "Thành lập, quản lý doanh nghiệp, hợp tác xã", frozenset({FormNo.ONE})),
    RequestPurpose("LABOUR_ABROAD", "Đi làm việc ở nước ngoài", _BOTH),
    RequestPurpose("STUDY_ABROAD", "Du học", _BOTH),
    RequestPurpose("VISA_IMMIGRATION", "Xin thị thực, định cư ở nước ngoài", _BOTH),
    RequestPurpose("MARRIAGE_FOREIGNER", "Kết hôn với người nước ngoài", _BOTH),
    RequestPurpose("ADOPTION", "Nhận con nuôi", frozenset({FormNo.ONE})),
    RequestPurpose("PRACTICE_LICENCE", "Xin cấp chứng chỉ hành nghề", frozenset({FormNo.ONE})),
    RequestPurpose("NATIONALITY", "Xin nhập, trở lại hoặc thôi quốc tịch Việt Nam", frozenset({FormNo.ONE})),
    RequestPurpose("PERSONAL", "Để biết nội dung lý lịch tư pháp của mình", frozenset({FormNo.TWO})),
)
PURPOSES: Mapping[str, RequestPurpose] = MappingProxyType({p.code: p for p in _PURPOSES})


class Delivery(enum.Enum):
    ELECTRONIC = "ELECTRONIC"  # into the citizen's vault
    POST = "POST"


@dataclass(frozen=True, slots=True)
class Answers:
    """The six things only the citizen can say (the service passes them as received)."""

    form: int
    purpose: str
    copies: int
    delivery: str
    email: str
    ban_certification: bool | None = None  # required for Form No. 1; Form No. 2 always shows the ban
    postal_address: str = ""  # required when delivery is POST


@dataclass(frozen=True, slots=True)
class Family:
    """What the registry may add when it holds it (Law on Identification 2023, Art. 9(1))."""

    other_names: str = ""
    father_name: str = ""
    mother_name: str = ""
    spouse_name: str = ""


@dataclass(frozen=True, slots=True)
class FilledField:
    name: str
    label_vi: str
    value: str
    source: str
    recorded: bool = True  # False: the source holds no value for this person


@dataclass(frozen=True, slots=True)
class Application:
    """A validated, filled request: the typed answers and the 23 fields with their sources."""

    form: FormNo
    purpose: RequestPurpose
    copies: int
    delivery: Delivery
    postal_address: str
    ban_certification: bool
    email: str
    fields: tuple[FilledField, ...]

    @property
    def filled_from_registry(self) -> tuple[FilledField, ...]:
        """What was filled and from where (the fields the citizen did not type)."""
        return tuple(f for f in self.fields if f.source != CITIZEN)

    def value(self, name: str) -> str:
        for f in self.fields:
            if f.name == name:
                return f.value
        raise KeyError(name)


def validate_answers(answers: Answers) -> tuple[FormNo, RequestPurpose, int, Delivery, str, bool, str]:
    """The typed answers, or INVALID_ARGUMENT naming the field and what is allowed."""
    try:
        form = FormNo(answers.form)
    except ValueError:
        raise InvalidArgument("form must be 1 (Phiếu số 1) or 2 (Phiếu số 2)") from None
    chosen = PURPOSES.get(answers.purpose)
    if chosen is None:
        raise InvalidArgument(f"purpose must be one of {', '.join(PURPOSES)}")
    if form not in chosen.forms:
        raise InvalidArgument(f"purpose {chosen.code} is not one for Form No. {int(form)}")
    if isinstance(answers.copies, bool) or not isinstance(answers.copies, int) or not 1 <= answers.copies <= MAX_COPIES:
        raise InvalidArgument(f"copies must be a whole number from 1 to {MAX_COPIES}")
    try:
        delivery = Delivery(answers.delivery)
    except ValueError:
        raise InvalidArgument("delivery must be ELECTRONIC or POST") from None
    address = " ".join(answers.postal_address.split())
    if delivery is Delivery.POST and not 10 <= len(address) <= MAX_ADDRESS:
        raise InvalidArgument(f"delivery by post needs a postal address of 10 to {MAX_ADDRESS} characters")
    if delivery is Delivery.ELECTRONIC and address:
        raise InvalidArgument("a postal address is given only for delivery by post")
    if form is FormNo.ONE and answers.ban_certification is None:
        raise InvalidArgument("Form No. 1: say whether the ban on holding office must be certified (Art. 42(3))")
    if form is FormNo.TWO and answers.ban_certification is False:
        raise InvalidArgument("Form No. 2 always certifies the ban on holding office (Art. 43(3)): leave it unset")
    email = answers.email.strip()
    if len(email) > 254 or not EMAIL.fullmatch(email):
        raise InvalidArgument("email must be an e-mail address such as ten@example.vn")
    return form, chosen, answers.copies, delivery, address, bool(answers.ban_certification or form is FormNo.TWO), email


def fill_application(citizen: Citizen, answers: Answers, family: Family | None = None) -> Application:
    """Validate the six answers and fill the other 17 fields from the registry record."""
    form, chosen, copies, delivery, address, ban, email = validate_answers(answers)
    family = family or Family()
    province = OLD_PROVINCES.get(citizen.id_number[:3], "")
    registry_values = {
        "full_name": citizen.full_name,
        "other_names": family.other_names,
        "sex": "Nam" if citizen.sex is Sex.MALE else "Nữ",
        "date_of_birth": _dmy(citizen.date_of_birth),
        "place_of_birth": province,
        "hometown": citizen.hometown,
        "nationality": citizen.nationality,
        "ethnicity": citizen.ethnicity,
        "id_number": citizen.id_number,
        "id_issue_date": _dmy(citizen.id_card_issue_date),
        "id_issue_place": citizen.id_card_issue_place,
        "permanent_residence": citizen.permanent_address.formatted,
        "current_residence": citizen.current_address.formatted,
        "father_name": family.father_name,
        "mother_name": family.mother_name,
        "spouse_name": family.spouse_name,
        "phone": citizen.phone,
    }
    delivery_text = "Nhận bản điện tử" if delivery is Delivery.ELECTRONIC else f"Gửi qua bưu chính: {address}"
    asked_values = {
        "form": f"Phiếu lý lịch tư pháp số {int(form)}",
        "purpose": chosen.text_vi,
        "copies": str(copies),
        "delivery": delivery_text,
        "ban_certification": "Có" if ban else "Không",
        "email": email,
    }
    fields = []
    for name, label in FIELDS.items():
        if name in asked_values:
            fields.append(FilledField(name, label, asked_values[name], CITIZEN))
        else:
            value = registry_values[name]
            source = REGISTRY + (
                " (mã tỉnh nơi đăng ký khai sinh trong số định danh)" if name == "place_of_birth" else ""
            )
            fields.append(FilledField(name, label, value, source, recorded=bool(value)))
    return Application(form, chosen, copies, delivery, address, ban, email, tuple(fields))


def _dmy(day: date) -> str:
    return f"{day:%d/%m/%Y}"
