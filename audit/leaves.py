"""The transparency log's leaves: one audit event as public, pseudonymous canonical JSON (issue 10 item 6).

Leaves are published (C2SP tlog-tiles entry bundles, served at the edge), so a leaf holds only what may be
public: a fixed set of keys, never an ID number, a name or a document title. The bytes are canonical JSON
(sorted keys, no whitespace, UTF-8, strings and integers only: RFC 8785's output for this value space,
``consent.artefact.canonical_json``)::

    {"action": "vault.download", "actor": "service:portal", "client_id": "portal-1a2b",
     "document_id": "0f6c…", "outcome": "success", "subject": "9b1e…", "time": "2026-12-01T11:30:17.123456Z",
     "v": 1, "version": 2}

- ``v`` (1), ``time`` (the event's commit-side timestamp, RFC 3339 UTC with microseconds), ``action``,
  ``outcome``: always.
- ``actor``: a platform service or an agency as named by its certificate (``service:edge``,
  ``agency:<client_id>``); any other kind (operators) as ``<kind>:<keyed reference>``, never a person's name.
- ``subject``: the event's subject, already a keyed pseudonym (``audit.events.Pseudonymizer``: 32 hex digits),
  when it has one (anything else is left out).
- From the event's detail, only the keys of ``DETAIL_KEYS`` (``document`` is written ``document_id``), only
  string values that are hex references, client ids (``portal-<16 hex>``) or UUIDs, or at most 128 printable
  characters without a standalone number of 9 or more digits (an ID number has 12, a phone number 10), and
  integers 0..2**53-1. Everything else is left out.

A crypto-shredded citizen's leaves stay as they are: nothing in them depended on the shredded keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from audit.events import Pseudonymizer
from consent.artefact import canonical_json

VERSION = 1
DETAIL_KEYS = frozenset(
    {
        "consent_id",
        "client_id",
        "purpose",
        "document_id",
        "version",
        "reason",
        "level",
        "state",
        "from_state",
        "to_state",
        "event",
        "fetch_type",
        "retry_after",
        "factor",  # a sign-in event's factor ("pwd", "otp", ...) and source ("device-<16 hex>", a per-citizen
        "source",  # keyed reference): the citizen's sign-in history (issue 13 §5, identity/service.py)
    }
)
RENAMED = {"document": "document_id"}
VERBATIM_ACTORS = ("service", "agency")
MAX_TEXT = 128
MAX_INT = 2**53 - 1
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9]{9,}(?![0-9A-Za-z])")  # a standalone number: an ID or phone
_HEX_REF = re.compile(
    r"[0-9a-f]{32,64}\Z|[a-z]{1,16}-[0-9a-f]{16}\Z|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z"
)


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """What the sequencer reads of one ``audit.events`` row."""

    event_id: int
    at: datetime
    actor: str
    action: str
    outcome: str
    subject: str | None
    detail: dict[str, Any]


def rfc3339_micro(instant: datetime) -> str:
    """RFC 3339 §5.6 in UTC with microseconds and ``Z``: ``2026-12-01T11:30:17.123456Z``."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _safe_text(value: str) -> bool:
    """Short printable text with no run of 9+ digits, or a hex reference / UUID (keyed hashes, random ids)."""
    if _HEX_REF.match(value):
        return True
    return len(value) <= MAX_TEXT and value.isprintable() and not _DIGIT_RUN.search(value)


def _public_value(value: Any) -> str | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_INT else None
    if isinstance(value, str):
        return value if _safe_text(value) else None
    return None


class LeafBuilder:
    """Turns audit events into leaf bytes; ``refs`` names non-platform actors by a keyed reference."""

    def __init__(self, refs: Pseudonymizer) -> None:
        self._refs = refs

    def actor(self, actor: str) -> str:
        kind, _, name = actor.partition(":")
        if kind in VERBATIM_ACTORS and name and _safe_text(actor):
            return actor
        return f"{kind if kind.isalnum() else 'unknown'}:{self._refs.ref(actor)[:16]}"

    def leaf(self, event: SourceEvent) -> bytes:
        value: dict[str, Any] = {
            "v": VERSION,
            "time": rfc3339_micro(event.at),
            "actor": self.actor(event.actor),
            "action": event.action if _safe_text(event.action) else "unknown",
            "outcome": event.outcome if _safe_text(event.outcome) else "unknown",
        }
        if event.subject and _HEX_REF.match(event.subject):
            value["subject"] = event.subject
        for key, raw in (event.detail or {}).items():
            name = RENAMED.get(key, key)
            if name not in DETAIL_KEYS or name in value:
                continue
            public = _public_value(raw)
            if public is not None:
                value[name] = public
        return canonical_json(value)
