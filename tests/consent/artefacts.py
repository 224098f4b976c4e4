"""Artefacts for the consent tests: one valid grant, varied by keyword."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from consent.artefact import ConsentArtefact, Frequency, FrequencyUnit
from consent.purposes import CATALOG
from vault.documents import DocumentType

CREATED = datetime(2026, 12, 1, 3, 0, 0, tzinfo=UTC)  # 10:00 in Hà Nội
START = CREATED + timedelta(hours=1)
EXPIRY = START + timedelta(days=30)
DOCUMENT = uuid.UUID("0b5e4a7e-5f0c-4c1e-9a55-3c1f2f1d9e01")
OTHER_DOCUMENT = uuid.UUID("7d2f0a3c-1b6e-4f8a-8c3d-2e9b5a4c6f02")
SUBJECT = "c1t1zen-ref-9f86d081884c7d65"
AGENCY = "agency-ubnd-ba-dinh"


def artefact(**changes: Any) -> ConsentArtefact:
    fields: dict[str, Any] = {
        "id": uuid.UUID("5a1f9c2e-8d3b-4e6f-a0b1-c2d3e4f5a6b7"),
        "subject": SUBJECT,
        "client_id": AGENCY,
        "purpose": "PUBLIC_SERVICE_DOSSIER",
        "purpose_text": CATALOG["PUBLIC_SERVICE_DOSSIER"].text_vi,
        "documents": (DOCUMENT,),
        "document_types": (DocumentType.BIRTH_CERTIFICATE,),
        "start": START,
        "expiry": EXPIRY,
        "data_life": timedelta(days=90),
        "max_fetches": 10,
        "frequency": Frequency(3, FrequencyUnit.DAY),
        "created_at": CREATED,
        "approved_at": CREATED + timedelta(minutes=5),
    }
    return ConsentArtefact(**(fields | changes))
