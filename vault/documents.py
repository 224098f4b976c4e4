"""What the vault keeps: the document-type catalog, a document's metadata, and the vault's own errors."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from core.errors import DataLoss, InvalidArgument, NotFound, ResourceExhausted
from vault.crypto.keys import WrappedDataKey

MAX_TITLE = 200
MAX_FILENAME = 255
MAX_ISSUER_DOCUMENT_ID = 200
MAX_SIGNATURE = 16 * 1024
UPLOADED = "uploaded"
ISSUED = "issued"


class DocumentType(enum.Enum):
    """The catalog of papers a citizen keeps (values are stored in PostgreSQL)."""

    CITIZEN_ID_CARD = "citizen_id_card"
    BIRTH_CERTIFICATE = "birth_certificate"
    RESIDENCE_CONFIRMATION = "residence_confirmation"
    DIPLOMA = "diploma"
    CRIMINAL_RECORD_CERTIFICATE = "criminal_record_certificate"
    HEALTH_BOOK = "health_book"
    OTHER = "other"


class TooLarge(ResourceExhausted):
    """The document is larger than the vault accepts (``RESOURCE_EXHAUSTED``)."""


class Corrupt(DataLoss):
    """A stored object failed authentication or its checksum (``DATA_LOSS``): never shown as valid."""


@dataclass(frozen=True, slots=True)
class UploadEnd:
    """The last item of every upload stream: what the client says it sent. A stream without it was cut short
    (a cancelled gRPC call ends a server's request stream just like a complete one)."""

    size_bytes: int
    sha256: bytes = b""  # optional

    def __post_init__(self) -> None:
        if self.sha256 and len(self.sha256) != 32:
            raise InvalidArgument("the end message's sha256 must be 32 bytes")


@dataclass(frozen=True, slots=True)
class Upload:
    """The metadata a citizen sends before the content."""

    document_type: DocumentType
    title: str
    filename: str
    replaces: uuid.UUID | None = None  # a new version of this (logical) document
    issuer_name: str = ""  # who issued the paper, as the citizen states it (an agency's delivery: its name)
    issued_on: date | None = None
    expires_on: date | None = None

    def __post_init__(self) -> None:
        if not 0 < len(self.title.strip()) <= MAX_TITLE:
            raise InvalidArgument(f"the title must be 1..{MAX_TITLE} characters")
        if len(self.issuer_name) > MAX_TITLE:
            raise InvalidArgument(f"issuer_name must be at most {MAX_TITLE} characters")
        if self.issued_on and self.expires_on and self.expires_on < self.issued_on:
            raise InvalidArgument("expires_on must not be before issued_on")
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
    version: int = 1
    row_id: uuid.UUID | None = None  # this version's own id (its data key and object); ``id`` is the document's
    source: str = UPLOADED
    issuer_client_id: str = ""
    issuer_document_id: str = ""
    issuer_signature: bytes = b""
    issuer_name: str = ""
    issued_on: date | None = None
    expires_on: date | None = None
    shredded: bool = False  # the owner's KEK was destroyed: the content is gone for good
    # As stored: title, filename and issuer name sealed under the data key (vault.crypto.names), and that key
    # wrapped under the owner's KEK; the use cases open them and clear both before a document leaves the vault.
    sealed_names: bytes = field(default=b"", repr=False, compare=False)
    wrapped_key: WrappedDataKey | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Issued:
    """What an agency says about a document it delivers into a citizen's vault."""

    issuer_client_id: str
    issuer_document_id: str
    signature: bytes

    def __post_init__(self) -> None:
        if not 0 < len(self.issuer_document_id) <= MAX_ISSUER_DOCUMENT_ID:
            raise InvalidArgument(f"issuer_document_id must be 1..{MAX_ISSUER_DOCUMENT_ID} characters")
        if len(self.signature) > MAX_SIGNATURE:
            raise InvalidArgument(f"issuer_signature must be at most {MAX_SIGNATURE} bytes")


def check_id_number(id_number: str) -> str:
    if len(id_number) != 12 or not id_number.isascii() or not id_number.isdigit():
        raise InvalidArgument("citizen_id_number must be 12 digits")
    return id_number


def parse_date(text: str, name: str) -> date | None:
    """An optional calendar date from a request (ISO 8601, ``YYYY-MM-DD``); empty means none."""
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(f"{name} must be a date as YYYY-MM-DD") from None


def parse_id(text: str) -> uuid.UUID:
    """A document id from a request; a malformed one is simply not found."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound("no such document") from None
