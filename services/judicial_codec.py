"""Judicial records between the domain (``issuance.judicial``) and GetRecord's message
(``protos/issuance/v1/judicial.proto``), both ways: the judicial-records service writes what it holds, the
issuance service reads it back into the record its certificates are built from.

``record_to_pb(record, at)`` also states what the service computes on ``at``: whether each main penalty was
served (``completed_on``), and each conviction's expungement by Penal Code 2015 Art. 70–72 (``expunged_on``, empty
while not yet expunged; for Chapters XIII and XXVI only by a court's decision, Art. 71). ``record_from_pb`` keeps
what the record *is*: offence, dates, sentence, ban, a court's expungement; the computed fields are not read back
(the domain computes them again for the day a certificate is issued). A court's expungement dated after ``at`` is
not sent.
"""

from __future__ import annotations

from datetime import date

from core.errors import InvalidArgument
from issuance.judicial import (
    Conviction,
    JudicialRecord,
    OfficeBan,
    Sentence,
    SentenceKind,
    expungement_dates,
    offence,
)
from protos.issuance.v1 import judicial_pb2 as pb

_KINDS_TO_PB = {kind: pb.SentenceKind.Value(f"SENTENCE_KIND_{kind.value}") for kind in SentenceKind}
_KINDS_FROM_PB = {number: kind for kind, number in _KINDS_TO_PB.items()}


def _day(value: date | None) -> str:
    return value.isoformat() if value is not None else ""


def _parse_day(value: str, name: str, serial: int) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(f"conviction {serial}: {name} must be a date YYYY-MM-DD, not {value!r}") from None


def conviction_to_pb(conviction: Conviction, serial: int, expunged_on: date | None, at: date) -> pb.Conviction:
    """One conviction, numbered ``serial`` in its record; ``expunged_on`` as computed for the record."""
    sentence = conviction.sentence
    message = pb.Conviction(
        serial=serial,
        penal_code_article=conviction.offence.article,
        offence=conviction.offence.name_vi,
        offence_date=_day(conviction.offence_date),
        court=conviction.court,
        judgment_number=conviction.judgment_number,
        judgment_date=_day(conviction.judgment_date),
        sentence=pb.Sentence(
            kind=_KINDS_TO_PB[sentence.kind],
            months=sentence.months,
            fine_vnd=sentence.fine_vnd,
            probation_months=sentence.probation_months,
        ),
        completed_on=_day(conviction.completion_date) if conviction.completion_date <= at else "",
        completion_date=_day(conviction.completion_date),
        court_expungement_only=conviction.offence.court_decision_only,
        expunged_on=_day(expunged_on) if expunged_on is not None and expunged_on <= at else "",
        court_expunged_on=_day(court) if (court := conviction.court_expunged_on) is not None and court <= at else "",
    )
    if conviction.ban is not None:
        message.office_ban.CopyFrom(pb.OfficeBan(position_vi=conviction.ban.position_vi, years=conviction.ban.years))
    return message


def record_to_pb(record: JudicialRecord, at: date) -> pb.JudicialRecord:
    """GetRecord's answer for ``record`` on day ``at`` (convictions oldest first, numbered from 1)."""
    dates = expungement_dates(record.convictions)
    return pb.JudicialRecord(
        id_number=record.id_number,
        convictions=[conviction_to_pb(c, i + 1, dates[i], at) for i, c in enumerate(record.convictions)],
    )


def conviction_from_pb(message: pb.Conviction) -> Conviction:
    """The conviction a message names; a malformed one (unknown article or sentence kind, a bad date, a sentence
    or ban the Penal Code does not allow) is INVALID_ARGUMENT."""
    serial = message.serial
    kind = _KINDS_FROM_PB.get(message.sentence.kind)
    if kind is None:
        raise InvalidArgument(f"conviction {serial}: unknown sentence kind {message.sentence.kind}")
    completion = message.completion_date or message.completed_on
    court_expunged = message.court_expunged_on or None
    ban = message.office_ban if message.HasField("office_ban") else None
    return Conviction(
        offence=offence(message.penal_code_article),
        offence_date=_parse_day(message.offence_date, "offence_date", serial),
        court=message.court,
        judgment_number=message.judgment_number,
        judgment_date=_parse_day(message.judgment_date, "judgment_date", serial),
        sentence=Sentence(kind, message.sentence.months, message.sentence.probation_months, message.sentence.fine_vnd),
        completion_date=_parse_day(completion, "completion_date", serial),
        ban=OfficeBan(ban.position_vi, ban.years) if ban is not None else None,
        court_expunged_on=_parse_day(court_expunged, "court_expunged_on", serial) if court_expunged else None,
    )


def record_from_pb(message: pb.JudicialRecord) -> JudicialRecord:
    """The domain record GetRecord returned (``record_from_pb(record_to_pb(r, at)) == r``)."""
    return JudicialRecord(message.id_number, tuple(conviction_from_pb(c) for c in message.convictions))
