"""Visit records that health facilities push into the electronic health book (sổ sức khỏe điện tử).

What a record holds follows the Ministry of Health's decision 1332/QĐ-BYT (2024) on the electronic health book,
which has facilities send, per visit, a summary of the examination and treatment: the facility, the dates of
admission and discharge, the reason for the visit, the diagnoses coded in ICD-10 (the main disease and the
accompanying ones), procedures and services, drugs prescribed, test results, vaccinations, the follow-up
appointment and a referral to another facility. The field meanings lean on the data tables that decision
reuses for facility exports (decision 130/QĐ-BYT of 2023, amended by 4750/QĐ-BYT): the facility code is
``MA_CSKCB`` (5 digits), the facility record id ``MA_LK`` (the facility's own key for one visit), the
secondary diagnoses ``MA_BENH_KT`` (at most 12 codes).

Assumed here, not taken from the decisions: the JSON shape and member names (this platform's own, not the
XML tables); a record is pushed once the visit has ended, so the discharge time is required; instants are
RFC 3339 with an explicit offset, whole seconds, and dates compare in Vietnam time (UTC+7, no daylight
saving); a follow-up lies within 5 years of discharge; a vaccination given during or before the visit (a
facility may record earlier doses) but never after discharge; the facility's name is what it states.

Idempotency: the key is the facility's Ministry code with its record id (``Visit.key``). The same key with
the same content (the SHA-256 of the canonical JSON, the facility's client id included) is the same visit;
the same key with other content is a ``VisitConflict``.

Canonical JSON reuses :func:`consent.artefact.canonical_json` (RFC 8785-compatible for its value space of
strings, non-negative integers, arrays and objects): decimals (quantities) are written as strings, absent
optional members are left out, and arrays keep their order (the main diagnosis comes first). Text is
Unicode NFC, stripped, so the same words typed by two systems hash alike.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from consent.artefact import canonical_json, rfc3339
from core.errors import AlreadyExists, InvalidArgument, PermissionDenied
from issuance.health import icd10
from registry import idnumber

__all__ = [
    "VERSION",
    "VIETNAM",
    "Diagnosis",
    "Facility",
    "LabResult",
    "Prescription",
    "Procedure",
    "Referral",
    "Vaccination",
    "Visit",
    "VisitConflict",
    "canonical",
    "check_dates",
    "content_hash",
    "is_replay",
    "parse_visit",
    "to_json_value",
]

VERSION = 1
VIETNAM = timezone(timedelta(hours=7), "ICT")
CLOCK_SKEW = timedelta(minutes=5)  # a facility's clock may run this far ahead of ours
EARLIEST = date(1900, 1, 1)
MAX_FOLLOW_UP = timedelta(days=5 * 366)
MAX_SECONDARY = 12  # MA_BENH_KT: at most 12 accompanying diseases (130/QĐ-BYT)
MAX_ITEMS = 200
MAX_LABS = 500
MAX_VACCINATIONS = 50
MAX_DOSE_NUMBER = 20
MAX_DAYS = 366
MAX_QUANTITY = Decimal(100_000)
QUANTITY_PLACES = 3
SHORT = 200
LONG = 2000
FACILITY_CODE = re.compile(r"[0-9]{5}", re.ASCII)
REF = re.compile(r"[\x21-\x7e]{1,100}")  # MA_LK: printable ASCII without spaces, up to 100 characters
CLIENT_ID = re.compile(r"[\x21-\x7e]{1,128}")
INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?")
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MEMBERS = (
    "v",
    "facility",
    "record_id",
    "citizen_id_number",
    "admitted_at",
    "discharged_at",
    "reason",
    "diagnoses",
    "procedures",
    "prescriptions",
    "lab_results",
    "vaccinations",
    "follow_up",
    "referral",
    "doctor",
)
T = TypeVar("T")


class VisitConflict(AlreadyExists):
    """The facility sent other content under a record id it used already (``ALREADY_EXISTS``)."""


@dataclass(frozen=True, slots=True)
class Facility:
    """A health facility: its registered client (the caller authenticated as) and its Ministry code."""

    client_id: str
    code: str  # MA_CSKCB, 5 digits
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.client_id, str) or not CLIENT_ID.fullmatch(self.client_id):
            raise InvalidArgument("client_id must be 1..128 printable ASCII characters")
        _facility_code(self.code)
        object.__setattr__(self, "name", _text(self.name, SHORT, optional=True))


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """An ICD-10 2019 code (normalised, dotted) and the doctor's own wording, if sent."""

    code: str
    text: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", icd10.normalise(self.code))
        object.__setattr__(self, "text", _text(self.text, SHORT, optional=True))

    @property
    def icd(self) -> icd10.Icd10Code:
        return icd10.diagnosis(self.code)

    @property
    def title(self) -> str:
        """The classification's title: Vietnamese where shipped, else WHO's English."""
        return self.icd.title


@dataclass(frozen=True, slots=True)
class Procedure:
    """A procedure or service: the facility's code for it as free text (a Ministry service code, ICD-9-CM…)."""

    name: str
    code: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _text(self.name, SHORT))
        object.__setattr__(self, "code", _text(self.code, 50, optional=True))


@dataclass(frozen=True, slots=True)
class Prescription:
    """A drug prescribed: how to take it (free text), how much (a decimal, in ``unit``), for how many days, and
    how often (free text, optional: "2 lần/ngày")."""

    drug: str
    dose: str
    quantity: Decimal
    days: int
    unit: str = ""
    frequency: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "drug", _text(self.drug, SHORT))
        object.__setattr__(self, "dose", _text(self.dose, SHORT))
        object.__setattr__(self, "unit", _text(self.unit, 50, optional=True))
        object.__setattr__(self, "frequency", _text(self.frequency, SHORT, optional=True))
        if not isinstance(self.quantity, Decimal) or not self.quantity.is_finite():
            raise InvalidArgument("quantity must be a decimal number")
        if not 0 < self.quantity <= MAX_QUANTITY:
            raise InvalidArgument(f"quantity must be more than 0 and at most {MAX_QUANTITY}")
        if self.quantity != self.quantity.quantize(Decimal(1).scaleb(-QUANTITY_PLACES)):
            raise InvalidArgument(f"quantity has at most {QUANTITY_PLACES} decimal places")
        _integer(self.days, 1, MAX_DAYS)


@dataclass(frozen=True, slots=True)
class LabResult:
    """A test result as the laboratory wrote it (value, unit and reference range are text: ``Âm tính``)."""

    test: str
    value: str
    unit: str = ""
    reference_range: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "test", _text(self.test, SHORT))
        object.__setattr__(self, "value", _text(self.value, SHORT))
        object.__setattr__(self, "unit", _text(self.unit, 50, optional=True))
        object.__setattr__(self, "reference_range", _text(self.reference_range, 100, optional=True))


@dataclass(frozen=True, slots=True)
class Vaccination:
    """A dose given: the vaccine, which dose of its schedule, the lot number and the day."""

    vaccine: str
    dose_number: int
    lot: str
    date: date

    def __post_init__(self) -> None:
        object.__setattr__(self, "vaccine", _text(self.vaccine, SHORT))
        _integer(self.dose_number, 1, MAX_DOSE_NUMBER)
        object.__setattr__(self, "lot", _text(self.lot, 50))
        if not isinstance(self.date, date) or isinstance(self.date, datetime):
            raise InvalidArgument("the vaccination date must be a date")


@dataclass(frozen=True, slots=True)
class Referral:
    """A transfer to another facility (its Ministry code) and why."""

    to_facility: str
    reason: str

    def __post_init__(self) -> None:
        _facility_code(self.to_facility)
        object.__setattr__(self, "reason", _text(self.reason, LONG))


@dataclass(frozen=True, slots=True)
class Visit:
    """One visit record, validated. ``diagnoses[0]`` is the main diagnosis; the others are secondary."""

    facility: Facility
    record_id: str
    citizen_id_number: str = field(repr=False)
    admitted_at: datetime
    discharged_at: datetime
    reason: str
    diagnoses: tuple[Diagnosis, ...]
    procedures: tuple[Procedure, ...] = ()
    prescriptions: tuple[Prescription, ...] = ()
    lab_results: tuple[LabResult, ...] = ()
    vaccinations: tuple[Vaccination, ...] = ()
    follow_up: date | None = None
    referral: Referral | None = None
    doctor: str = ""  # the treating doctor as the facility names them (optional)

    def __post_init__(self) -> None:
        if not isinstance(self.facility, Facility):
            raise InvalidArgument("facility must be a Facility")
        if not isinstance(self.record_id, str) or not REF.fullmatch(self.record_id):
            raise InvalidArgument("record_id must be 1..100 printable ASCII characters without spaces")
        try:
            idnumber.parse(self.citizen_id_number)
        except idnumber.InvalidIdNumber as error:
            raise InvalidArgument(f"citizen_id_number: {error}") from None
        for name in ("admitted_at", "discharged_at"):
            object.__setattr__(self, name, _utc(getattr(self, name), name))
        if self.discharged_at < self.admitted_at:
            raise InvalidArgument("discharged_at: the discharge is before admission")
        object.__setattr__(self, "reason", _text(self.reason, LONG))
        object.__setattr__(self, "doctor", _text(self.doctor, SHORT, optional=True))
        self._check_items()
        if self.follow_up is not None:
            if not isinstance(self.follow_up, date) or isinstance(self.follow_up, datetime):
                raise InvalidArgument("follow_up must be a date")
            if self.follow_up < _local_day(self.discharged_at):
                raise InvalidArgument("follow_up: the follow-up is before discharge")
            if self.follow_up - _local_day(self.discharged_at) > MAX_FOLLOW_UP:
                raise InvalidArgument("follow_up: the follow-up is more than 5 years after discharge")
        if self.referral is not None:
            if not isinstance(self.referral, Referral):
                raise InvalidArgument("referral must be a Referral")
            if self.referral.to_facility == self.facility.code:
                raise InvalidArgument("referral.to_facility: a facility does not refer a patient to itself")

    def _check_items(self) -> None:
        for name, kind, limit in (
            ("diagnoses", Diagnosis, 1 + MAX_SECONDARY),
            ("procedures", Procedure, MAX_ITEMS),
            ("prescriptions", Prescription, MAX_ITEMS),
            ("lab_results", LabResult, MAX_LABS),
            ("vaccinations", Vaccination, MAX_VACCINATIONS),
        ):
            items = tuple(getattr(self, name))
            if not all(isinstance(item, kind) for item in items):
                raise InvalidArgument(f"{name} must hold {kind.__name__} values")
            if len(items) > limit:
                if name == "diagnoses":
                    raise InvalidArgument(f"diagnoses: one main and at most {MAX_SECONDARY} secondary diagnoses")
                raise InvalidArgument(f"{name}: at most {limit} items")
            object.__setattr__(self, name, items)
        if not self.diagnoses:
            raise InvalidArgument("diagnoses: at least the main diagnosis is required")
        seen: set[str] = set()
        for index, diagnosis in enumerate(self.diagnoses):
            if diagnosis.code in seen:
                raise InvalidArgument(f"diagnoses[{index}]: {diagnosis.code} is listed twice")
            seen.add(diagnosis.code)
        discharged = _local_day(self.discharged_at)
        for index, vaccination in enumerate(self.vaccinations):
            if vaccination.date > discharged:
                raise InvalidArgument(f"vaccinations[{index}].date: the dose is dated after discharge")

    @property
    def key(self) -> tuple[str, str]:
        """The idempotency key: the facility's Ministry code and its record id."""
        return (self.facility.code, self.record_id)

    @property
    def main_diagnosis(self) -> Diagnosis:
        return self.diagnoses[0]

    @property
    def secondary_diagnoses(self) -> tuple[Diagnosis, ...]:
        return self.diagnoses[1:]


def check_dates(visit: Visit, *, now: datetime, birth_date: date | None = None) -> None:
    """What depends on the moment and on the citizen: nothing in the future, nothing before birth or 1900."""
    limit = _utc(now.replace(microsecond=0), "now") + CLOCK_SKEW
    for name in ("admitted_at", "discharged_at"):
        if getattr(visit, name) > limit:
            raise InvalidArgument(f"{name}: the time is in the future")
    admitted = _local_day(visit.admitted_at)
    if admitted < EARLIEST:
        raise InvalidArgument(f"admitted_at: the admission is before {EARLIEST.isoformat()}")
    if birth_date is not None:
        if admitted < birth_date:
            raise InvalidArgument("admitted_at: the admission is before the citizen's birth date")
        for index, vaccination in enumerate(visit.vaccinations):
            if vaccination.date < birth_date:
                raise InvalidArgument(f"vaccinations[{index}].date: the dose is dated before the citizen's birth date")


def parse_visit(data: Any, *, client_id: str, now: datetime, birth_date: date | None = None) -> Visit:
    """A visit from a JSON-like mapping pushed by the facility authenticated as ``client_id``.

    Errors are ``InvalidArgument`` naming the member (``diagnoses[1].code: …``); a record that names another
    client as its facility is ``PermissionDenied``. ``birth_date`` is the registry's, when the caller has it.
    """
    members = _object(data, "", MEMBERS)
    if "v" in members and members["v"] != VERSION:
        raise InvalidArgument(f"v: only version {VERSION} visit records are known")
    facility = _facility(_required(members, "facility", ""), client_id)
    visit = Visit(
        facility=facility,
        record_id=_at("record_id", lambda: _string(_required(members, "record_id", ""))),
        citizen_id_number=_at("citizen_id_number", lambda: _string(_required(members, "citizen_id_number", ""))),
        admitted_at=_at("admitted_at", lambda: _instant(_required(members, "admitted_at", ""))),
        discharged_at=_at("discharged_at", lambda: _instant(_required(members, "discharged_at", ""))),
        reason=_at("reason", lambda: _text(_required(members, "reason", ""), LONG)),
        diagnoses=_list(members, "diagnoses", _diagnosis),
        procedures=_list(members, "procedures", _procedure),
        prescriptions=_list(members, "prescriptions", _prescription),
        lab_results=_list(members, "lab_results", _lab_result),
        vaccinations=_list(members, "vaccinations", _vaccination),
        follow_up=_at("follow_up", lambda: _day(members["follow_up"])) if "follow_up" in members else None,
        referral=_referral(members["referral"]) if "referral" in members else None,
        doctor=_at("doctor", lambda: _text(members["doctor"], SHORT)) if "doctor" in members else "",
    )
    check_dates(visit, now=now, birth_date=birth_date)
    return visit


def to_json_value(visit: Visit) -> dict[str, Any]:
    """The visit as canonical JSON values (what :func:`parse_visit` reads back to the same visit)."""
    value: dict[str, Any] = {
        "v": VERSION,
        "facility": _drop_empty(
            {"client_id": visit.facility.client_id, "code": visit.facility.code, "name": visit.facility.name}
        ),
        "record_id": visit.record_id,
        "citizen_id_number": visit.citizen_id_number,
        "admitted_at": rfc3339(visit.admitted_at),
        "discharged_at": rfc3339(visit.discharged_at),
        "reason": visit.reason,
        "diagnoses": [_drop_empty({"code": d.code, "text": d.text}) for d in visit.diagnoses],
    }
    items: dict[str, list[dict[str, Any]]] = {
        "procedures": [_drop_empty({"code": p.code, "name": p.name}) for p in visit.procedures],
        "prescriptions": [
            _drop_empty(
                {
                    "drug": p.drug,
                    "dose": p.dose,
                    "quantity": _decimal_text(p.quantity),
                    "unit": p.unit,
                    "days": p.days,
                    "frequency": p.frequency,
                }
            )
            for p in visit.prescriptions
        ],
        "lab_results": [
            _drop_empty({"test": r.test, "value": r.value, "unit": r.unit, "reference_range": r.reference_range})
            for r in visit.lab_results
        ],
        "vaccinations": [
            {"vaccine": v.vaccine, "dose_number": v.dose_number, "lot": v.lot, "date": v.date.isoformat()}
            for v in visit.vaccinations
        ],
    }
    value.update({name: listed for name, listed in items.items() if listed})
    if visit.follow_up is not None:
        value["follow_up"] = visit.follow_up.isoformat()
    if visit.referral is not None:
        value["referral"] = {"to_facility": visit.referral.to_facility, "reason": visit.referral.reason}
    if visit.doctor:
        value["doctor"] = visit.doctor
    return value


def canonical(visit: Visit) -> bytes:
    """The canonical JSON bytes of the visit."""
    return canonical_json(to_json_value(visit))


def content_hash(visit: Visit) -> bytes:
    """SHA-256 of the canonical JSON: equal for equal content, whatever form the facility wrote it in."""
    return hashlib.sha256(canonical(visit)).digest()


def is_replay(existing: Visit | None, incoming: Visit) -> bool:
    """Whether ``incoming`` repeats the stored visit under its key (a replay: answer as the first time).

    ``False`` when nothing is stored yet; ``VisitConflict`` when the stored visit under that key differs.
    """
    if existing is None:
        return False
    if existing.key != incoming.key:
        raise InvalidArgument("only visits under the same facility and record id are compared")
    if content_hash(existing) != content_hash(incoming):
        raise VisitConflict(
            f"facility {incoming.facility.code} sent record {incoming.record_id} already with other content"
        )
    return True


# -- parsing helpers ---------------------------------------------------------------------------------------


def _at(where: str, make: Callable[[], T]) -> T:
    """Run ``make``, prefixing an ``InvalidArgument`` with the member it came from."""
    try:
        return make()
    except PermissionDenied:
        raise
    except InvalidArgument as error:
        if not where or error.message.startswith(f"{where}:") or error.message.startswith(f"{where}."):
            raise
        if error.message.startswith(("[", ".")):
            raise type(error)(f"{where}{error.message}") from None
        raise type(error)(f"{where}: {error.message}") from None


def _object(data: Any, where: str, known: tuple[str, ...]) -> Mapping[str, Any]:
    name = where or "the visit record"
    if not isinstance(data, Mapping):
        raise InvalidArgument(f"{name} must be an object")
    for key in data:
        if key not in known:
            shown = repr(key[:40]) if isinstance(key, str) else "a non-string key"
            raise InvalidArgument(f"{where + ': ' if where else ''}unknown member {shown}")
    return data


def _required(members: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in members:
        raise InvalidArgument(f"{where}{'.' if where else ''}{name}: missing")
    return members[name]


def _field(members: Mapping[str, Any], name: str, where: str, make: Callable[[Any], T], default: Any = None) -> T:
    path = f"{where}.{name}"
    if name not in members:
        if default is None:
            raise InvalidArgument(f"{path}: missing")
        return default  # type: ignore[no-any-return]
    return _at(path, lambda: make(members[name]))


def _list(members: Mapping[str, Any], name: str, make: Callable[[Any, str], T]) -> tuple[T, ...]:
    if name not in members:
        if name == "diagnoses":
            raise InvalidArgument("diagnoses: missing")
        return ()
    items = members[name]
    if not isinstance(items, list):
        raise InvalidArgument(f"{name}: must be a list")
    limit = MAX_LABS if name == "lab_results" else MAX_ITEMS
    if len(items) > limit:
        raise InvalidArgument(f"{name}: at most {limit} items")
    return tuple(
        _at(f"{name}[{index}]", lambda item=item, index=index: make(item, f"{name}[{index}]"))
        for index, item in enumerate(items)
    )


def _facility(data: Any, client_id: str) -> Facility:
    members = _object(data, "facility", ("client_id", "code", "name"))
    if "client_id" in members and members["client_id"] != client_id:
        raise PermissionDenied("facility.client_id: a facility pushes visit records only as itself")
    return Facility(
        client_id=client_id,
        code=_field(members, "code", "facility", _facility_code),
        name=_field(members, "name", "facility", _string, default=""),
    )


def _diagnosis(data: Any, where: str) -> Diagnosis:
    if isinstance(data, str):
        data = {"code": data}
    members = _object(data, where, ("code", "text"))
    return Diagnosis(
        code=_field(members, "code", where, icd10.normalise),
        text=_field(members, "text", where, _string, default=""),
    )


def _procedure(data: Any, where: str) -> Procedure:
    members = _object(data, where, ("code", "name"))
    return Procedure(
        name=_field(members, "name", where, lambda v: _text(v, SHORT)),
        code=_field(members, "code", where, lambda v: _text(v, 50, optional=True), default=""),
    )


def _prescription(data: Any, where: str) -> Prescription:
    members = _object(data, where, ("drug", "dose", "quantity", "unit", "days", "frequency"))
    quantity = _field(members, "quantity", where, _quantity)
    days = _field(members, "days", where, lambda v: _integer(v, 1, MAX_DAYS))
    return Prescription(
        drug=_field(members, "drug", where, lambda v: _text(v, SHORT)),
        dose=_field(members, "dose", where, lambda v: _text(v, SHORT)),
        quantity=quantity,
        days=days,
        unit=_field(members, "unit", where, lambda v: _text(v, 50, optional=True), default=""),
        frequency=_field(members, "frequency", where, lambda v: _text(v, SHORT, optional=True), default=""),
    )


def _lab_result(data: Any, where: str) -> LabResult:
    members = _object(data, where, ("test", "value", "unit", "reference_range"))
    return LabResult(
        test=_field(members, "test", where, lambda v: _text(v, SHORT)),
        value=_field(members, "value", where, lambda v: _text(v, SHORT)),
        unit=_field(members, "unit", where, lambda v: _text(v, 50, optional=True), default=""),
        reference_range=_field(members, "reference_range", where, lambda v: _text(v, 100, optional=True), default=""),
    )


def _vaccination(data: Any, where: str) -> Vaccination:
    members = _object(data, where, ("vaccine", "dose_number", "lot", "date"))
    return Vaccination(
        vaccine=_field(members, "vaccine", where, lambda v: _text(v, SHORT)),
        dose_number=_field(members, "dose_number", where, lambda v: _integer(v, 1, MAX_DOSE_NUMBER)),
        lot=_field(members, "lot", where, lambda v: _text(v, 50)),
        date=_field(members, "date", where, _day),
    )


def _referral(data: Any) -> Referral:
    members = _object(data, "referral", ("to_facility", "reason"))
    return Referral(
        to_facility=_field(members, "to_facility", "referral", _facility_code),
        reason=_field(members, "reason", "referral", lambda v: _text(v, LONG)),
    )


# -- value helpers -----------------------------------------------------------------------------------------


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidArgument("must be a string")
    return value


def _text(value: Any, limit: int, *, optional: bool = False) -> str:
    text = unicodedata.normalize("NFC", _string(value)).strip()
    if not text and not optional:
        raise InvalidArgument("must not be empty")
    if len(text) > limit:
        raise InvalidArgument(f"must be at most {limit} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") and c != "\n" for c in text):
        raise InvalidArgument("must not hold control characters")
    return text


def _integer(value: Any, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument("must be an integer")
    if not low <= value <= high:
        raise InvalidArgument(f"must be {low}..{high}")
    return value


def _quantity(value: Any) -> Decimal:
    if isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,9})?", value, re.ASCII):
        try:
            number = Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern admits only plain decimals
            raise InvalidArgument("must be a decimal number") from None
    else:
        raise InvalidArgument('must be an integer or a decimal string such as "0.5" (no floats)')
    if not 0 < number <= MAX_QUANTITY:
        raise InvalidArgument(f"must be more than 0 and at most {MAX_QUANTITY}")
    if number != number.quantize(Decimal(1).scaleb(-QUANTITY_PLACES)):
        raise InvalidArgument(f"has at most {QUANTITY_PLACES} decimal places")
    return number


def _decimal_text(number: Decimal) -> str:
    return format(number.normalize(), "f")


def _facility_code(value: Any) -> str:
    if not isinstance(value, str) or not FACILITY_CODE.fullmatch(value):
        raise InvalidArgument("a facility code (MA_CSKCB) is 5 digits")
    return value


def _instant(value: Any) -> datetime:
    text = _string(value)
    match = INSTANT.fullmatch(text)
    if not match:
        raise InvalidArgument("must be an RFC 3339 time such as 2026-11-30T08:15:00+07:00")
    if match.group(1):
        raise InvalidArgument("must be whole seconds (no fraction)")
    if not match.group(2):
        raise InvalidArgument("must carry its UTC offset (Z or +07:00)")
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        raise InvalidArgument("is not a real date and time") from None


def _day(value: Any) -> date:
    text = _string(value)
    try:
        if not DAY.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument("must be a date as YYYY-MM-DD") from None


def _utc(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgument(f"{name} must be a timezone-aware datetime")
    if value.microsecond:
        raise InvalidArgument(f"{name} must be whole seconds")
    return value.astimezone(UTC)


def _local_day(instant: datetime) -> date:
    """The calendar day in Vietnam of an instant."""
    return instant.astimezone(VIETNAM).date()


def _drop_empty(value: dict[str, Any]) -> dict[str, Any]:
    return {key: item for key, item in value.items() if item != ""}
