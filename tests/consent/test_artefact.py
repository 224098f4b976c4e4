"""consent.artefact: validation, canonical JSON (RFC 8785-compatible value space) and the platform's JWS."""

from __future__ import annotations

import base64
import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from consent.artefact import (
    TYPE,
    BadArtefactSignature,
    Frequency,
    FrequencyUnit,
    canonical,
    canonical_json,
    draft,
    from_json_value,
    sign,
    to_json_value,
    verify,
)
from consent.purposes import CATALOG
from core.errors import FailedPrecondition, InvalidArgument
from tests.consent.artefacts import AGENCY, CREATED, DOCUMENT, EXPIRY, OTHER_DOCUMENT, START, SUBJECT, artefact
from vault.documents import DocumentType

KEY = ECKey.generate_key("P-256", parameters={"kid": "platform-consent-1"})
OTHER_KEY = ECKey.generate_key("P-256", parameters={"kid": "platform-consent-1"})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"expiry": START}, "expiry must be after start"),
        ({"expiry": START - timedelta(seconds=1)}, "expiry must be after start"),
        ({"expiry": START + timedelta(days=367)}, "at most 366 days"),
        ({"start": CREATED - timedelta(seconds=1)}, "before the artefact was created"),
        ({"start": CREATED + timedelta(days=91), "expiry": CREATED + timedelta(days=92)}, "within 90 days"),
        ({"data_life": timedelta(days=5 * 365 + 1)}, "data_life must be"),
        ({"data_life": timedelta(seconds=-1)}, "data_life must be"),
        ({"data_life": timedelta(seconds=1.5)}, "whole number of seconds"),
        ({"documents": (), "document_types": ()}, "at least one document"),
        ({"documents": (DOCUMENT, DOCUMENT)}, "must not repeat"),
        ({"documents": tuple(uuid.uuid4() for _ in range(101))}, "at most 100 documents"),
        ({"documents": ("not-a-uuid",)}, "must be UUIDs"),
        ({"document_types": ("diploma",)}, "catalog document types"),
        ({"max_fetches": 0}, "max_fetches must be"),
        ({"max_fetches": 1001}, "max_fetches must be"),
        ({"max_fetches": True}, "max_fetches must be"),
        ({"max_fetches": 2}, "cannot exceed max_fetches"),
        ({"purpose": "SELLING_DATA"}, "unknown purpose"),
        ({"purpose_text": "  "}, "purpose_text must be"),
        ({"purpose_text": "bad \ud800 surrogate"}, "valid Unicode"),
        ({"subject": "079203004512"}, "never an ID number"),
        ({"subject": ""}, "subject must be"),
        ({"subject": "has space"}, "subject must be"),
        ({"client_id": "x" * 129}, "client_id must be"),
        ({"start": START.replace(tzinfo=None)}, "timezone-aware"),
        ({"start": START.replace(microsecond=5)}, "whole seconds"),
        ({"approved_at": CREATED - timedelta(seconds=1)}, "approved_at must be"),
        ({"approved_at": EXPIRY}, "approved_at must be"),
        ({"id": "5a1f9c2e-8d3b-4e6f-a0b1-c2d3e4f5a6b7"}, "must be a UUID"),
    ],
)
def test_invalid_artefacts_are_refused_with_the_rule(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        artefact(**changes)


@pytest.mark.parametrize(
    ("count", "unit", "message"),
    [(0, FrequencyUnit.DAY, "count must be"), (101, FrequencyUnit.HOUR, "count must be"), (1, "DAY", "unit must")],
)
def test_a_frequency_is_sane(count: int, unit: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        Frequency(count, unit)


def test_bounds_themselves_are_accepted() -> None:
    artefact(expiry=START + timedelta(days=366), data_life=timedelta(0), max_fetches=3, approved_at=None)
    artefact(start=CREATED, documents=(), data_life=timedelta(days=5 * 365), max_fetches=1000)
    artefact(document_types=(), frequency=Frequency(1, FrequencyUnit.MONTH), max_fetches=1)


def test_an_artefact_is_immutable_and_its_lists_are_sets() -> None:
    one = artefact(
        documents=(OTHER_DOCUMENT, DOCUMENT), document_types=(DocumentType.DIPLOMA, DocumentType.BIRTH_CERTIFICATE)
    )
    two = artefact(
        documents=(DOCUMENT, OTHER_DOCUMENT), document_types=(DocumentType.BIRTH_CERTIFICATE, DocumentType.DIPLOMA)
    )
    assert one == two
    assert canonical(one) == canonical(two)
    with pytest.raises(AttributeError):
        one.max_fetches = 1000  # type: ignore[misc]


def test_instants_are_kept_in_utc() -> None:
    hanoi = timezone(timedelta(hours=7))
    local = artefact(start=START.astimezone(hanoi), expiry=EXPIRY.astimezone(hanoi))
    assert local.start.tzinfo is UTC
    assert canonical(local) == canonical(artefact())


def test_canonical_json_is_stable_sorted_and_compact() -> None:
    data = canonical(artefact())
    assert data == canonical(artefact()), "same artefact, same bytes"
    assert b" " not in data.replace(CATALOG["PUBLIC_SERVICE_DOSSIER"].text_vi.encode(), b"")
    assert b"\n" not in data
    value = json.loads(data)
    assert list(value) == sorted(value)
    assert list(value["purpose"]) == ["code", "text"]
    assert value["start"] == "2026-12-01T04:00:00Z"
    assert value["data_life_seconds"] == 90 * 86400
    assert value["documents"] == [str(DOCUMENT)]
    assert value["frequency"] == {"count": 3, "unit": "DAY"}
    assert "approved_at" not in json.loads(canonical(artefact(approved_at=None))), "absent, never null"
    assert data.startswith(b'{"approved_at":"2026-12-01T03:05:00Z","client_id":"agency-ubnd-ba-dinh",')


def test_canonical_json_does_not_depend_on_key_order() -> None:
    value = to_json_value(artefact())
    for seed in range(5):
        items = list(value.items())
        random.Random(seed).shuffle(items)
        shuffled = dict(items)
        assert list(shuffled) != list(value)
        assert canonical_json(shuffled) == canonical(artefact())
        assert canonical(from_json_value(shuffled)) == canonical(artefact())


def test_vietnamese_text_is_kept_as_utf8_not_escaped() -> None:
    text = CATALOG["PUBLIC_SERVICE_DOSSIER"].text_vi
    data = canonical(artefact())
    assert text.encode("utf-8") in data
    assert b"\\u" not in data
    assert from_json_value(json.loads(data)).purpose_text == "Giải quyết hồ sơ thủ tục hành chính, dịch vụ công"


def test_canonical_strings_escape_as_rfc8785() -> None:
    # RFC 8785 §3.2.2.2 (ECMAScript JSON.stringify): short escapes, lowercase \u00xx for other controls,
    # everything else (non-ASCII, U+2028, DEL, "/") as itself.
    assert canonical_json({"s": '\b\f\n\r\t\x0f\x1f"\\/\x7f\u2028€'}) == (
        '{"s":"\\b\\f\\n\\r\\t\\u000f\\u001f\\"\\\\/\x7f\u2028€"}'.encode()
    )
    assert canonical_json({"b": [2, 10, 9007199254740991], "a": {"z": "", "y": "Đ"}}) == (
        '{"a":{"y":"Đ","z":""},"b":[2,10,9007199254740991]}'.encode()
    )


@pytest.mark.parametrize("value", [1.5, True, None, -1, 2**53, "\udc00", {1: "x"}, {"ký": "x"}, b"x"])
def test_canonical_json_refuses_values_outside_its_space(value: Any) -> None:
    with pytest.raises(InvalidArgument):
        canonical_json({"k": value} if not isinstance(value, dict) else value)


def test_json_value_round_trips() -> None:
    for one in (artefact(), artefact(approved_at=None), artefact(documents=())):
        assert from_json_value(json.loads(canonical(one))) == one


@pytest.mark.parametrize(
    "break_it",
    [
        lambda v: v.pop("subject"),
        lambda v: v.update(v=2),
        lambda v: v.update(start="2026-12-01 04:00:00"),
        lambda v: v.update(documents=["nope"]),
        lambda v: v.update(document_types=["passport"]),
        lambda v: v.update(frequency={"count": 3, "unit": "WEEK"}),
        lambda v: v.update(purpose="PUBLIC_SERVICE_DOSSIER"),
    ],
)
def test_malformed_json_values_are_invalid_arguments(break_it: Any) -> None:
    value = to_json_value(artefact())
    break_it(value)
    with pytest.raises(InvalidArgument):
        from_json_value(value)


def test_draft_fills_the_catalog_text_and_cuts_to_seconds() -> None:
    now = datetime(2026, 12, 1, 3, 0, 0, 654321, tzinfo=UTC)
    new = draft(
        subject=SUBJECT,
        client_id=AGENCY,
        purpose="BANK_KYC",
        document_types=(DocumentType.CITIZEN_ID_CARD,),
        start=now,
        expiry=now + timedelta(days=7),
        data_life=timedelta(days=30),
        max_fetches=1,
        frequency=Frequency(1, FrequencyUnit.DAY),
        now=now,
    )
    assert new.purpose_text == CATALOG["BANK_KYC"].text_vi
    assert new.created_at == new.start == now.replace(microsecond=0)
    assert new.approved_at is None
    assert new.id != draft(**{**_draft_args(new), "now": now}).id, "a fresh id each time"


def _draft_args(new: Any) -> dict[str, Any]:
    return {
        "subject": new.subject,
        "client_id": new.client_id,
        "purpose": new.purpose,
        "document_types": new.document_types,
        "start": new.start,
        "expiry": new.expiry,
        "data_life": new.data_life,
        "max_fetches": new.max_fetches,
        "frequency": new.frequency,
    }


def test_approval_sets_the_time_once() -> None:
    pending = artefact(approved_at=None)
    at = CREATED + timedelta(minutes=7)
    approved = pending.approved(at)
    assert approved.approved_at == at
    assert approved == artefact(approved_at=at)
    with pytest.raises(FailedPrecondition):
        approved.approved(at)


def test_sign_and_verify_round_trip() -> None:
    approved = artefact()
    token = sign(approved, KEY)
    header = json.loads(_b64(token.split(".")[0]))
    assert header == {"alg": "ES256", "kid": "platform-consent-1", "typ": TYPE}
    assert _b64(token.split(".")[1]) == canonical(approved), "the payload is the canonical JSON itself"
    assert verify(token, ECKey.import_key(KEY.as_dict(private=False))) == approved, "the public key suffices"
    assert verify(token.encode(), KEY) == approved


def test_only_an_approved_artefact_is_signed_with_a_p256_private_key() -> None:
    with pytest.raises(FailedPrecondition):
        sign(artefact(approved_at=None), KEY)
    with pytest.raises(InvalidArgument):
        sign(artefact(), ECKey.import_key(KEY.as_dict(private=False)))
    with pytest.raises(InvalidArgument):
        sign(artefact(), ECKey.generate_key("P-384"))


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _e64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _tampered_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    value = json.loads(_b64(payload))
    value["max_fetches"] = 1000
    return ".".join((header, _e64(canonical_json(value)), signature))


def _tampered_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(_b64(signature))
    raw[5] ^= 1
    return ".".join((header, payload, _e64(bytes(raw))))


def _none_alg(token: str) -> str:
    _, payload, _ = token.split(".")
    return ".".join((_e64(b'{"alg":"none","typ":"consent-artefact+json"}'), payload, ""))


@pytest.mark.parametrize(
    "tamper",
    [_tampered_payload, _tampered_signature, _none_alg, lambda t: t[:-4], lambda t: "x" + t, lambda t: ""],
    ids=["payload", "signature", "alg-none", "truncated", "garbage", "empty"],
)
def test_a_tampered_jws_is_refused(tamper: Any) -> None:
    token = sign(artefact(), KEY)
    with pytest.raises(BadArtefactSignature):
        verify(tamper(token), KEY)


def test_another_key_does_not_verify() -> None:
    with pytest.raises(BadArtefactSignature, match="does not verify"):
        verify(sign(artefact(), KEY), OTHER_KEY)


def _signed(header: dict[str, Any], payload: bytes) -> str:
    return jws.serialize_compact(header, payload, KEY, algorithms=["ES256"])


def test_a_jws_of_another_type_or_key_id_is_refused() -> None:
    payload = canonical(artefact())
    with pytest.raises(BadArtefactSignature, match="typ"):
        verify(_signed({"alg": "ES256", "kid": KEY.kid, "typ": "JWT"}, payload), KEY)
    with pytest.raises(BadArtefactSignature, match="key id"):
        verify(_signed({"alg": "ES256", "kid": "old", "typ": TYPE}, payload), KEY)


def test_a_signed_but_not_canonical_or_unapproved_payload_is_refused() -> None:
    header = {"alg": "ES256", "kid": KEY.kid, "typ": TYPE}
    pretty = json.dumps(to_json_value(artefact()), indent=1, ensure_ascii=False).encode()
    with pytest.raises(BadArtefactSignature, match="canonical"):
        verify(_signed(header, pretty), KEY)
    with pytest.raises(BadArtefactSignature, match="approved"):
        verify(_signed(header, canonical(artefact(approved_at=None))), KEY)
    with pytest.raises(BadArtefactSignature, match="not JSON"):
        verify(_signed(header, b"\xff not json"), KEY)
    with pytest.raises(InvalidArgument, match="malformed"):
        verify(_signed(header, canonical_json({"v": 1})), KEY)


def _jcs(value: Any) -> str:
    """A naive RFC 8785 serializer for strings, integers, arrays and objects, written from the RFC's rules:
    members sorted by their names' UTF-16 code units (§3.2.3), strings escaped as ECMAScript's JSON.stringify
    (§3.2.2.2), integers as ECMAScript prints them (§3.2.2.3)."""
    if isinstance(value, dict):
        names = sorted(value, key=lambda name: name.encode("utf-16-be"))
        return "{" + ",".join(_jcs(name) + ":" + _jcs(value[name]) for name in names) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_jcs(item) for item in value) + "]"
    if isinstance(value, int):
        return str(value)
    short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return '"' + "".join(short.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 else c) for c in value) + '"'


def test_canonical_json_equals_a_naive_rfc8785_serializer() -> None:
    rng = random.Random(8785)
    alphabet = 'aZ09 _-/"\\\b\f\n\r\t\x00\x01\x1f\x7f\u2028\u00e9ĐđảẫỹươÀ€😀'
    for _ in range(300):
        value = {
            "".join(rng.choice("abcXYZ_09") for _ in range(rng.randint(1, 6))): rng.choice(
                [
                    "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))),
                    rng.randint(0, 2**53 - 1),
                    [rng.randint(0, 99), "Hà Nội"],
                    {"z": "ý", "A": 1},
                ]
            )
            for _ in range(rng.randint(1, 6))
        }
        assert canonical_json(value) == _jcs(value).encode("utf-8")
    for one in (artefact(), artefact(approved_at=None, documents=())):
        assert canonical(one) == _jcs(to_json_value(one)).encode("utf-8")
