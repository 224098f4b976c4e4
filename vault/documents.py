"""What the vault keeps: the document-type catalog, a document's metadata, and the vault's own errors."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from core.errors import DomainError, InvalidArgument, NotFound

MAX_TITLE = 200
MAX_FILENAME = 255


class DocumentType(enum.Enum):
    """The catalog of papers a citizen keeps (values are stored in PostgreSQL)."""

    CITIZEN_ID_CARD = "citizen_id_card"
    BIRTH_CERTIFICATE = "birth_certificate"
    RESIDENCE_CONFIRMATION = "residence_confirmation"
    DIPLOMA = "diploma"
    CRIMINAL_RECORD_CERTIFICATE = "criminal_record_certificate"
    HEALTH_BOOK = "health_book"
    OTHER = "other"


class TooLarge(DomainError):
    """The document is larger than the vault accepts (``RESOURCE_EXHAUSTED``)."""


class Corrupt(DomainError):
    """A stored object failed authentication or its checksum (``DATA_LOSS``): never shown as valid."""


@dataclass(frozen=True, slots=True)
class Upload:
    """The metadata a citizen sends before the content."""

    document_type: DocumentType
    title: str
    filename: str

    def __post_init__(self) -> None:
        if not 0 < len(self.title.strip()) <= MAX_TITLE:
            raise InvalidArgument(f"the title must be 1..{MAX_TITLE} characters")
        name = self.filename
        if not 0 < len(name) <= MAX_FILENAME or "/" in name or "\\" in name or "\0" in name or name in (".", ".."):
            raise InvalidArgument(f"the filename must be 1..{MAX_FILENAME} characters without path separators")


@dataclass(frozen=True, slots=True)
class Document:
    """One stored document's metadata (never its owner's ID number)."""

    id: uuid.UUID
    document_type: DocumentType
    title: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: bytes
    created_at: datetime


def parse_id(text: str) -> uuid.UUID:
    """A document id from a request; a malformed one is simply not found."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound("no such document") from None
