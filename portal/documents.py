"""How the vault's documents are shown: the type catalog in Vietnamese, sizes, dates, download headers."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

from protos.vault.v1 import vault_pb2 as pb

VIETNAM = dt.timezone(dt.timedelta(hours=7))  # Asia/Ho_Chi_Minh, no daylight saving time

# The catalog of protos/vault/v1/vault.proto: (query and form value, enum value, label).
TYPES: tuple[tuple[str, pb.DocumentType, str], ...] = (
    ("citizen_id_card", pb.DOCUMENT_TYPE_CITIZEN_ID_CARD, "Căn cước công dân"),
    ("birth_certificate", pb.DOCUMENT_TYPE_BIRTH_CERTIFICATE, "Giấy khai sinh"),
    ("residence_confirmation", pb.DOCUMENT_TYPE_RESIDENCE_CONFIRMATION, "Xác nhận thông tin về cư trú"),
    ("diploma", pb.DOCUMENT_TYPE_DIPLOMA, "Văn bằng"),
    ("criminal_record_certificate", pb.DOCUMENT_TYPE_CRIMINAL_RECORD_CERTIFICATE, "Phiếu lý lịch tư pháp"),
    ("health_book", pb.DOCUMENT_TYPE_HEALTH_BOOK, "Sổ sức khỏe"),
    ("other", pb.DOCUMENT_TYPE_OTHER, "Khác"),
)
TYPE_BY_KEY = {key: number for key, number, _ in TYPES}
LABELS = {number: label for _, number, label in TYPES}
_UNSAFE = re.compile(r"[^A-Za-z0-9 !#$&+,.;=@^_`{}~()\[\]-]")  # a quoted-string without quotes or backslashes


@dataclass(frozen=True, slots=True)
class Row:
    """One document as the list page shows it."""

    id: str
    title: str
    type_label: str
    filename: str
    size: str
    created: str
    version: int
    issued: bool
    issuer: str
    issued_on: str
    expires_on: str
    expired: bool


def row(document: pb.Document) -> Row:
    return Row(
        id=document.id,
        title=document.title,
        type_label=LABELS.get(document.document_type, "Khác"),
        filename=document.filename,
        size=size_text(document.size_bytes),
        created=document.created_at.ToDatetime(tzinfo=VIETNAM).strftime("%d/%m/%Y %H:%M"),
        version=document.version,
        issued=document.source == pb.DOCUMENT_SOURCE_ISSUED,
        issuer=document.issuer_name or document.issuer_client_id,
        issued_on=day_text(document.issued_on),
        expires_on=day_text(document.expires_on),
        expired=bool(document.expires_on) and document.expires_on < dt.datetime.now(VIETNAM).date().isoformat(),
    )


def day_text(iso: str) -> str:
    """``2026-11-20`` as ``20/11/2026``; empty stays empty."""
    return dt.date.fromisoformat(iso).strftime("%d/%m/%Y") if iso else ""


def size_text(size: int) -> str:
    """``812 B``, ``12,3 KB``, ``4,0 MB`` (Vietnamese decimal comma)."""
    if size < 1024:
        return f"{size} B"
    value, unit = (size / 1024, "KB") if size < 1024 * 1024 else (size / (1024 * 1024), "MB")
    return f"{value:.1f} {unit}".replace(".", ",")


def attachment(filename: str) -> str:
    """``Content-Disposition`` for a download: an ASCII fallback, and the UTF-8 name (RFC 6266 §4.3, RFC 5987)."""
    plain = unicodedata.normalize("NFKD", filename.replace("đ", "d").replace("Đ", "D"))
    plain = _UNSAFE.sub("_", "".join(c for c in plain if not unicodedata.combining(c))) or "document"
    if plain == filename:
        return f'attachment; filename="{plain}"'
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"
