"""Leaves are canonical JSON of an allowlist: no personal data in clear, whatever a writer put in the detail."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from audit.events import Pseudonymizer
from audit.leaves import LeafBuilder, SourceEvent

REF = "0123456789abcdef0123456789abcdef"


def _event(**changes: object) -> SourceEvent:
    base: dict[str, object] = {
        "event_id": 7, "at": datetime(2026, 12, 1, 11, 30, 17, 123456, tzinfo=UTC), "actor": "service:portal",
        "action": "vault.download", "outcome": "success", "subject": REF,
        "detail": {"document": "0f6c3b9e-1d2a-4c5b-9e8f-7a6b5c4d3e2f", "version": 2, "client_id": "portal-1a2b"},
    }  # fmt: skip
    base.update(changes)
    return SourceEvent(**base)  # type: ignore[arg-type]


def test_leaf_is_canonical_json_of_the_fixed_keys() -> None:
    leaf = LeafBuilder(Pseudonymizer(b"k" * 32)).leaf(_event())
    assert leaf == (
        b'{"action":"vault.download","actor":"service:portal","client_id":"portal-1a2b",'
        b'"document_id":"0f6c3b9e-1d2a-4c5b-9e8f-7a6b5c4d3e2f","outcome":"success",'
        b'"subject":"0123456789abcdef0123456789abcdef","time":"2026-12-01T11:30:17.123456Z","v":1,"version":2}'
    )


def test_personal_data_never_reaches_a_leaf() -> None:
    builder = LeafBuilder(Pseudonymizer(b"k" * 32))
    detail = {
        "title": "Giấy khai sinh Nguyễn Văn An",
        "id_number": "001099012345",
        "reason": "id 001099012345",
        "name": "Nguyễn Văn An",
        "purpose": "EMPLOYMENT_BACKGROUND_CHECK",
        "level": 2,
        "nested": {"a": 1},
    }
    leaf = builder.leaf(_event(actor="operator:Nguyễn Văn An", subject="001099012345", detail=detail))
    value = json.loads(leaf)
    assert "001099012345" not in leaf.decode()
    assert "Nguyễn" not in leaf.decode()
    assert value["purpose"] == "EMPLOYMENT_BACKGROUND_CHECK"
    assert value["level"] == 2
    assert "subject" not in value
    assert "reason" not in value
    assert "title" not in value
    assert value["actor"].startswith("operator:")
    assert len(value["actor"]) == len("operator:") + 16
    assert builder.leaf(_event(actor="agency:so-ldtbxh"))  # agencies by client id, verbatim
    assert json.loads(builder.leaf(_event(actor="agency:so-ldtbxh")))["actor"] == "agency:so-ldtbxh"


def test_client_ids_and_references_pass_numbers_do_not() -> None:
    builder = LeafBuilder(Pseudonymizer(b"k" * 32))
    detail = {"client_id": "portal-8181983990e06d1b", "consent_id": "0f6c3b9e-1d2a-4c5b-9e8f-7a6b5c4d3e2f",
              "reason": "phone 0912345678", "purpose": "HEALTH_INSURANCE_CLAIM"}  # fmt: skip
    value = json.loads(builder.leaf(_event(detail=detail)))
    assert value["client_id"] == "portal-8181983990e06d1b"
    assert value["consent_id"] == detail["consent_id"]
    assert "reason" not in value
