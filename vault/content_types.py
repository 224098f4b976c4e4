"""Which files the vault accepts, decided from their first bytes (never from the filename or the client).

Allow-list: PDF (``%PDF-``), PNG (its 8-byte signature), JPEG (``FF D8 FF``), XML (``<?xml``, after an
optional UTF-8 byte-order mark), JSON (an object or array in UTF-8) and SD-JWT (``application/dc+sd-jwt``: a
credential or a key-bound presentation in the compact form of RFC 9901 §4, ``<JWT>~<Disclosure>~…~[<KB-JWT>]``,
whose issuer-signed JWT's header names ``typ`` ``dc+sd-jwt`` (SD-JWT VC §3.2.1; ``vc+sd-jwt`` of earlier
drafts too) — what a citizen shares selectively, portal/disclosure.py). Binary formats are recognised by
their signature alone. JSON has none, so a candidate (first non-blank byte ``{`` or ``[``) is parsed in
full at the end; an SD-JWT starts ``eyJ`` (a base64url JSON header) and is checked in full at the end (its
grammar and its header; no signature: the vault trusts nobody's keys for what a citizen uploads). To keep
memory bounded, JSON documents are limited to ``MAX_JSON`` bytes and SD-JWTs to ``MAX_SD_JWT``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from core.errors import InvalidArgument

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
JSON = "application/json"
XML = "application/xml"
SD_JWT = "application/dc+sd-jwt"  # SD-JWT VC §3.1 (IANA media type), RFC 9901 §11.2.1's application/sd-jwt form
ALLOWED = (PDF, PNG, JPEG, JSON, XML, SD_JWT)

SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", PDF),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"<?xml", XML),
    (b"\xef\xbb\xbf<?xml", XML),
)
SNIFF_BYTES = max(len(signature) for signature, _ in SIGNATURES)
MAX_JSON = 4 * 1024 * 1024
MAX_SD_JWT = 512 * 1024
SD_JWT_START = b"eyJ"  # base64url of '{"': a JWS header
SD_JWT_TYPES = ("dc+sd-jwt", "vc+sd-jwt")
_B64 = r"[A-Za-z0-9_-]+"
SD_JWT_FORM = re.compile(rf"{_B64}\.{_B64}\.{_B64}~(?:{_B64}~)*(?:{_B64}\.{_B64}\.{_B64})?")
WHITESPACE = b" \t\r\n"
REFUSED = "unsupported content type: the vault accepts PDF, PNG, JPEG, JSON, XML and SD-JWT documents"


class Sniffer:
    """Fed the document's bytes in order; :attr:`content_type` is known after enough bytes or at the end."""

    def __init__(self) -> None:
        self._pending = bytearray()  # everything fed before the decision (under SNIFF_BYTES + one chunk)
        self.content_type: str | None = None
        self._json: bytearray | None = None
        self._sd_jwt: bytearray | None = None

    def feed(self, chunk: bytes) -> None:
        if self.content_type is None:
            self._pending += chunk
            if len(self._pending) >= SNIFF_BYTES:
                self._decide()
        elif self._json is not None:
            self._keep_json(chunk)
        elif self._sd_jwt is not None:
            self._keep_sd_jwt(chunk)

    def finish(self) -> str:
        """The content type of the complete document; ``InvalidArgument`` when it is not allowed."""
        if self.content_type is None:
            self._decide()
        if self.content_type == JSON:
            assert self._json is not None
            try:
                value = json.loads(bytes(self._json).decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise InvalidArgument(REFUSED) from None
            if not isinstance(value, dict | list):
                raise InvalidArgument(REFUSED)
        if self.content_type == SD_JWT:
            assert self._sd_jwt is not None
            _check_sd_jwt(bytes(self._sd_jwt))
        assert self.content_type is not None
        return self.content_type

    def _decide(self) -> None:
        head, self._pending = bytes(self._pending), bytearray()
        for signature, content_type in SIGNATURES:
            if head.startswith(signature):
                self.content_type = content_type
                return
        if head.startswith(SD_JWT_START):
            self.content_type = SD_JWT
            self._sd_jwt = bytearray()
            self._keep_sd_jwt(head)
            return
        start = head.lstrip(WHITESPACE)[:1]
        if start in (b"{", b"[") or (head and not start):
            # Possibly JSON (also when the head is all blanks: the opening bracket may follow).
            self.content_type = JSON
            self._json = bytearray()
            self._keep_json(head)
            return
        raise InvalidArgument(REFUSED)

    def _keep_json(self, chunk: bytes) -> None:
        assert self._json is not None
        if len(self._json) + len(chunk) > MAX_JSON:
            raise InvalidArgument(f"JSON documents are limited to {MAX_JSON // (1024 * 1024)} MiB")
        self._json += chunk

    def _keep_sd_jwt(self, chunk: bytes) -> None:
        assert self._sd_jwt is not None
        if len(self._sd_jwt) + len(chunk) > MAX_SD_JWT:
            raise InvalidArgument(f"SD-JWT documents are limited to {MAX_SD_JWT // 1024} KiB")
        self._sd_jwt += chunk


def _check_sd_jwt(data: bytes) -> None:
    """The compact SD-JWT grammar (RFC 9901 §4) and a JSON header with an SD-JWT ``typ``; ``REFUSED`` otherwise."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidArgument(REFUSED) from None
    if not SD_JWT_FORM.fullmatch(text):
        raise InvalidArgument(REFUSED)
    encoded = text.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidArgument(REFUSED) from None
    if not isinstance(header, dict) or header.get("typ") not in SD_JWT_TYPES:
        raise InvalidArgument(REFUSED)
