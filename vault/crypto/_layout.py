"""Layout of a vault object (Tink AES-GCM-HKDF Streaming, AES-256 / HKDF-SHA256): sizes, nonces, segmentation.

Sizes and nonces follow https://developers.google.com/tink/streaming-aead/aes_gcm_hkdf_streaming ("Split the
message", "Encrypt the segments") and Tink's ``AesGcmHkdfStreaming.expectedCiphertextSize``.

Segmentation: a segment of the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015, https://eprint.iacr.org/2015/189)
can only be sealed or opened once it is known whether it is the last one, since that bit is in its nonce. Like
Tink's ``StreamingAeadEncryptingStream.write`` (which seals a full buffer only when more input arrives) and its
decrypting stream (which reads a ciphertext segment plus one byte), :class:`Framer` releases a full segment only
once at least one more byte has arrived, and leaves the rest to the caller at the end. It buffers one segment at
most, whatever the chunk sizes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeAlias

BytesLike: TypeAlias = bytes | bytearray | memoryview

KEY_SIZE = 32
NONCE_PREFIX_SIZE = 7
HEADER_SIZE = 1 + KEY_SIZE + NONCE_PREFIX_SIZE
TAG_SIZE = 16
DEFAULT_SEGMENT_SIZE = 1 << 20
MIN_SEGMENT_SIZE = HEADER_SIZE + TAG_SIZE + 1
MAX_SEGMENT_SIZE = 2**31 - 1
MAX_SEGMENTS = 2**32
INITIAL_BUFFER = 64 * 1024


def check_segment_size(segment_size: int) -> None:
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise ValueError(f"segment_size must be in [{MIN_SEGMENT_SIZE}, {MAX_SEGMENT_SIZE}], got {segment_size}")


def segment_nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def ciphertext_size(plaintext_size: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """Size of the object encrypting ``plaintext_size`` bytes (Tink's ``expectedCiphertextSize``)."""
    check_segment_size(segment_size)
    if plaintext_size < 0:
        raise ValueError("plaintext_size must be >= 0")
    full, rest = divmod(plaintext_size + HEADER_SIZE, segment_size - TAG_SIZE)
    if full + (rest > 0) > MAX_SEGMENTS:
        raise ValueError("object too large: more than 2**32 segments")
    return full * segment_size + (rest + TAG_SIZE if rest else 0)


def plaintext_size(object_size: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """Inverse of :func:`ciphertext_size`; ``ValueError`` if no object has that size (e.g. a truncated upload)."""
    check_segment_size(segment_size)
    full, rest = divmod(object_size, segment_size)
    size = full * (segment_size - TAG_SIZE) + (rest - TAG_SIZE if rest else 0) - HEADER_SIZE
    if size < 0 or ciphertext_size(size, segment_size) != object_size:
        raise ValueError(f"{object_size} bytes is not the size of any object with segment_size {segment_size}")
    return size


class Framer:
    """Segments of ``first_size`` then ``size`` bytes, each released once more input is known to follow."""

    __slots__ = ("_buffer", "_filled", "_next_size", "_size")

    def __init__(self, first_size: int, size: int) -> None:
        self._size = first_size
        self._next_size = size
        # At most one segment, allocated on first use and doubled as needed up to a segment, so a small
        # object costs its own size, not a whole segment (growing a bytearray in place measured ~20x slower).
        self._buffer: memoryview | None = None
        self._filled = 0

    def feed(self, data: BytesLike) -> Iterator[memoryview]:
        """Yield every segment now known not to be the last.

        Each yielded view is only valid until the generator resumes: consume it (encrypt or decrypt it) first.
        Large aligned input is yielded as views into ``data``, without copying.
        """
        view = memoryview(data).cast("B")
        position, end = 0, len(view)
        while position < end:
            if self._filled == self._size:
                yield self._room(self._size)[: self._size]
                self._filled = 0
                self._size = self._next_size
            elif self._filled == 0 and end - position > self._size:
                yield view[position : position + self._size]
                position += self._size
                self._size = self._next_size
            else:
                take = min(self._size - self._filled, end - position)
                self._room(self._filled + take)[self._filled : self._filled + take] = view[position : position + take]
                self._filled += take
                position += take

    def rest(self) -> memoryview:
        """What was fed and not yet released: the last segment, possibly empty or incomplete."""
        return self._room(self._filled)[: self._filled]

    def _room(self, needed: int) -> memoryview:
        """The buffer, with room for ``needed`` bytes (never more than a segment)."""
        if self._buffer is None or len(self._buffer) < needed:
            largest = max(self._size, self._next_size)
            grown = bytearray(min(largest, max(needed, 2 * len(self._buffer or b""), INITIAL_BUFFER)))
            if self._buffer is not None:
                grown[: self._filled] = self._buffer[: self._filled]
            self._buffer = memoryview(grown)
        return self._buffer
