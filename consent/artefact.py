"""The consent artefact: what a citizen allowed one agency to fetch, for what purpose, for how long, how often.

After ReBIT's Account Aggregator consent artefact (purpose, data life, frequency, fetch limits, validity),
reduced to what the vault serves. An artefact is immutable (a frozen dataclass); its status and use counters
live beside it (``consent.states``, ``consent.fetch_policy``), never in it.

Canonical JSON (``canonical``): keys sorted, no whitespace, UTF-8 without ``\\u`` escapes for non-ASCII, and a
value space of strings, non-negative integers below 2**53, arrays (sorted, as the lists are sets) and objects
only — no floats, booleans nor nulls (an absent value is an absent key); instants are RFC 3339 UTC strings
with whole seconds (``2026-12-01T10:00:00Z``). Within that value space Python's
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` produces exactly the RFC 8785 (JCS)
serialization: every key is ASCII, so code-point order equals JCS's UTF-16 code-unit order (§3.2.3); strings
escape only ``"``, ``\\`` and controls below U+0020, with the short forms for \\b \\f \\n \\r \\t and lowercase
``\\u00xx`` otherwise, as ECMAScript's JSON.stringify (§3.2.2.2); safe integers print as their decimal digits
as ECMAScript's Number serialization does (§3.2.2.3). Lone surrogates (which JCS would have to escape) are
refused, so every string is valid UTF-8.

Signature (``sign`` / ``verify``): a JWS in Compact Serialization (RFC 7515 §7.1), ES256 (RFC 7518 §3.4),
whose payload is the canonical JSON bytes themselves — not a JWT: a JWT library re-serializes claims as it
likes, while here anyone can rebuild the signed bytes from the artefact and compare. The protected header is
``{"alg": "ES256", "kid": …, "typ": "consent-artefact+json"}``; the explicit ``typ`` (RFC 8725 §3.11) keeps
any other JWS of the platform's key from passing for an artefact. ``verify`` also refuses a payload that is
not canonical, so one artefact has exactly one signed form.
"""

from __future__ import annotations

import enum
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from consent.purposes import purpose as catalog_purpose
from core.errors import FailedPrecondition, InvalidArgument
from vault.documents import DocumentType

VERSION = 1
ALGORITHM = "ES256"
TYPE = "consent-artefact+json"
MAX_VALIDITY = timedelta(days=366)  # start → expiry: a year at most; the citizen renews, not forgets
MAX_START_DELAY = timedelta(days=90)  # created → start: a request may not wait long before it begins
MAX_DATA_LIFE = timedelta(days=5 * 365)  # how long the agency may keep what it fetched
MAX_FETCHES = 1000
MAX_FREQUENCY = 100
MAX_DOCUMENTS = 100
MAX_REF = 128
MAX_PURPOSE_TEXT = 500
MAX_SAFE_INTEGER = 2**53 - 1
REF = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces
ID_NUMBER = re.compile(r"\d{12}")
RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


class FrequencyUnit(enum.Enum):
    """The window a frequency counts fetches in (calendar windows, see ``consent.fetch_policy``)."""

    HOUR = "HOUR"
    DAY = "DAY"
    MONTH = "MONTH"


@dataclass(frozen=True, slots=True)
class Frequency:
    """At most ``count`` fetches per ``unit`` (ReBIT's frequency: unit and value)."""

    count: int
    unit: FrequencyUnit

    def __post_init__(self) -> None:
        if not _is_int(self.count) or not 1 <= self.count <= MAX_FREQUENCY:
            raise InvalidArgument(f"the frequency count must be 1..{MAX_FREQUENCY}")
        if not isinstance(self.unit, FrequencyUnit):
            raise InvalidArgument(f"the frequency unit must be one of {', '.join(u.value for u in FrequencyUnit)}")


@dataclass(frozen=True, slots=True)
class ConsentArtefact:
    """One grant. ``subject`` is the citizen's pseudonymous reference (never the ID number); ``client_id`` the
    agency's registered client; ``documents`` and ``document_types`` the grant (either or both, at least one);
    the grant is valid in [``start``, ``expiry``); ``approved_at`` is set once the citizen approved."""

    id: uuid.UUID
    subject: str
    client_id: str
    purpose: str
    purpose_text: str  # the Vietnamese text the citizen was shown, kept as evidence
    documents: tuple[uuid.UUID, ...]
    document_types: tuple[DocumentType, ...]
    start: datetime
    expiry: datetime
    data_life: timedelta
    max_fetches: int
    frequency: Frequency
    created_at: datetime
    approved_at: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, uuid.UUID):
            raise InvalidArgument("the artefact id must be a UUID")
        _check_ref(self.subject, "subject")
        if ID_NUMBER.fullmatch(self.subject):
            raise InvalidArgument("subject must be the citizen's pseudonymous reference, never an ID number")
        _check_ref(self.client_id, "client_id")
        catalog_purpose(self.purpose)
        if not 0 < len(self.purpose_text.strip()) <= MAX_PURPOSE_TEXT:
            raise InvalidArgument(f"purpose_text must be 1..{MAX_PURPOSE_TEXT} characters")
        _check_unicode(self.purpose_text, "purpose_text")
        self._normalise_grant()
        for name in ("start", "expiry", "created_at", "approved_at"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _utc_seconds(value, name))
        self._check_times()
        if not _is_int(self.max_fetches) or not 1 <= self.max_fetches <= MAX_FETCHES:
            raise InvalidArgument(f"max_fetches must be 1..{MAX_FETCHES}")
        if not isinstance(self.frequency, Frequency):
            raise InvalidArgument("frequency must be a Frequency")
        if self.frequency.count > self.max_fetches:
            raise InvalidArgument("the frequency count cannot exceed max_fetches")

    def _normalise_grant(self) -> None:
        documents, types = tuple(self.documents), tuple(self.document_types)
        if not documents and not types:
            raise InvalidArgument("a consent grants at least one document or document type")
        if not all(isinstance(d, uuid.UUID) for d in documents):
            raise InvalidArgument("documents must be UUIDs")
        if not all(isinstance(t, DocumentType) for t in types):
            raise InvalidArgument("document_types must be catalog document types")
        if len(set(documents)) != len(documents) or len(set(types)) != len(types):
            raise InvalidArgument("documents and document_types must not repeat")
        if len(documents) > MAX_DOCUMENTS:
            raise InvalidArgument(f"a consent names at most {MAX_DOCUMENTS} documents")
        object.__setattr__(self, "documents", tuple(sorted(documents, key=str)))
        object.__setattr__(self, "document_types", tuple(sorted(types, key=lambda t: t.value)))

    def _check_times(self) -> None:
        if self.expiry <= self.start:
            raise InvalidArgument("expiry must be after start")
        if self.expiry - self.start > MAX_VALIDITY:
            raise InvalidArgument(f"a consent lasts at most {MAX_VALIDITY.days} days")
        if self.start < self.created_at:
            raise InvalidArgument("start must not be before the artefact was created")
        if self.start - self.created_at > MAX_START_DELAY:
            raise InvalidArgument(f"start must be within {MAX_START_DELAY.days} days of the request")
        if self.approved_at is not None and not self.created_at <= self.approved_at < self.expiry:
            raise InvalidArgument("approved_at must be between creation and expiry")
        if not isinstance(self.data_life, timedelta) or self.data_life.microseconds:
            raise InvalidArgument("data_life must be a whole number of seconds")
        if not timedelta(0) <= self.data_life <= MAX_DATA_LIFE:
            raise InvalidArgument(f"data_life must be 0..{MAX_DATA_LIFE.days} days")

    def approved(self, at: datetime) -> ConsentArtefact:
        """The same grant, approved by the citizen at ``at`` (what the platform signs)."""
        if self.approved_at is not None:
            raise FailedPrecondition("the artefact is approved already")
        return _replace(self, approved_at=at)

    def covers(self, document_id: uuid.UUID, document_type: DocumentType) -> bool:
        """Whether the grant names this document, by its id or by its type."""
        return document_id in self.documents or document_type in self.document_types


def draft(
    *,
    subject: str,
    client_id: str,
    purpose: str,
    documents: tuple[uuid.UUID, ...] = (),
    document_types: tuple[DocumentType, ...] = (),
    start: datetime,
    expiry: datetime,
    data_life: timedelta,
    max_fetches: int,
    frequency: Frequency,
    now: datetime,
) -> ConsentArtefact:
    """A new PENDING artefact: a fresh id, the catalog's Vietnamese text, instants cut to whole seconds."""
    return ConsentArtefact(
        id=uuid.uuid4(),
        subject=subject,
        client_id=client_id,
        purpose=purpose,
        purpose_text=catalog_purpose(purpose).text_vi,
        documents=documents,
        document_types=document_types,
        start=_whole_seconds(start),
        expiry=_whole_seconds(expiry),
        data_life=data_life,
        max_fetches=max_fetches,
        frequency=frequency,
        created_at=_whole_seconds(now),
    )


def _whole_seconds(instant: datetime) -> datetime:
    return instant.replace(microsecond=0) if isinstance(instant, datetime) else instant


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _replace(artefact: ConsentArtefact, **changes: Any) -> ConsentArtefact:
    fields = {name: getattr(artefact, name) for name in ConsentArtefact.__dataclass_fields__}
    return ConsentArtefact(**(fields | changes))


def _check_ref(value: Any, name: str) -> None:
    if not isinstance(value, str) or not REF.fullmatch(value):
        raise InvalidArgument(f"{name} must be 1..{MAX_REF} printable ASCII characters")


def _check_unicode(value: str, name: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"{name} must be valid Unicode text") from None


def _utc_seconds(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgument(f"{name} must be a timezone-aware datetime")
    if value.microsecond:
        raise InvalidArgument(f"{name} must be whole seconds (RFC 3339 without fractions)")
    return value.astimezone(UTC)


def rfc3339(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime(RFC3339)


def parse_rfc3339(text: Any, name: str) -> datetime:
    if not isinstance(text, str):
        raise InvalidArgument(f"{name} must be an RFC 3339 UTC string")
    try:
        return datetime.strptime(text, RFC3339).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidArgument(f"{name} must look like 2026-12-01T10:00:00Z") from None


def to_json_value(artefact: ConsentArtefact) -> dict[str, Any]:
    """The artefact as JSON values within the canonical value space (strings, integers, arrays, objects)."""
    value: dict[str, Any] = {
        "v": VERSION,
        "id": str(artefact.id),
        "subject": artefact.subject,
        "client_id": artefact.client_id,
        "purpose": {"code": artefact.purpose, "text": artefact.purpose_text},
        "documents": [str(document) for document in artefact.documents],
        "document_types": [document_type.value for document_type in artefact.document_types],
        "start": rfc3339(artefact.start),
        "expiry": rfc3339(artefact.expiry),
        "data_life_seconds": int(artefact.data_life.total_seconds()),
        "max_fetches": artefact.max_fetches,
        "frequency": {"count": artefact.frequency.count, "unit": artefact.frequency.unit.value},
        "created_at": rfc3339(artefact.created_at),
    }
    if artefact.approved_at is not None:
        value["approved_at"] = rfc3339(artefact.approved_at)
    return value


def canonical(artefact: ConsentArtefact) -> bytes:
    """The canonical JSON bytes (see the module docstring: RFC 8785-compatible for this value space)."""
    return canonical_json(to_json_value(artefact))


def canonical_json(value: Any) -> bytes:
    _check_value_space(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _check_value_space(value: Any) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise InvalidArgument("canonical JSON holds strings, integers, arrays and objects only")
    if isinstance(value, int):
        if not 0 <= value <= MAX_SAFE_INTEGER:
            raise InvalidArgument("canonical JSON integers are 0..2**53-1")
    elif isinstance(value, str):
        _check_unicode(value, "a string")
    elif isinstance(value, list):
        for item in value:
            _check_value_space(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise InvalidArgument("canonical JSON keys are ASCII strings")
            _check_value_space(item)
    else:
        raise InvalidArgument(f"canonical JSON cannot hold a {type(value).__name__}")


def from_json_value(value: Any) -> ConsentArtefact:
    """Parse an artefact's JSON value back (INVALID_ARGUMENT when a member is missing or malformed)."""
    if not isinstance(value, dict) or value.get("v") != VERSION:
        raise InvalidArgument(f"not a version {VERSION} consent artefact")
    try:
        purpose, frequency = value["purpose"], value["frequency"]
        return ConsentArtefact(
            id=uuid.UUID(value["id"]),
            subject=value["subject"],
            client_id=value["client_id"],
            purpose=purpose["code"],
            purpose_text=purpose["text"],
            documents=tuple(uuid.UUID(document) for document in value["documents"]),
            document_types=tuple(DocumentType(document_type) for document_type in value["document_types"]),
            start=parse_rfc3339(value["start"], "start"),
            expiry=parse_rfc3339(value["expiry"], "expiry"),
            data_life=timedelta(seconds=value["data_life_seconds"]),
            max_fetches=value["max_fetches"],
            frequency=Frequency(frequency["count"], FrequencyUnit(frequency["unit"])),
            created_at=parse_rfc3339(value["created_at"], "created_at"),
            approved_at=parse_rfc3339(value["approved_at"], "approved_at") if "approved_at" in value else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InvalidArgument(f"malformed consent artefact ({type(error).__name__})") from None


class BadArtefactSignature(InvalidArgument):
    """A presented artefact JWS does not verify (a store reading its own would report DATA_LOSS instead)."""


def sign(artefact: ConsentArtefact, key: ECKey) -> str:
    """The platform's JWS over the approved artefact's canonical JSON (compact serialization)."""
    if artefact.approved_at is None:
        raise FailedPrecondition("only an approved artefact is signed")
    if not isinstance(key, ECKey) or not key.is_private or key.curve_name != "P-256":
        raise InvalidArgument("an artefact is signed with a private P-256 key (ES256)")
    header = {"alg": ALGORITHM, "typ": TYPE}
    if key.kid:
        header["kid"] = key.kid
    return jws.serialize_compact(header, canonical(artefact), key, algorithms=[ALGORITHM])


def verify(token: str | bytes, key: ECKey) -> ConsentArtefact:
    """The artefact a JWS signs, after checking the signature, the header and that the payload is canonical."""
    try:
        signed = jws.deserialize_compact(token, key, algorithms=[ALGORITHM])
    except (JoseError, ValueError, TypeError) as error:
        raise BadArtefactSignature(f"the consent artefact signature does not verify ({type(error).__name__})") from None
    header = signed.headers()
    if header.get("typ") != TYPE:
        raise BadArtefactSignature(f"a consent artefact JWS has typ {TYPE}")
    if key.kid and header.get("kid") != key.kid:
        raise BadArtefactSignature("the consent artefact was signed under another key id")
    try:
        value = json.loads(signed.payload)
    except (ValueError, UnicodeDecodeError):
        raise BadArtefactSignature("the consent artefact payload is not JSON") from None
    artefact = from_json_value(value)
    if canonical(artefact) != signed.payload:
        raise BadArtefactSignature("the consent artefact payload is not in canonical form")
    if artefact.approved_at is None:
        raise BadArtefactSignature("a signed consent artefact is an approved one")
    return artefact
