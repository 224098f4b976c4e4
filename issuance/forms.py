"""The two criminal-record certificates (Phiếu lý lịch tư pháp số 1 and số 2): who may obtain which, what each shows.

Law on Judicial Records 2009 (No. 28/2009/QH12), as amended by Law 107/2025/QH15 (in force 1 July 2026):

* Art. 7 and Art. 41: Form No. 1 is issued to the person (a Vietnamese citizen, or a foreigner who has lived in
  Viet Nam) and to state agencies, political and socio-political organisations for personnel management,
  business registration and the founding or management of enterprises and cooperatives; Form No. 2 is issued
  to procedural authorities (cơ quan tiến hành tố tụng) for investigation, prosecution and trial, and to the
  person, so that they know what their record holds.
* Art. 42: Form No. 1 states "không có án tích" when the person was never convicted or every conviction is
  expunged, else "có án tích" with the offence and the main and additional penalties of the convictions not
  yet expunged; the ban on holding office and founding or managing an enterprise or cooperative (Art. 42(3))
  is stated only when the request asks for it.
* Art. 43: Form No. 2 lists every conviction in time order, expunged ones included with their expungement
  date, with the judgment's date, number and court, the offence and article, the penalties; and the ban.
* Art. 45(2): the person may authorise someone else in writing to request Form No. 1. Art. 46(2): a person
  requesting Form No. 2 may not authorise anyone; procedural authorities ask in writing (Art. 46(1)).

Assumptions (the amending Law's text could not be checked here): the 2009 text lets a parent, spouse or child
request Form No. 1 without a written authorisation; this platform requires one from every representative, the
relative included (the issue's rule, and the only kind of proof an online request can carry); an agency other
than a procedural authority obtains Form No. 1 only by citing the law that allows it (Art. 7(3)); and
the amendment keeps the two forms and who may obtain them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

from core.errors import InvalidArgument, PermissionDenied
from issuance.judicial import Conviction, JudicialRecord, active_bans, expungement_dates

LAW = "Luật Lý lịch tư pháp 2009, số 28/2009/QH12, sửa đổi bởi Luật 107/2025/QH15"
NO_RECORD = "không có án tích"
HAS_RECORD = "có án tích"
NOT_BANNED = "không bị cấm đảm nhiệm chức vụ, thành lập, quản lý doanh nghiệp, hợp tác xã"
BANNED = "bị cấm đảm nhiệm chức vụ, thành lập, quản lý doanh nghiệp, hợp tác xã"


class FormNo(enum.IntEnum):
    ONE = 1
    TWO = 2


class RequesterKind(enum.Enum):
    SELF = "SELF"  # the person the certificate is about
    REPRESENTATIVE = "REPRESENTATIVE"  # a relative or anyone else acting for them
    AGENCY = "AGENCY"  # a state agency or organisation of Art. 7(3)
    PROCEDURAL_AUTHORITY = "PROCEDURAL_AUTHORITY"  # investigation, procuracy, court (Art. 7(2))


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks: their kind, and what they hold (a written authorisation; the law an agency relies on)."""

    kind: RequesterKind
    written_authorisation: bool = False
    legal_basis: str = ""


class NotEntitled(PermissionDenied):
    """This requester may not obtain this form (PERMISSION_DENIED), with the article that says so."""


def check_entitled(form: FormNo, requester: Requester) -> None:
    """Return when ``requester`` may obtain ``form``; raise :class:`NotEntitled` with the reason otherwise."""
    kind = requester.kind
    if form is FormNo.ONE:
        if kind is RequesterKind.REPRESENTATIVE and not requester.written_authorisation:
            raise NotEntitled(
                "a representative may request Form No. 1 only with the person's written authorisation "
                "(Law on Judicial Records, Art. 45(2))"
            )
        if kind is RequesterKind.AGENCY and not requester.legal_basis.strip():
            raise NotEntitled(
                "an agency may obtain Form No. 1 only where a law allows it: cite that law (Art. 7(3), Art. 41)"
            )
        return
    if kind is RequesterKind.REPRESENTATIVE:
        raise NotEntitled(
            "Form No. 2 is issued to the person in person: no one may request it for them, "
            "not even with an authorisation (Law on Judicial Records, Art. 46(2))"
        )
    if kind is RequesterKind.AGENCY:
        raise NotEntitled(
            "Form No. 2 is issued only to the person and to procedural authorities for investigation, "
            "prosecution and trial (Law on Judicial Records, Art. 7(2), Art. 41(2))"
        )


@dataclass(frozen=True, slots=True)
class ConvictionEntry:
    """One conviction as a certificate prints it."""

    judgment_date: date
    judgment_number: str
    court: str
    offence_vi: str
    article: str
    main_penalty_vi: str
    additional_penalty_vi: str
    expunged_on: date | None  # Form No. 2 only: the conviction is expunged since this day


@dataclass(frozen=True, slots=True)
class CertificateContent:
    """What a certificate says about the record ("tình trạng án tích" and, where shown, the ban)."""

    form: FormNo
    as_of: date
    status_vi: str
    entries: tuple[ConvictionEntry, ...]
    ban_vi: str | None  # None: not asked for (Form No. 1 only)


def _entry(conviction: Conviction, expunged_on: date | None) -> ConvictionEntry:
    ban = conviction.ban
    additional = f"Cấm {ban.position_vi.lower()} {ban.years} năm (Điều 41 Bộ luật Hình sự)" if ban else ""
    return ConvictionEntry(
        conviction.judgment_date,
        conviction.judgment_number,
        conviction.court,
        conviction.offence.name_vi,
        conviction.offence.citation,
        conviction.sentence.text_vi,
        additional,
        expunged_on,
    )


def _ban_text(record: JudicialRecord, at: date) -> str:
    bans = active_bans(record.convictions, at)
    if not bans:
        return NOT_BANNED
    parts = [f"{c.ban.position_vi} đến ngày {c.ban_end:%d/%m/%Y}" for c in bans if c.ban and c.ban_end]
    return f"{BANNED}: " + "; ".join(parts)


def certificate_content(form: FormNo, record: JudicialRecord, at: date, ban_requested: bool) -> CertificateContent:
    """The record as Form No. 1 (Art. 42) or No. 2 (Art. 43) shows it on ``at``."""
    if not isinstance(form, FormNo):
        raise InvalidArgument("form must be FormNo.ONE or FormNo.TWO")
    dates = expungement_dates(record.convictions)
    if form is FormNo.ONE:
        shown = tuple(_entry(c, None) for i, c in enumerate(record.convictions) if (d := dates[i]) is None or d > at)
        ban = _ban_text(record, at) if ban_requested else None
        return CertificateContent(form, at, HAS_RECORD if shown else NO_RECORD, shown, ban)
    entries = tuple(
        _entry(c, d if (d := dates[i]) is not None and d <= at else None) for i, c in enumerate(record.convictions)
    )
    # An expunged conviction is as if never convicted (Penal Code Art. 69): listed, but not "có án tích".
    status = HAS_RECORD if any(e.expunged_on is None for e in entries) else NO_RECORD
    return CertificateContent(form, at, status, entries, _ban_text(record, at))
