"""Which files the vault accepts, decided from their first bytes (never from the filename or the client).

Allow-list: PDF (``%PDF-``), PNG (its 8-byte signature), JPEG (``FF D8 FF``), XML (``<?xml``, after an
optional UTF-8 byte-order mark) and JSON (an object or array in UTF-8). Binary formats are recognised by
their signature alone. JSON has none, so a candidate (first non-blank byte ``{`` or ``[``) is parsed in
full at the end; to keep memory bounded, JSON documents are limited to ``MAX_JSON`` bytes.
"""

from __future__ import annotations

import json

from core.errors import InvalidArgument

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
JSON = "application/json"
XML = "application/xml"
ALLOWED = (PDF, PNG, JPEG, JSON, XML)

SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", PDF),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"<?xml", XML),
    (b"\xef\xbb\xbf<?xml", XML),
)
SNIFF_BYTES = max(len(signature) for signature, _ in SIGNATURES)
MAX_JSON = 4 * 1024 * 1024
WHITESPACE = b" \t\r\n"
REFUSED = "unsupported content type: the vault accepts PDF, PNG, JPEG, JSON and XML documents"


class Sniffer:
    """Fed the document's bytes in order; :attr:`content_type` is known after enough bytes or at the end."""

    def __init__(self) -> None:
        self._pending = bytearray()  # everything fed before the decision (under SNIFF_BYTES + one chunk)
        self.content_type: str | None = None
        self._json: bytearray | None = None

    def feed(self, chunk: bytes) -> None:
        if self.content_type is None:
            self._pending += chunk
            if len(self._pending) >= SNIFF_BYTES:
                self._decide()
        elif self._json is not None:
            self._keep_json(chunk)

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
        assert self.content_type is not None
        return self.content_type

    def _decide(self) -> None:
        head, self._pending = bytes(self._pending), bytearray()
        for signature, content_type in SIGNATURES:
            if head.startswith(signature):
                self.content_type = content_type
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
