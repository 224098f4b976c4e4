"""Rich authorization requests (RFC 9396) of type ``consent``: an agency names the consent artefact it holds.

The parameter (RFC 9396 §2, at the token endpoint §6) is a JSON array of objects, each with a ``type`` (§2.1).
The only type this platform knows is ``consent`` (advertised as ``authorization_details_types_supported``, §10):

    [{"type": "consent", "consent_id": "<artefact UUID>", "purpose": "<catalog code, optional>"}]

Exactly one ``consent`` detail per request: a token names one artefact, so that the vault checks one grant.
Anything else — not JSON, not an array, an unknown type, a missing or malformed ``consent_id``, a field this
type does not define, two consent details — is ``invalid_authorization_details`` (RFC 9396 §5, for the token
endpoint §8), as is a consent the agency may not have (``refusal``).

``refusal`` runs the one consent gate (``consent.fetch_policy.gate``: agency, purpose, status, window) and says
why in words that name no one else's data: an artefact of another agency is answered exactly as an unknown one.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authlib.oauth2.rfc6749.errors import OAuth2Error

from consent.fetch_policy import MESSAGES, Reason, gate
from consent.storage import StoredConsent

CONSENT = "consent"
TYPES_SUPPORTED = (CONSENT,)
MAX_LENGTH = 2048
PURPOSE = re.compile(r"[A-Z][A-Z0-9_]{2,63}")
FIELDS = frozenset({"type", "consent_id", "purpose"})
UNKNOWN = "unknown consent_id"  # also for another agency's artefact: it learns nothing of it


class InvalidAuthorizationDetails(OAuth2Error):  # type: ignore[misc]
    """RFC 9396 §5: ``invalid_authorization_details``, HTTP 400."""

    error = "invalid_authorization_details"
    status_code = 400


@dataclass(frozen=True)
class ConsentDetail:
    """The one ``consent`` detail of a token request; ``purpose`` None when the agency left it to the artefact."""

    consent_id: uuid.UUID
    purpose: str | None = None

    def granted(self, purpose: str) -> dict[str, str]:
        """The detail as the token and the token response carry it (RFC 9396 §7, §9.1): the artefact's purpose."""
        return {"type": CONSENT, "consent_id": str(self.consent_id), "purpose": purpose}


def parse(raw: str) -> ConsentDetail:
    """The ``authorization_details`` value of a token request, or ``InvalidAuthorizationDetails``."""
    if len(raw) > MAX_LENGTH:
        raise InvalidAuthorizationDetails(description=f"authorization_details is longer than {MAX_LENGTH} characters")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        raise InvalidAuthorizationDetails(description="authorization_details must be a JSON array") from None
    if not isinstance(value, list) or not value:
        raise InvalidAuthorizationDetails(description="authorization_details must be a non-empty JSON array")
    if not all(isinstance(d, dict) and isinstance(d.get("type"), str) for d in value):
        raise InvalidAuthorizationDetails(description="each authorization detail must be an object with a type")
    unknown = [d["type"] for d in value if d["type"] not in TYPES_SUPPORTED]
    if unknown:
        raise InvalidAuthorizationDetails(description="unknown authorization details type; supported: consent")
    if len(value) != 1:
        raise InvalidAuthorizationDetails(description="a token names exactly one consent")
    detail: dict[str, Any] = value[0]
    if set(detail) - FIELDS:
        raise InvalidAuthorizationDetails(description="a consent detail has only type, consent_id and purpose")
    consent_id = detail.get("consent_id")
    if not isinstance(consent_id, str):
        raise InvalidAuthorizationDetails(description="the consent detail needs a consent_id")
    try:
        parsed = uuid.UUID(consent_id)
    except ValueError:
        raise InvalidAuthorizationDetails(description="consent_id must be a UUID") from None
    purpose = detail.get("purpose")
    if purpose is not None and (not isinstance(purpose, str) or not PURPOSE.fullmatch(purpose)):
        raise InvalidAuthorizationDetails(description="purpose must be a purpose code of the catalog")
    return ConsentDetail(parsed, purpose)


def refusal(detail: ConsentDetail, stored: StoredConsent | None, client_id: str, now: datetime) -> str | None:
    """Why ``client_id`` may not have a token for this consent now, or None: the consent gate
    (``consent.fetch_policy.gate``); unknown and not this agency's read the same."""
    if stored is None:
        return UNKNOWN
    artefact = stored.artefact
    denied = gate(artefact, stored.status, client_id, detail.purpose or artefact.purpose, now)
    if denied is None:
        return None
    if denied.reason is Reason.WRONG_AGENCY:
        return UNKNOWN
    return f"{denied.reason.value}: {MESSAGES[denied.reason]}"
