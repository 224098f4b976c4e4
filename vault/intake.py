"""What the vault checks of a document's content while it streams in, before anything is committed.

The size limit (as the bytes arrive, so an oversized upload is stopped at once), the content type from the
first bytes (vault.content_types), the SHA-256, and the end message: the client's count (and optionally
SHA-256) of what it sent must come last and match, so a stream cut short is refused, never stored.
"""

from __future__ import annotations

import hashlib

from core.errors import InvalidArgument
from vault.content_types import Sniffer
from vault.documents import TooLarge, UploadEnd


class Intake:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.content_type = ""  # known, with ``sha256``, once ``finish`` accepted the upload
        self.sha256 = b""
        self._sniffer = Sniffer()
        self._digest = hashlib.sha256()
        self._end: UploadEnd | None = None

    def feed(self, chunk: bytes) -> None:
        if self._end is not None:
            raise InvalidArgument("content after the end message")
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise TooLarge(f"the document is larger than {self.max_bytes} bytes")
        self._sniffer.feed(chunk)
        self._digest.update(chunk)

    def end(self, declared: UploadEnd) -> None:
        if self._end is not None:
            raise InvalidArgument("a second end message")
        self._end = declared

    def finish(self) -> None:
        """Accept a complete, consistent upload: ``content_type`` and ``sha256`` are then set."""
        if self._end is None:
            raise InvalidArgument("the upload ended without its end message: it was cut short, nothing is stored")
        if self.size == 0:
            raise InvalidArgument("empty document")
        if self._end.size_bytes != self.size:
            raise InvalidArgument(f"the end message counts {self._end.size_bytes} bytes, {self.size} arrived")
        sha256 = self._digest.digest()
        if self._end.sha256 and self._end.sha256 != sha256:
            raise InvalidArgument("the content does not match the end message's sha256")
        self.content_type, self.sha256 = self._sniffer.finish(), sha256
