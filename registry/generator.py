"""Deterministic generator of a realistic simulated population.

``generate(count, seed)`` always yields the same citizens in the same order for the same arguments: all
randomness comes from one ``random.Random(seed)`` and the reference date is fixed (``today`` defaults to
:data:`DEFAULT_TODAY`, never the clock).

Uniqueness without memory: the first 6 digits of an ID number (province, century/sex, birth year) form a
*bucket*; the n-th person drawn into a bucket gets serial ``P_bucket(n)``, where ``P_bucket`` is a keyed
4-round Feistel permutation of 0..999999 (round keys derived from the seed and the bucket). A permutation
never repeats, so ID numbers are unique by construction and only a counter and four keys per bucket
(≈ 10,000 buckets) are kept. Phone numbers work the same way with one permutation of 0..9999999 per
mobile prefix.

Rules implemented:

* Citizens are 14-90 years old: the identity card is issued from age 14 (Law on Citizen Identification
  No. 59/2014/QH13, Article 19; Law on Identification No. 26/2023/QH15, Article 19), ages follow the
  2019 census pyramid, rolled forward.
* The ID number encodes the province where the birth was registered (the hometown's old province), sex
  and birth year (Decree 137/2015/NĐ-CP, Article 13; Circular 07/2016/TT-BCA).
* The card was issued on or after 1 January 2016 (Law 59/2014/QH13 in force), on or after the 14th
  birthday, and is still valid: a card must be renewed at ages 25, 40 and 60, and one issued within two
  years before such an age stays valid until the next one (Law 59/2014/QH13, Article 21; Law
  26/2023/QH15, Article 21).
* Addresses and hometowns use the 34 units in force since 1 July 2025 (Resolution 202/2025/QH15).
* Phone numbers are 10-digit mobile numbers with the prefixes in use since the 2018 renumbering
  (Decision 798/QĐ-BTTTT, 03x/05x/07x/08x/09x).
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterator, Sequence
from datetime import date
from itertools import accumulate

from registry import geography
from registry.citizen import Citizen, Sex
from registry.geography import MIGRATION_DESTINATIONS, OLD_POPULATION, OLD_TO_NEW
from registry.idnumber import MAX_SERIAL, OLD_PROVINCES
from registry.names import (
    DEFAULT_ETHNIC_MIX,
    ETHNIC_MIX,
    ETHNIC_POOLS,
    ETHNIC_SURNAMES,
    FEMALE_GIVEN,
    FEMALE_MIDDLE,
    FEMALE_TRADITIONAL_MIDDLE,
    MALE_GIVEN,
    MALE_MIDDLE,
    MALE_TRADITIONAL_MIDDLE,
    NATIONALITY,
    RELIGIONS,
    SURNAMES,
    traditional_middle_share,
)

__all__ = ["CITIZEN_COLUMNS", "DEFAULT_TODAY", "ISSUE_PLACE", "citizen_row", "generate"]

DEFAULT_TODAY = date(2026, 1, 1)
"""Reference date used when ``today`` is not given, so that output never depends on the clock."""

ISSUE_PLACE = "Cục Cảnh sát quản lý hành chính về trật tự xã hội"
"""Issuing authority printed on chip-based citizen identity cards (Police Department for Administrative
Management of Social Order, Ministry of Public Security)."""

CARD_LAW_IN_FORCE = date(2016, 1, 1)
"""Law on Citizen Identification No. 59/2014/QH13 took effect; no current card predates it."""

MIN_AGE = 14
"""Age at which a card is issued (Law 59/2014/QH13 and Law 26/2023/QH15, Article 19)."""

MAX_AGE = 90

RENEWAL_AGES: tuple[int, ...] = (25, 40, 60)
"""Ages at which the card must be renewed (Law 59/2014/QH13 and Law 26/2023/QH15, Article 21)."""

RENEWAL_GRACE_YEARS = 2
"""A card issued within this many years before a renewal age stays valid until the next one."""

AGE_GROUPS: tuple[tuple[int, float], ...] = (
    (10, 7.6),
    (15, 7.0),
    (20, 6.8),
    (25, 7.3),
    (30, 7.8),
    (35, 7.9),
    (40, 7.4),
    (45, 6.9),
    (50, 6.3),
    (55, 5.6),
    (60, 4.8),
    (65, 3.8),
    (70, 2.6),
    (75, 1.6),
    (80, 1.0),
    (85, 0.6),
    (90, 0.3),
)
"""Population pyramid: (first age of a 5-year group, millions of people in it), after the 2019 census
rolled forward to the mid-2020s. Each single year of age gets a fifth of its group."""

PHONE_PREFIXES: tuple[tuple[str, float], ...] = (
    # Viettel
    *((p, 4.5) for p in ("032", "033", "034", "035", "036", "037", "038", "039", "086", "096", "097", "098")),
    # VinaPhone
    *((p, 3.0) for p in ("081", "082", "083", "084", "085", "088", "091", "094")),
    # MobiFone
    *((p, 2.5) for p in ("070", "076", "077", "078", "079", "089", "090", "093")),
    # Vietnamobile, Gmobile, Itelecom, Reddi
    *((p, 1.0) for p in ("052", "056", "058", "092")),
    *((p, 0.5) for p in ("059", "099", "087", "055")),
)
"""Mobile prefixes (after the 2018 renumbering) weighted roughly by each carrier's subscriber share."""

PHONE_SUBSCRIBER_DIGITS = 7

CITIZEN_COLUMNS: tuple[str, ...] = (
    "id_number",
    "full_name",
    "date_of_birth",
    "sex",
    "nationality",
    "ethnicity",
    "religion",
    "hometown",
    "permanent_street",
    "permanent_commune",
    "permanent_province",
    "current_street",
    "current_commune",
    "current_province",
    "id_card_issue_date",
    "id_card_issue_place",
    "phone",
)
"""Column order of :func:`citizen_row` (and of ``registry.citizens`` for COPY)."""

SAME_PROVINCE_AS_HOMETOWN = 0.88
"""Share of people whose permanent residence is in their hometown's (today's) province; the others have
moved, mostly to the big cities (the 2019 census counts about 6.4 million inter-provincial migrants in
five years, on top of earlier moves)."""

CURRENT_IS_PERMANENT = 0.80
"""Share of people living at their permanent address."""

_MAX_REDRAWS = 1000
_MASK64 = 0xFFFF_FFFF_FFFF_FFFF
_SALT_ID = 0x1D_5EED
_SALT_PHONE = 0x9_40E5


def citizen_row(c: Citizen) -> tuple[object, ...]:
    """Flatten a citizen into a tuple in :data:`CITIZEN_COLUMNS` order (for a database COPY)."""
    p = c.permanent_address
    cur = c.current_address
    return (
        c.id_number,
        c.full_name,
        c.date_of_birth,
        c.sex.value,
        c.nationality,
        c.ethnicity,
        c.religion,
        c.hometown,
        p.street,
        p.commune,
        p.province,
        cur.street,
        cur.commune,
        cur.province,
        c.id_card_issue_date,
        c.id_card_issue_place,
        c.phone,
    )


def _splitmix64(x: int) -> int:
    """SplitMix64 finaliser: a well-mixed 64-bit value from any 64-bit input (Steele et al., 2014)."""
    x = (x + 0x9E37_79B9_7F4A_7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58_476D_1CE4_E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D0_49BB_1331_11EB) & _MASK64
    return x ^ (x >> 31)


class _UniqueSerials:
    """Distinct values per bucket without remembering them.

    The n-th draw from a bucket is ``P(n)``, where ``P`` is a bijection of ``range(a * b)`` keyed by the
    seed and the bucket: a 4-round unbalanced Feistel network over Z_a × Z_b (Luby and Rackoff, 1988; the
    same construction as format-preserving encryption, NIST SP 800-38G). Each round maps
    (L ∈ Z_a, R ∈ Z_b) to (R, (L + F(R)) mod a), which is invertible whatever the round function F, and
    swaps the roles of a and b, so after 4 rounds the domain is Z_a × Z_b again. The round function is a
    seeded random table read at a per-bucket, per-round offset (small-int arithmetic only, for speed).
    Only a counter and four offsets per bucket are kept.
    """

    __slots__ = ("_a", "_b", "_base", "_size", "_span", "_state", "_table")

    def __init__(self, seed: int, salt: int, a: int, b: int) -> None:
        self._a = a
        self._b = b
        self._size = a * b
        self._span = max(a, b)
        self._base = _splitmix64((seed & _MASK64) ^ salt)
        table_rng = random.Random(self._base)
        self._table = [table_rng.getrandbits(24) for _ in range(2 * self._span)]
        self._state: dict[int, list[int]] = {}

    def _new_bucket(self, bucket: int) -> list[int]:
        k = _splitmix64(self._base ^ (bucket & _MASK64))
        span = self._span
        state = self._state[bucket] = [0, k % span, (k >> 16) % span, (k >> 32) % span, (k >> 48) % span]
        return state

    def next(self, bucket: int) -> int | None:
        """The next unused value of ``bucket``, or None when all ``a * b`` values are taken."""
        state = self._state.get(bucket) or self._new_bucket(bucket)
        n, k0, k1, k2, k3 = state
        if n >= self._size:
            return None
        state[0] = n + 1
        a = self._a
        b = self._b
        f = self._table
        left, right = divmod(n, b)
        left, right = right, (left + f[right + k0]) % a
        left, right = right, (left + f[right + k1]) % b
        left, right = right, (left + f[right + k2]) % a
        left, right = right, (left + f[right + k3]) % b
        return left * b + right


class _Weighted:
    """Weighted choice by bisection over cumulative weights (one ``random()`` call per draw)."""

    __slots__ = ("cum", "items", "total")

    def __init__(self, weighted: Sequence[tuple[str, float]]) -> None:
        self.items = tuple(item for item, _ in weighted)
        self.cum = tuple(accumulate(w for _, w in weighted))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> str:
        return self.items[bisect(self.cum, rng.random() * self.total)]


def _years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier (29 February → 28 February in a common year)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _anniversary_ordinal(dob: date, years: int) -> int:
    """Ordinal of the ``years``-th birthday (someone born on 29 February turns a year older on 1 March)."""
    try:
        return dob.replace(year=dob.year + years).toordinal()
    except ValueError:
        return date(dob.year + years, 3, 1).toordinal()


def _age_table(today: date) -> tuple[tuple[int, ...], tuple[int, ...], tuple[float, ...]]:
    """For each age 14..90: first ordinal of a birth date giving that age, number of such days, cum weight."""
    firsts: list[int] = []
    spans: list[int] = []
    weights: list[float] = []
    groups = dict(AGE_GROUPS)
    for age in range(MIN_AGE, MAX_AGE + 1):
        last = _years_before(today, age).toordinal()
        first = _years_before(today, age + 1).toordinal() + 1
        firsts.append(first)
        spans.append(last - first + 1)
        weights.append(groups[age - age % 5] / 5)
    return tuple(firsts), tuple(spans), tuple(accumulate(weights))


def _male_share(age: int) -> float:
    """Share of men at a given age: ≈ 50 % until 60, fewer at older ages (higher male mortality)."""
    if age < 60:
        return 0.5
    return 0.45 if age < 75 else 0.38


def _earliest_valid_issue_age(age: int) -> int:
    """Age from which a card held at ``age`` may have been issued and still be valid.

    14 (first issue) until 25; then the last renewal age reached, less the two-year grace period
    (Law 59/2014/QH13 and Law 26/2023/QH15, Article 21).
    """
    earliest = MIN_AGE
    for renewal_age in RENEWAL_AGES:
        if age >= renewal_age:
            earliest = renewal_age - RENEWAL_GRACE_YEARS
    return earliest


def generate(count: int, seed: int = 2025, today: date | None = None) -> Iterator[Citizen]:
    """Yield ``count`` realistic, unique citizens, deterministically from ``seed``.

    Same ``count``, ``seed`` and ``today`` → same citizens in the same order; a shorter run is a
    prefix of a longer one. ``today`` (default :data:`DEFAULT_TODAY`) is the reference date for ages and
    card issue dates. ID numbers and phone numbers are unique across the whole run.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    today = today or DEFAULT_TODAY
    if today < CARD_LAW_IN_FORCE:
        raise ValueError(f"today must not be before {CARD_LAW_IN_FORCE} (no citizen identity cards yet)")
    return _generate(count, seed, today)


def _generate(count: int, seed: int, today: date) -> Iterator[Citizen]:
    rng = random.Random(seed)
    rand = rng.random

    age_first, age_span, age_cum = _age_table(today)
    age_total = age_cum[-1]
    male_share = tuple(_male_share(MIN_AGE + i) for i in range(len(age_first)))
    milestones = tuple(_earliest_valid_issue_age(MIN_AGE + i) for i in range(len(age_first)))
    today_ord = today.toordinal()
    law_ord = CARD_LAW_IN_FORCE.toordinal()
    years = range(today.year - MAX_AGE - 1, today.year - MIN_AGE + 1)
    traditional_share = {
        Sex.MALE: {y: traditional_middle_share(Sex.MALE, y) for y in years},
        Sex.FEMALE: {y: traditional_middle_share(Sex.FEMALE, y) for y in years},
    }
    traditional = {Sex.MALE: MALE_TRADITIONAL_MIDDLE, Sex.FEMALE: FEMALE_TRADITIONAL_MIDDLE}
    middles = {Sex.MALE: _Weighted(MALE_MIDDLE), Sex.FEMALE: _Weighted(FEMALE_MIDDLE)}
    givens = {Sex.MALE: MALE_GIVEN, Sex.FEMALE: FEMALE_GIVEN}

    birth_place = _Weighted([(code, OLD_POPULATION[code]) for code in OLD_PROVINCES])
    code_buckets = {code: int(code) * 1000 for code in OLD_PROVINCES}
    home_units = dict(OLD_TO_NEW)
    ethnic_surnames = dict(ETHNIC_SURNAMES)
    pools = {region: _Weighted(weighted) for region, weighted in ETHNIC_POOLS.items()}
    ethnic_mix = {
        code: (share, pools[region])
        for code in OLD_PROVINCES
        for share, region in [ETHNIC_MIX.get(code, DEFAULT_ETHNIC_MIX)]
    }
    surnames = _Weighted(SURNAMES)
    religions = _Weighted(RELIGIONS)
    destinations = _Weighted(MIGRATION_DESTINATIONS)
    phone_prefixes = _Weighted(PHONE_PREFIXES)
    prefix_buckets = {prefix: int(prefix) for prefix, _ in PHONE_PREFIXES}
    random_address = geography.random_address
    hometown_of = geography.hometown

    id_serials = _UniqueSerials(seed, _SALT_ID, 1000, (MAX_SERIAL + 1) // 1000)
    phone_serials = _UniqueSerials(seed, _SALT_PHONE, 1000, 10 ** (PHONE_SUBSCRIBER_DIGITS - 3))

    for _ in range(count):
        # Age (population pyramid), date of birth and sex.
        age_index = bisect(age_cum, rand() * age_total)
        dob = date.fromordinal(age_first[age_index] + int(rand() * age_span[age_index]))
        sex = Sex.MALE if rand() < male_share[age_index] else Sex.FEMALE
        year = dob.year
        century_sex = 2 * (year // 100 - 19) + (sex is Sex.FEMALE)

        # ID number: province of birth registration + century/sex + year + serial unique in that bucket.
        for _attempt in range(_MAX_REDRAWS):
            code = birth_place.pick(rng)
            serial = id_serials.next(code_buckets[code] + century_sex * 100 + year % 100)
            if serial is not None:
                break
        else:  # pragma: no cover - needs 10^6 people of one sex born in one year in each drawn province
            raise RuntimeError(f"no free ID numbers left for birth year {year}")
        id_number = "%s%d%02d%06d" % (code, century_sex, year % 100, serial)  # noqa: UP031 - hot path

        # Ethnicity (by province of birth), religion and name.
        kinh_share, minorities = ethnic_mix[code]
        ethnicity = "Kinh" if rand() < kinh_share else minorities.pick(rng)
        religion = religions.pick(rng)
        own_surnames = ethnic_surnames.get(ethnicity)
        surname = own_surnames[int(rand() * len(own_surnames))] if own_surnames else surnames.pick(rng)
        middle = traditional[sex] if rand() < traditional_share[sex][year] else middles[sex].pick(rng)
        given_names = givens[sex]
        full_name = f"{surname} {middle} {given_names[int(rand() * len(given_names))]}"

        # Hometown and residence, in today's units.
        home_unit = home_units[code]
        hometown = hometown_of(rng, home_unit)
        permanent_unit = home_unit if rand() < SAME_PROVINCE_AS_HOMETOWN else destinations.pick(rng)
        permanent = random_address(rng, permanent_unit)
        roll = rand()
        if roll < CURRENT_IS_PERMANENT:
            current = permanent
        elif roll < (1 + CURRENT_IS_PERMANENT) / 2:
            current = random_address(rng, permanent_unit)
        else:
            current = random_address(rng, destinations.pick(rng))

        # Card issue date: not before the law took effect, nor before the last renewal age (less the
        # two-year grace period) or the 14th birthday.
        first_ord = max(law_ord, _anniversary_ordinal(dob, milestones[age_index]))
        issue_date = date.fromordinal(first_ord + int(rand() * (today_ord - first_ord + 1)))

        # Mobile phone number, unique within its prefix.
        prefix = phone_prefixes.pick(rng)
        subscriber = phone_serials.next(prefix_buckets[prefix])
        while subscriber is None:  # pragma: no cover - needs 10^7 numbers on one prefix
            prefix = phone_prefixes.pick(rng)
            subscriber = phone_serials.next(prefix_buckets[prefix])

        # Positional arguments in Citizen field order (measurably faster than keywords on this path).
        yield Citizen(
            id_number,
            full_name,
            dob,
            sex,
            NATIONALITY,
            ethnicity,
            religion,
            hometown,
            permanent,
            current,
            issue_date,
            ISSUE_PLACE,
            "%s%07d" % (prefix, subscriber),  # noqa: UP031 - hot path
        )
