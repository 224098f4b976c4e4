"""Judicial records: convictions, their expungement, and a deterministic seed for the simulated population.

A conviction names the offence by its article of the Penal Code 2015 (No. 100/2015/QH13, amended by Law
12/2017/QH14), the court, the judgment's number and date, the main penalty and the date it was served, and an
optional ban on holding office (Art. 41). Rules encoded:

* **Main penalties** (Art. 32): warning (Art. 34), fine (Art. 35, at least 1,000,000 VND), non-custodial reform
  (Art. 36, 6 months to 3 years), fixed-term prison (Art. 38, 3 months to 20 years; up to 30 years for several
  offences, Art. 55), life imprisonment (Art. 39); prison of at most 3 years may be suspended with a probation
  of 1 to 5 years (Art. 65).
* **Ban on holding office, practising a profession or doing certain work** (Art. 41): 1 to 5 years, counted
  from the day the prison term is served, or from the day the judgment takes effect when the main penalty is a
  warning, a fine, non-custodial reform or a suspended sentence.
* **Automatic expungement** (Art. 70): for offences outside Chapters XIII (national security, Art. 108-122) and
  XXVI (peace, humanity, war crimes, Art. 421-425), once the main penalty is served (or probation ended), the
  additional penalties served and no new offence committed during: 1 year for a warning, fine, non-custodial
  reform or suspended sentence; 2 years for prison up to 5 years; 3 years for more than 5 up to 15 years;
  5 years for more than 15 years, life or a commuted death sentence (Art. 70(2)). When an additional penalty
  (here the Art. 41 ban) ends later, expungement comes when it ends (Art. 70(3)).
* **Expungement by court decision** (Art. 71) for Chapters XIII and XXVI: the court may expunge after 3, 5 or
  7 years; nothing is automatic, so such a conviction is expunged only once ``court_expunged_on`` is set.
* **A new offence** committed before an old conviction is expunged restarts the old one's period from the day
  the new sentence is served (Art. 72(2)): the old conviction is expunged no earlier than the new one.

Not encoded: the rules for offenders under 18 (Art. 107; the seed only convicts adults), special expungement
(Art. 73), amnesty, and additional penalties other than the Art. 41 ban (their completion is taken to coincide
with the main penalty's).

The seed (:func:`seed_record`) gives about 1.3 % of the population a record (men about six times as often as
women: a rough figure, convicted people being overwhelmingly men), from a SHA-256 of the seed and the ID number:
the same person always gets the same record, whatever order the population is generated or read in.
"""

from __future__ import annotations

import enum
import hashlib
import random
from bisect import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from types import MappingProxyType

from core.errors import InvalidArgument
from registry.citizen import Citizen, Sex

PENAL_CODE = "Bộ luật Hình sự 2015, số 100/2015/QH13, sửa đổi bởi Luật 12/2017/QH14"
SEED_REFERENCE_DATE = date(2026, 1, 1)
PENAL_CODE_IN_FORCE = date(2018, 1, 1)
"""The Penal Code 2015 took effect (Resolution 41/2017/QH14): seeded offences are committed from then on, so
their article numbers are this Code's."""


class SentenceKind(enum.Enum):
    """The main penalty (hình phạt chính, Penal Code 2015 Art. 32(1))."""

    WARNING = "WARNING"  # cảnh cáo, Art. 34
    FINE = "FINE"  # phạt tiền, Art. 35
    NON_CUSTODIAL = "NON_CUSTODIAL"  # cải tạo không giam giữ, Art. 36
    SUSPENDED = "SUSPENDED"  # phạt tù cho hưởng án treo, Art. 65
    PRISON = "PRISON"  # tù có thời hạn, Art. 38
    LIFE = "LIFE"  # tù chung thân, Art. 39


SENTENCE_NAMES_VI: Mapping[SentenceKind, str] = MappingProxyType(
    {
        SentenceKind.WARNING: "Cảnh cáo",
        SentenceKind.FINE: "Phạt tiền",
        SentenceKind.NON_CUSTODIAL: "Cải tạo không giam giữ",
        SentenceKind.SUSPENDED: "Phạt tù nhưng cho hưởng án treo",
        SentenceKind.PRISON: "Tù có thời hạn",
        SentenceKind.LIFE: "Tù chung thân",
    }
)

COURT_DECISION_CHAPTERS = frozenset({13, 26})
"""Chapters whose convictions are expunged only by a court's decision (Art. 70(1), Art. 71)."""


@dataclass(frozen=True, slots=True)
class Offence:
    """An article of the Penal Code 2015 and its Vietnamese name (tội danh)."""

    article: int
    name_vi: str
    name_en: str
    chapter: int

    @property
    def citation(self) -> str:
        return f"Điều {self.article} {PENAL_CODE}"

    @property
    def court_decision_only(self) -> bool:
        return self.chapter in COURT_DECISION_CHAPTERS


_OFFENCES = (
    Offence(
        117,
        "Tội làm, tàng trữ, phát tán hoặc tuyên truyền thông tin, tài liệu, vật phẩm nhằm chống Nhà nước "
        "Cộng hòa xã hội chủ nghĩa Việt Nam",
        "Making or spreading material against the State",
        13,
    ),
    Offence(
        134,
        "Tội cố ý gây thương tích hoặc gây tổn hại cho sức khỏe của người khác",
        "Intentionally inflicting injury or harming another person's health",
        14,
    ),
    Offence(168, "Tội cướp tài sản", "Robbery", 16),
    Offence(171, "Tội cướp giật tài sản", "Snatching property", 16),
    Offence(173, "Tội trộm cắp tài sản", "Theft", 16),
    Offence(174, "Tội lừa đảo chiếm đoạt tài sản", "Fraud (obtaining property by deception)", 16),
    Offence(175, "Tội lạm dụng tín nhiệm chiếm đoạt tài sản", "Abuse of trust to appropriate property", 16),
    Offence(178, "Tội hủy hoại hoặc cố ý làm hư hỏng tài sản", "Destroying or damaging property", 16),
    Offence(249, "Tội tàng trữ trái phép chất ma túy", "Illegal possession of narcotics", 20),
    Offence(251, "Tội mua bán trái phép chất ma túy", "Illegal trafficking of narcotics", 20),
    Offence(255, "Tội tổ chức sử dụng trái phép chất ma túy", "Organising illegal drug use", 20),
    Offence(260, "Tội vi phạm quy định về tham gia giao thông đường bộ", "Violating road traffic regulations", 21),
    Offence(318, "Tội gây rối trật tự công cộng", "Disturbing public order", 21),
    Offence(321, "Tội đánh bạc", "Gambling", 21),
    Offence(322, "Tội tổ chức đánh bạc hoặc gá bạc", "Organising gambling", 21),
    Offence(353, "Tội tham ô tài sản", "Embezzlement", 23),
    Offence(354, "Tội nhận hối lộ", "Taking bribes", 23),
)
OFFENCES: Mapping[int, Offence] = MappingProxyType({o.article: o for o in _OFFENCES})


def offence(article: int) -> Offence:
    """The catalog entry for a Penal Code article; an article not in the catalog is INVALID_ARGUMENT."""
    try:
        return OFFENCES[article]
    except KeyError:
        raise InvalidArgument(
            f"article {article} of the Penal Code is not in the catalog ({', '.join(map(str, OFFENCES))})"
        ) from None


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the last day of the month when it has fewer days)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for last in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Sentence:
    """The main penalty: kind, term in months (prison, reform or the suspended prison term), probation, fine."""

    kind: SentenceKind
    months: int = 0
    probation_months: int = 0
    fine_vnd: int = 0

    def __post_init__(self) -> None:
        kind, months = self.kind, self.months
        if kind is SentenceKind.NON_CUSTODIAL and not 6 <= months <= 36:
            raise InvalidArgument("non-custodial reform lasts 6 months to 3 years (Penal Code Art. 36)")
        if kind is SentenceKind.PRISON and not 3 <= months <= 360:
            raise InvalidArgument("a prison term is 3 months to 20 years, 30 for several offences (Art. 38, 55)")
        if kind is SentenceKind.SUSPENDED and not (1 <= months <= 36 and 12 <= self.probation_months <= 60):
            raise InvalidArgument("a suspended term is at most 3 years with 1 to 5 years' probation (Art. 65)")
        if kind is SentenceKind.FINE and self.fine_vnd < 1_000_000:
            raise InvalidArgument("a fine as main penalty is at least 1,000,000 VND (Penal Code Art. 35)")
        if kind in (SentenceKind.WARNING, SentenceKind.FINE, SentenceKind.LIFE) and months:
            raise InvalidArgument(f"a {kind.value} sentence has no term in months")
        if kind is not SentenceKind.SUSPENDED and self.probation_months:
            raise InvalidArgument("only a suspended sentence has a probation")

    @property
    def text_vi(self) -> str:
        name = SENTENCE_NAMES_VI[self.kind]
        if self.kind is SentenceKind.FINE:
            return f"{name} {self.fine_vnd:,} đồng".replace(",", ".")
        if self.kind is SentenceKind.SUSPENDED:
            return (
                f"{_months_vi(self.months)} tù nhưng cho hưởng án treo, thử thách {_months_vi(self.probation_months)}"
            )
        if self.months:
            return f"{name} {_months_vi(self.months)}"
        return name

    @property
    def expungement_years(self) -> int:
        """The waiting period of Penal Code Art. 70(2)."""
        if self.kind in (SentenceKind.WARNING, SentenceKind.FINE, SentenceKind.NON_CUSTODIAL, SentenceKind.SUSPENDED):
            return 1
        if self.kind is SentenceKind.PRISON and self.months <= 60:
            return 2
        if self.kind is SentenceKind.PRISON and self.months <= 180:
            return 3
        return 5

    @property
    def court_expungement_years(self) -> int:
        """The waiting period before a court may expunge (Art. 71(2)), for Chapters XIII and XXVI."""
        if self.kind in (SentenceKind.WARNING, SentenceKind.FINE, SentenceKind.NON_CUSTODIAL, SentenceKind.SUSPENDED):
            return 3
        if self.kind is SentenceKind.PRISON and self.months <= 180:
            return 5
        return 7


def _months_vi(months: int) -> str:
    years, rest = divmod(months, 12)
    parts = ([f"{years} năm"] if years else []) + ([f"{rest} tháng"] if rest else [])
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class OfficeBan:
    """The additional penalty of Penal Code Art. 41: a ban on holding a position for 1 to 5 years."""

    position_vi: str
    years: int

    def __post_init__(self) -> None:
        if not 1 <= self.years <= 5:
            raise InvalidArgument("a ban on holding office lasts 1 to 5 years (Penal Code Art. 41)")
        if not self.position_vi.strip():
            raise InvalidArgument("a ban names the positions it bars")


@dataclass(frozen=True, slots=True)
class Conviction:
    """One criminal judgment against a person, as the judicial records database holds it."""

    offence: Offence
    offence_date: date
    court: str
    judgment_number: str
    judgment_date: date
    sentence: Sentence
    completion_date: date  # main penalty served, probation ended, fine paid
    ban: OfficeBan | None = None
    court_expunged_on: date | None = None  # Art. 71: only for Chapters XIII and XXVI

    def __post_init__(self) -> None:
        if not self.offence_date <= self.judgment_date <= self.completion_date:
            raise InvalidArgument("a conviction's dates go offence ≤ judgment ≤ completion")
        if self.court_expunged_on and not self.offence.court_decision_only:
            raise InvalidArgument("only Chapter XIII and XXVI convictions are expunged by a court's decision")
        if not self.court.strip() or not self.judgment_number.strip():
            raise InvalidArgument("a conviction names its court and judgment number")

    @property
    def ban_start(self) -> date | None:
        """Art. 41: from the prison term served, else from the judgment taking effect (its date, here)."""
        if self.ban is None:
            return None
        if self.sentence.kind in (SentenceKind.PRISON, SentenceKind.LIFE):
            return self.completion_date
        return self.judgment_date

    @property
    def ban_end(self) -> date | None:
        start = self.ban_start
        return None if start is None or self.ban is None else add_months(start, 12 * self.ban.years)

    @property
    def own_expungement_date(self) -> date | None:
        """The Art. 70 date ignoring later offences; None where only a court's decision expunges."""
        if self.offence.court_decision_only:
            return self.court_expunged_on
        due = add_months(self.completion_date, 12 * self.sentence.expungement_years)
        ban_end = self.ban_end
        return max(due, ban_end) if ban_end else due


def expungement_dates(convictions: Sequence[Conviction]) -> dict[int, date | None]:
    """For each conviction (by index), the day it is expunged, applying Art. 72(2) to later offences."""
    dates: dict[int, date | None] = {}
    order = sorted(range(len(convictions)), key=lambda i: convictions[i].offence_date, reverse=True)
    for i in order:  # latest first, so a newer conviction's date is known when an older one needs it
        own = convictions[i].own_expungement_date
        for j in order:
            newer = convictions[j]
            if j == i or newer.offence_date <= convictions[i].offence_date:
                continue
            if own is not None and newer.offence_date < own:
                other = dates[j]
                own = None if other is None else max(own, other)
        dates[i] = own
    return dates


def expunged_at(convictions: Sequence[Conviction], at: date) -> tuple[Conviction, ...]:
    """The convictions expunged on ``at`` (their expungement date is on or before it)."""
    dates = expungement_dates(convictions)
    return tuple(c for i, c in enumerate(convictions) if (d := dates[i]) is not None and d <= at)


def unexpunged_at(convictions: Sequence[Conviction], at: date) -> tuple[Conviction, ...]:
    """The convictions still on record (án tích chưa được xóa) on ``at``."""
    gone = {id(c) for c in expunged_at(convictions, at)}
    return tuple(c for c in convictions if id(c) not in gone)


def active_bans(convictions: Sequence[Conviction], at: date) -> tuple[Conviction, ...]:
    """The convictions whose Art. 41 ban is in force on ``at``."""
    return tuple(c for c in convictions if c.ban_start and c.ban_end and c.ban_start <= at < c.ban_end)


@dataclass(frozen=True, slots=True)
class JudicialRecord:
    """A person's judicial record: the ID number and convictions in judgment order (none: a clean record)."""

    id_number: str
    convictions: tuple[Conviction, ...] = ()

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.convictions, key=lambda c: (c.judgment_date, c.judgment_number)))
        object.__setattr__(self, "convictions", ordered)

    def expunged_at(self, at: date) -> tuple[Conviction, ...]:
        return expunged_at(self.convictions, at)

    def unexpunged_at(self, at: date) -> tuple[Conviction, ...]:
        return unexpunged_at(self.convictions, at)

    def clean_at(self, at: date) -> bool:
        """No conviction on record and no ban in force: what Form No. 1 certifies as "không có án tích"."""
        return not self.unexpunged_at(at) and not active_bans(self.convictions, at)


# ---------------------------------------------------------------------------------------------------------------
# Deterministic seed.

RECORD_SHARE_MALE = 0.0255
RECORD_SHARE_FEMALE = 0.0045
"""Share of each sex with a record: about 1.5 % overall, men about six in seven of those convicted."""
SECOND_CONVICTION = 0.15
"""Share of people with a record who have a second, later conviction (reoffending)."""

# article, weight, sentence profile
_SEED_OFFENCES: tuple[tuple[int, float, str], ...] = (
    (173, 28, "property"),
    (251, 10, "drugs_heavy"),
    (249, 10, "drugs"),
    (255, 2, "drugs"),
    (134, 12, "violence"),
    (321, 10, "gambling"),
    (322, 2, "gambling"),
    (174, 7, "fraud"),
    (175, 3, "fraud"),
    (171, 3, "property"),
    (168, 2, "violence"),
    (178, 2, "property"),
    (260, 6, "traffic"),
    (318, 2, "gambling"),
    (353, 0.6, "office"),
    (354, 0.4, "office"),
)
_SEED_CUM = tuple(accumulate(w for _, w, _ in _SEED_OFFENCES))


def _draw_sentence(rng: random.Random, profile: str) -> Sentence:
    roll = rng.random()
    if profile == "gambling":
        if roll < 0.45:
            return Sentence(SentenceKind.FINE, fine_vnd=rng.choice((20, 30, 50, 100)) * 1_000_000)
        if roll < 0.80:
            return Sentence(SentenceKind.SUSPENDED, rng.choice((6, 9, 12, 18)), rng.choice((12, 24, 36)))
        return Sentence(SentenceKind.PRISON, rng.choice((6, 9, 12, 24)))
    if profile == "traffic":
        if roll < 0.5:
            return Sentence(SentenceKind.SUSPENDED, rng.choice((12, 18, 24, 36)), rng.choice((24, 36, 48)))
        if roll < 0.7:
            return Sentence(SentenceKind.NON_CUSTODIAL, rng.choice((12, 18, 24)))
        return Sentence(SentenceKind.PRISON, rng.choice((12, 24, 36, 60)))
    if profile in ("fraud", "office"):
        if roll < 0.3:
            return Sentence(SentenceKind.SUSPENDED, rng.choice((12, 24, 36)), rng.choice((24, 36, 60)))
        return Sentence(SentenceKind.PRISON, rng.choice((24, 36, 60, 84, 120, 144)))
    if profile == "drugs_heavy":
        return Sentence(SentenceKind.PRISON, rng.choice((36, 60, 84, 96, 120, 180, 240)))
    if profile == "drugs":
        return Sentence(SentenceKind.PRISON, rng.choice((12, 18, 24, 36, 60)))
    if profile == "violence":
        if roll < 0.3:
            return Sentence(SentenceKind.SUSPENDED, rng.choice((6, 12, 24)), rng.choice((12, 24, 36)))
        if roll < 0.4:
            return Sentence(SentenceKind.NON_CUSTODIAL, rng.choice((6, 12, 24)))
        return Sentence(SentenceKind.PRISON, rng.choice((6, 12, 24, 36, 60, 84)))
    # property
    if roll < 0.25:
        return Sentence(SentenceKind.SUSPENDED, rng.choice((6, 9, 12, 24)), rng.choice((12, 24, 36)))
    if roll < 0.35:
        return Sentence(SentenceKind.NON_CUSTODIAL, rng.choice((6, 12, 18)))
    return Sentence(SentenceKind.PRISON, rng.choice((6, 9, 12, 18, 24, 36, 48, 84)))


def _completion(judgment: date, sentence: Sentence) -> date:
    if sentence.kind is SentenceKind.FINE:
        return judgment + timedelta(days=60)
    if sentence.kind is SentenceKind.SUSPENDED:
        return add_months(judgment, sentence.probation_months)
    if sentence.kind is SentenceKind.WARNING:
        return judgment
    return add_months(judgment, sentence.months)


def _court(rng: random.Random, province: str, judgment: date) -> str:
    if judgment >= date(2025, 7, 1):  # regional courts replaced district courts (2025 amended Law on People's Courts)
        return f"Tòa án nhân dân khu vực {rng.randint(1, 12)} - {province}"
    return f"Tòa án nhân dân cấp huyện thuộc {province}"


def _draw_conviction(rng: random.Random, citizen: Citizen, earliest: date, today: date, serial: int) -> Conviction:
    span = max(1, (today - timedelta(days=300) - earliest).days)
    offence_date = earliest + timedelta(days=int(rng.random() * span))
    judgment = offence_date + timedelta(days=rng.randint(60, 240))
    article, _, profile = _SEED_OFFENCES[bisect(_SEED_CUM, rng.random() * _SEED_CUM[-1])]
    sentence = _draw_sentence(rng, profile)
    ban = OfficeBan("Đảm nhiệm chức vụ lãnh đạo, quản lý", rng.randint(1, 5)) if profile == "office" else None
    number = f"{serial + rng.randint(1, 399)}/{judgment.year}/HS-ST"
    return Conviction(
        OFFENCES[article],
        offence_date,
        _court(rng, citizen.permanent_address.province, judgment),
        number,
        judgment,
        sentence,
        _completion(judgment, sentence),
        ban,
    )


def seed_record(citizen: Citizen, seed: int = 2025, today: date = SEED_REFERENCE_DATE) -> JudicialRecord:
    """The simulated judicial record of ``citizen``: the same for the same seed, ID number and ``today``.

    Offences are committed from the 18th birthday (Art. 107's rules for minors are not encoded) and from
    1 January 2018, and judged before ``today``; a second conviction, when drawn, follows the first one's completion.
    """
    digest = hashlib.sha256(f"judicial-record:{seed}:{citizen.id_number}".encode()).digest()
    share = RECORD_SHARE_MALE if citizen.sex is Sex.MALE else RECORD_SHARE_FEMALE
    if int.from_bytes(digest[:8], "big") >= share * 2**64:  # most people: no record, no generator built
        return JudicialRecord(citizen.id_number)
    adult = add_months(citizen.date_of_birth, 18 * 12)
    if adult >= today - timedelta(days=365):
        return JudicialRecord(citizen.id_number)
    rng = random.Random(int.from_bytes(digest[8:], "big"))  # noqa: S311 - simulated data, not a secret
    first = _draw_conviction(rng, citizen, max(adult, PENAL_CODE_IN_FORCE), today, 0)
    convictions = [first]
    if rng.random() < SECOND_CONVICTION and first.completion_date < today - timedelta(days=400):
        convictions.append(_draw_conviction(rng, citizen, first.completion_date + timedelta(days=30), today, 400))
    return JudicialRecord(citizen.id_number, tuple(convictions))


def seed_records(
    citizens: Iterable[Citizen], seed: int = 2025, today: date = SEED_REFERENCE_DATE
) -> Iterable[JudicialRecord]:
    """The non-empty seeded records of ``citizens`` (a clean record is the absence of one)."""
    for citizen in citizens:
        record = seed_record(citizen, seed, today)
        if record.convictions:
            yield record


__all__ = [
    "OFFENCES",
    "Conviction",
    "JudicialRecord",
    "Offence",
    "OfficeBan",
    "Sentence",
    "SentenceKind",
    "active_bans",
    "expunged_at",
    "expungement_dates",
    "offence",
    "seed_record",
    "seed_records",
    "unexpunged_at",
]
