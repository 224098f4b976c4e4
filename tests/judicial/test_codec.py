"""``services.judicial_codec``: a judicial record to GetRecord's message and back, unchanged; the message says what
the service computes on the day asked (served, expunged)."""

from __future__ import annotations

from datetime import date

import pytest

from core.errors import InvalidArgument
from issuance.judicial import OFFENCES, Conviction, JudicialRecord, OfficeBan, Sentence, SentenceKind, seed_record
from protos.issuance.v1 import judicial_pb2 as pb
from registry.generator import generate
from services.judicial_codec import record_from_pb, record_to_pb

AT = date(2026, 12, 1)

THEFT = Conviction(OFFENCES[173], date(2018, 3, 1), "Tòa án nhân dân cấp huyện thuộc Hà Nội", "12/2018/HS-ST",
                   date(2018, 6, 1), Sentence(SentenceKind.PRISON, 12), date(2019, 6, 1))  # fmt: skip
BRIBE = Conviction(OFFENCES[354], date(2024, 1, 10), "Tòa án nhân dân khu vực 3 - Hà Nội", "401/2024/HS-ST",
                   date(2024, 5, 2), Sentence(SentenceKind.PRISON, 84), date(2031, 5, 2),
                   OfficeBan("Đảm nhiệm chức vụ lãnh đạo, quản lý", 3))  # fmt: skip
SECURITY = Conviction(OFFENCES[117], date(2018, 2, 1), "Tòa án nhân dân thành phố Hà Nội", "7/2018/HS-ST",
                      date(2018, 4, 1), Sentence(SentenceKind.SUSPENDED, 24, 36), date(2021, 4, 1),
                      court_expunged_on=date(2025, 1, 15))  # fmt: skip
FINE = Conviction(OFFENCES[321], date(2019, 1, 1), "Tòa án nhân dân cấp huyện thuộc Huế", "3/2019/HS-ST",
                  date(2019, 2, 1), Sentence(SentenceKind.FINE, fine_vnd=20_000_000), date(2019, 4, 2))  # fmt: skip


def test_a_record_round_trips() -> None:
    record = JudicialRecord("001085012345", (BRIBE, THEFT, SECURITY, FINE))
    message = record_to_pb(record, AT)
    assert record_from_pb(message) == record
    assert record_from_pb(pb.JudicialRecord.FromString(message.SerializeToString())) == record


def test_seeded_records_round_trip() -> None:
    records = [r for c in generate(3000) if (r := seed_record(c)).convictions]
    assert len(records) > 20
    for record in records:
        assert record_from_pb(record_to_pb(record, AT)) == record


def test_what_the_message_says() -> None:
    message = record_to_pb(JudicialRecord("001085012345", (BRIBE, THEFT, SECURITY)), AT)
    assert message.id_number == "001085012345"
    assert [c.serial for c in message.convictions] == [1, 2, 3]  # judgment order
    security, theft, bribe = message.convictions
    assert theft.penal_code_article == 173
    assert theft.offence == "Tội trộm cắp tài sản"
    assert theft.offence_date == "2018-03-01"
    assert theft.judgment_date == "2018-06-01"
    assert theft.sentence == pb.Sentence(kind=pb.SENTENCE_KIND_PRISON, months=12)
    assert not theft.HasField("office_ban")
    assert theft.completed_on == "2019-06-01"
    assert theft.expunged_on == "2021-06-01"  # Art. 70(2): 2 years after a prison term up to 5 years
    assert not theft.court_expungement_only
    assert bribe.office_ban == pb.OfficeBan(position_vi="Đảm nhiệm chức vụ lãnh đạo, quản lý", years=3)
    assert bribe.completed_on == ""  # not served yet on AT
    assert bribe.completion_date == "2031-05-02"
    assert bribe.expunged_on == ""
    assert security.court_expungement_only
    assert security.court_expunged_on == "2025-01-15"
    assert security.expunged_on == ""  # Art. 72(2): the bribe, committed before, is not expunged yet
    assert security.sentence.probation_months == 36


def test_a_court_expungement_alone() -> None:
    message = record_to_pb(JudicialRecord("001085012345", (SECURITY,)), AT)
    assert message.convictions[0].expunged_on == "2025-01-15"
    assert message.convictions[0].court_expunged_on == "2025-01-15"


def test_a_clean_record() -> None:
    message = record_to_pb(JudicialRecord("001085012345"), AT)
    assert list(message.convictions) == []
    assert record_from_pb(message) == JudicialRecord("001085012345")


def test_a_malformed_message_is_invalid() -> None:
    message = record_to_pb(JudicialRecord("001085012345", (THEFT,)), AT)
    message.convictions[0].penal_code_article = 999
    with pytest.raises(InvalidArgument, match="article 999"):
        record_from_pb(message)
    message = record_to_pb(JudicialRecord("001085012345", (THEFT,)), AT)
    message.convictions[0].judgment_date = "01/06/2018"
    with pytest.raises(InvalidArgument, match="judgment_date"):
        record_from_pb(message)
    message = record_to_pb(JudicialRecord("001085012345", (THEFT,)), AT)
    message.convictions[0].sentence.kind = pb.SENTENCE_KIND_UNSPECIFIED
    with pytest.raises(InvalidArgument, match="sentence kind"):
        record_from_pb(message)
