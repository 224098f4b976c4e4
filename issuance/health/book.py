"""The citizen's electronic health book (sổ sức khỏe điện tử), assembled; who may read it; a signed extract's data.

After the Ministry of Health's decision 1332/QĐ-BYT (2024): the book opens with the citizen's administrative
data, which comes from the national population database (here ``registry.citizen.Citizen``: name, birth date,
sex, nationality, permanent and current residence) rather than from each facility, and goes on with the medical
history, the vaccination history and each visit's summary. The book is the citizen's: it is shown to the
citizen, and to a doctor or an agency only through a consent artefact (the services' concern, not this
module's).

A facility is a writer, not a reader: it may read back only the visits it wrote itself (same registered client,
same Ministry code), never the book — not even the book of a patient it treated
(``authorize_facility_read``). That is stricter than the decision, which lets a treating facility consult the
book; here that goes through the citizen's consent like any other sharing.

A signed extract (``extract_claims``) carries the visits and vaccinations the citizen chose, with the subject's
identifying claims, as JSON values within ``consent.artefact.canonical_json``'s value space, so the issuing
service can sign them as they are (an SD-JWT VC's claims, one disclosure per item).

Ordering: visits newest first by discharge (then admission, then facility code and record id, so the order
never depends on how the store returned them); the medical history follows the visits, the main diagnosis of
a visit before its secondary ones; vaccinations newest first by date. Days are Vietnam's (UTC+7).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from core.errors import InvalidArgument, PermissionDenied
from issuance.health.visits import VIETNAM, Facility, Visit, to_json_value
from registry.citizen import Address, Citizen, Sex

__all__ = [
    "Administrative",
    "HealthBook",
    "HistoryEntry",
    "VaccinationEntry",
    "assemble",
    "authorize_facility_read",
    "extract_claims",
    "readable_visits",
    "visit_ref",
]

MAX_CHOSEN = 500


@dataclass(frozen=True, slots=True)
class Administrative:
    """The book's administrative part, from the population database."""

    id_number: str = field(repr=False)
    full_name: str
    date_of_birth: date
    sex: Sex
    nationality: str
    permanent_address: Address
    current_address: Address

    @classmethod
    def from_citizen(cls, citizen: Citizen) -> Administrative:
        return cls(
            id_number=citizen.id_number,
            full_name=citizen.full_name,
            date_of_birth=citizen.date_of_birth,
            sex=citizen.sex,
            nationality=citizen.nationality,
            permanent_address=citizen.permanent_address,
            current_address=citizen.current_address,
        )


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One diagnosis in the medical history: the day of discharge, the code and title, where it was made."""

    day: date
    code: str
    title: str
    main: bool
    facility_code: str
    facility_name: str
    visit_ref: str


@dataclass(frozen=True, slots=True)
class VaccinationEntry:
    """One dose in the vaccination history; ``ref`` names it for an extract (``visit ref#index``)."""

    ref: str
    vaccine: str
    dose_number: int
    lot: str
    date: date
    facility_code: str
    facility_name: str
    visit_ref: str


@dataclass(frozen=True, slots=True)
class HealthBook:
    """A citizen's book: administrative data, medical and vaccination history, visits (all newest first)."""

    administrative: Administrative
    visits: tuple[Visit, ...]
    medical_history: tuple[HistoryEntry, ...]
    vaccinations: tuple[VaccinationEntry, ...]

    def visit(self, ref: str) -> Visit:
        """The visit named ``ref`` (``facility code/record id``); INVALID_ARGUMENT when the book has none."""
        for candidate in self.visits:
            if visit_ref(candidate) == ref:
                return candidate
        raise InvalidArgument(f"the health book has no visit {_echo(ref)}")


def visit_ref(visit: Visit) -> str:
    """A visit's name in the book and in an extract: ``79014/KCB-2026-000123`` (its idempotency key)."""
    return f"{visit.facility.code}/{visit.record_id}"


def assemble(citizen: Citizen, visits: Iterable[Visit]) -> HealthBook:
    """The book of ``citizen`` from the registry record and the visits stored for them."""
    ordered = sorted(visits, key=_visit_order, reverse=True)
    seen: set[tuple[str, str]] = set()
    for item in ordered:
        if not isinstance(item, Visit):
            raise InvalidArgument("a health book is assembled from visits")
        if item.citizen_id_number != citizen.id_number:
            raise InvalidArgument(f"visit {_echo(visit_ref(item))} is another citizen's")
        if item.key in seen:
            raise InvalidArgument(f"visit {_echo(visit_ref(item))} is listed twice")
        seen.add(item.key)
    history = tuple(
        HistoryEntry(
            day=item.discharged_at.astimezone(VIETNAM).date(),
            code=diagnosis.code,
            title=diagnosis.title,
            main=index == 0,
            facility_code=item.facility.code,
            facility_name=item.facility.name,
            visit_ref=visit_ref(item),
        )
        for item in ordered
        for index, diagnosis in enumerate(item.diagnoses)
    )
    doses = [
        (
            -dose.date.toordinal(),
            position,
            index,
            VaccinationEntry(
                ref=f"{visit_ref(item)}#{index}",
                vaccine=dose.vaccine,
                dose_number=dose.dose_number,
                lot=dose.lot,
                date=dose.date,
                facility_code=item.facility.code,
                facility_name=item.facility.name,
                visit_ref=visit_ref(item),
            ),
        )
        for position, item in enumerate(ordered)
        for index, dose in enumerate(item.vaccinations)
    ]
    # Newest day first; on the same day, the newer visit first, and within a visit the order it was written in.
    doses.sort(key=lambda ranked: ranked[:3])
    return HealthBook(
        administrative=Administrative.from_citizen(citizen),
        visits=tuple(ordered),
        medical_history=history,
        vaccinations=tuple(ranked[3] for ranked in doses),
    )


def authorize_facility_read(caller: Facility, target: Visit | HealthBook) -> None:
    """A facility reads only a visit it wrote (same client, same Ministry code); never a book (PERMISSION_DENIED)."""
    if not isinstance(caller, Facility):
        raise PermissionDenied("only a registered health facility reads visit records")
    if isinstance(target, HealthBook):
        raise PermissionDenied("a health facility never reads a health book, only the visits it recorded")
    if not isinstance(target, Visit) or target.facility.client_id != caller.client_id:
        raise PermissionDenied("a health facility reads only the visits it recorded")
    if target.facility.code != caller.code:
        raise PermissionDenied("a health facility reads only the visits it recorded")


def readable_visits(caller: Facility, visits: Iterable[Visit]) -> tuple[Visit, ...]:
    """Of ``visits``, those ``caller`` wrote (what a facility's own listing may show), in the given order."""
    readable = []
    for item in visits:
        try:
            authorize_facility_read(caller, item)
        except PermissionDenied:
            continue
        readable.append(item)
    return tuple(readable)


def extract_claims(book: HealthBook, *, visits: Iterable[str] = (), vaccinations: Iterable[str] = ()) -> dict[str, Any]:
    """The claims of a health-book extract: the subject, and only the visits and doses the citizen chose.

    ``visits`` are visit refs (``visit_ref``), ``vaccinations`` vaccination refs (``VaccinationEntry.ref``);
    each must be in the book, once. The chosen items keep the book's order (newest first), whatever order they
    were chosen in. Facilities' client ids and the visits' own copies of the ID number stay out.
    """
    chosen_visits = _choice(visits, "visits")
    chosen_doses = _choice(vaccinations, "vaccinations")
    if not chosen_visits and not chosen_doses:
        raise InvalidArgument("an extract carries at least one visit or vaccination")
    visit_refs = {visit_ref(item) for item in book.visits}
    for ref in chosen_visits:
        if ref not in visit_refs:
            raise InvalidArgument(f"the health book has no visit {_echo(ref)}")
    dose_refs = {entry.ref for entry in book.vaccinations}
    for ref in chosen_doses:
        if ref not in dose_refs:
            raise InvalidArgument(f"the health book has no vaccination {_echo(ref)}")
    admin = book.administrative
    claims: dict[str, Any] = {
        "subject": {
            "id_number": admin.id_number,
            "full_name": admin.full_name,
            "birth_date": admin.date_of_birth.isoformat(),
            "sex": admin.sex.value,
        }
    }
    extracted = [_visit_claims(item) for item in book.visits if visit_ref(item) in chosen_visits]
    if extracted:
        claims["visits"] = extracted
    doses = [_dose_claims(entry) for entry in book.vaccinations if entry.ref in chosen_doses]
    if doses:
        claims["vaccinations"] = doses
    return claims


def _visit_claims(item: Visit) -> dict[str, Any]:
    value = to_json_value(item)
    for internal in ("v", "citizen_id_number", "record_id", "diagnoses"):
        del value[internal]
    value["facility"].pop("client_id")
    diagnoses = [_drop_empty({"code": d.code, "title": d.title, "text": d.text}) for d in item.diagnoses]
    value["main_diagnosis"] = diagnoses[0]
    if len(diagnoses) > 1:
        value["secondary_diagnoses"] = diagnoses[1:]
    return {"ref": visit_ref(item), **value}


def _dose_claims(entry: VaccinationEntry) -> dict[str, Any]:
    return {
        "ref": entry.ref,
        "vaccine": entry.vaccine,
        "dose_number": entry.dose_number,
        "lot": entry.lot,
        "date": entry.date.isoformat(),
        "facility": _drop_empty({"code": entry.facility_code, "name": entry.facility_name}),
    }


def _choice(refs: Iterable[str], name: str) -> set[str]:
    if isinstance(refs, str | bytes) or not isinstance(refs, Iterable):
        raise InvalidArgument(f"{name} must be a list of refs")
    listed = list(refs)
    if len(listed) > MAX_CHOSEN:
        raise InvalidArgument(f"{name}: at most {MAX_CHOSEN} items")
    chosen: set[str] = set()
    for ref in listed:
        if not isinstance(ref, str):
            raise InvalidArgument(f"{name} must be a list of refs")
        if ref in chosen:
            raise InvalidArgument(f"{name}: {_echo(ref)} is chosen twice")
        chosen.add(ref)
    return chosen


def _visit_order(item: Visit) -> tuple[Any, ...]:
    return (item.discharged_at, item.admitted_at, item.facility.code, item.record_id)


def _drop_empty(value: dict[str, Any]) -> dict[str, Any]:
    return {key: item for key, item in value.items() if item != ""}


def _echo(ref: str) -> str:
    return repr(ref[:120])
