"""Streaming AEAD for vault objects: Tink's AES-GCM-HKDF Streaming AEAD with AES-256 and HKDF-SHA256.

Implements https://developers.google.com/tink/streaming-aead/aes_gcm_hkdf_streaming (based on the STREAM
construction of Hoang, Reyhanitabar, Rogaway, Vizár, CRYPTO 2015, https://eprint.iacr.org/2015/189; analysed
in Hoang, Shen, "Security of Streaming Encryption in Google's Tink Library", CCS 2020) with the parameters of
Tink's ``AES256_GCM_HKDF_1MB`` template: DerivedKeySize 32, HkdfHashType SHA256, first segment offset 0, and
``segment_size`` = Tink's CiphertextSegmentSize. Its ciphertexts are byte-for-byte Tink's::

    object   = header || C_0 || C_1 || ... || C_{n-1}
    header   = 0x28 (its own length, 40) || salt (32 random bytes) || nonce_prefix (7 random bytes)
    key      = HKDF-SHA256(ikm=data key, salt=salt, info=associated data, L=32)        (RFC 5869)
    C_i      = AES-256-GCM(key, nonce_prefix || uint32_be(i) || last, M_i, aad="")     (NIST SP 800-38D)

where ``last`` is 0x01 for the final segment and 0x00 otherwise. M_0 has ``segment_size - 56`` bytes, M_1..M_{n-2}
``segment_size - 16``; the final M_{n-1} is 1..``segment_size - 16`` bytes, or empty when the whole object is
empty (then n = 1 and C_0 is a bare tag). So every emitted piece but the last is exactly ``segment_size`` bytes
(the header rides in the first), which aligns S3 multipart parts and byte ranges with segments.

The random salt gives every object its own key, the index in the nonce pins each segment's position, and the last
flag makes the end authenticated: tampering, reordering, duplication, truncation, trailing data, splicing between
objects, and a wrong key or associated data all fail authentication (:class:`CorruptObject`).

A :class:`Decryptor` releases plaintext segment by segment, before the end is verified: a consumer must treat
everything it received as void unless :meth:`Decryptor.finish` returns normally.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.crypto._layout import (
    DEFAULT_SEGMENT_SIZE,
    HEADER_SIZE,
    KEY_SIZE,
    MAX_SEGMENTS,
    MIN_SEGMENT_SIZE,
    NONCE_PREFIX_SIZE,
    TAG_SIZE,
    BytesLike,
    Framer,
    check_segment_size,
    ciphertext_size,
    plaintext_size,
    segment_nonce,
)

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "HEADER_SIZE",
    "MIN_SEGMENT_SIZE",
    "TAG_SIZE",
    "CorruptObject",
    "Decryptor",
    "Encryptor",
    "ciphertext_size",
    "decrypt_stream",
    "encrypt_stream",
    "plaintext_size",
]


class CorruptObject(Exception):
    """The bytes are not an intact, complete object under this data key and associated data."""


def _segment_cipher(key: bytes, salt: bytes, associated_data: bytes) -> AESGCM:
    """DerivedKey = HKDF(ikm=key, salt=salt, info=associated data), as in Tink's "Create the header"."""
    if len(key) != KEY_SIZE:
        raise ValueError(f"the data key must be {KEY_SIZE} bytes")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=associated_data)
    return AESGCM(hkdf.derive(key))


class Encryptor:
    """Encrypts one object incrementally: :meth:`update` with chunks of any size, then :meth:`finish` once.

    Every returned piece but the last is exactly ``segment_size`` bytes (the first includes the header). Memory is
    one plaintext segment plus what the caller passes to a single :meth:`update`.
    """

    def __init__(self, key: bytes, associated_data: bytes = b"", segment_size: int = DEFAULT_SEGMENT_SIZE) -> None:
        self._setup(key, associated_data, segment_size, os.urandom(KEY_SIZE), os.urandom(NONCE_PREFIX_SIZE))

    @classmethod
    def _with_fixed_header(
        cls, key: bytes, associated_data: bytes, segment_size: int, salt: bytes, nonce_prefix: bytes
    ) -> Encryptor:
        """Tests only: a chosen salt and nonce prefix. Reused with the same key, they reuse AES-GCM nonces."""
        encryptor = cls.__new__(cls)
        encryptor._setup(key, associated_data, segment_size, salt, nonce_prefix)
        return encryptor

    def _setup(self, key: bytes, associated_data: bytes, segment_size: int, salt: bytes, nonce_prefix: bytes) -> None:
        check_segment_size(segment_size)
        if len(salt) != KEY_SIZE or len(nonce_prefix) != NONCE_PREFIX_SIZE:
            raise ValueError("salt must be 32 bytes and nonce_prefix 7 bytes")
        self._cipher = _segment_cipher(key, salt, associated_data)
        self._prefix = nonce_prefix
        self._header: bytes | None = bytes([HEADER_SIZE]) + salt + nonce_prefix
        self._framer = Framer(segment_size - HEADER_SIZE - TAG_SIZE, segment_size - TAG_SIZE)
        self._index = 0
        self._finished = False

    def update(self, plaintext: BytesLike) -> list[bytes]:
        """Encrypt more plaintext; returns the ciphertext segments completed by it (often none)."""
        if self._finished:
            raise RuntimeError("the encryptor is finished")
        return [self._seal(segment, last=False) for segment in self._framer.feed(plaintext)]

    def finish(self) -> bytes:
        """The final segment (flagged last; a bare tag, after the header, for an empty object)."""
        if self._finished:
            raise RuntimeError("the encryptor is finished")
        self._finished = True
        return self._seal(self._framer.rest(), last=True)

    def _seal(self, segment: BytesLike, last: bool) -> bytes:
        if self._index >= MAX_SEGMENTS:
            raise ValueError("object too large: more than 2**32 segments")
        sealed = self._cipher.encrypt(segment_nonce(self._prefix, self._index, last), segment, None)
        self._index += 1
        if self._header is not None:
            sealed, self._header = self._header + sealed, None
        return sealed


class Decryptor:
    """Decrypts and verifies one object incrementally, from ciphertext chunks split anywhere.

    :meth:`update` returns verified plaintext segments; :meth:`finish` verifies the final segment and so the
    object's completeness. Any failure raises :class:`CorruptObject` and poisons the decryptor. Memory is one
    ciphertext segment plus what the caller passes to a single :meth:`update`.
    """

    def __init__(self, key: bytes, associated_data: bytes = b"", segment_size: int = DEFAULT_SEGMENT_SIZE) -> None:
        check_segment_size(segment_size)
        if len(key) != KEY_SIZE:
            raise ValueError(f"the data key must be {KEY_SIZE} bytes")
        self._key, self._associated_data = bytes(key), bytes(associated_data)
        self._header = bytearray()
        self._cipher: AESGCM | None = None
        self._prefix = b""
        self._framer = Framer(segment_size - HEADER_SIZE, segment_size)
        self._index = 0
        self._state = "open"

    def update(self, ciphertext: BytesLike) -> list[bytes]:
        """Consume more of the object; returns the plaintext of every segment it completed and verified."""
        view = memoryview(ciphertext).cast("B")
        self._enter()
        if self._cipher is None:
            taken = HEADER_SIZE - len(self._header)
            self._header += view[:taken]
            view = view[taken:]
            if len(self._header) == HEADER_SIZE:
                self._start()
        plaintext = [self._open(segment, last=False) for segment in self._framer.feed(view)]
        self._state = "open"
        return plaintext

    def finish(self) -> bytes:
        """Verify and return the final segment. Until this returns, the object is not known to be complete."""
        self._enter()
        if self._cipher is None:
            raise CorruptObject(f"truncated object: {len(self._header)} bytes, not even a header")
        rest = self._framer.rest()
        if len(rest) < TAG_SIZE:
            raise CorruptObject(f"truncated object: final segment {self._index} shorter than a tag")
        plaintext = self._open(rest, last=True)
        self._state = "finished"
        return plaintext

    def _enter(self) -> None:
        """Refuse a failed or finished decryptor; mark it failed until the call in progress returns normally."""
        if self._state == "failed":
            raise CorruptObject("an earlier call failed: the object is not trustworthy")
        if self._state == "finished":
            raise RuntimeError("the decryptor is finished")
        self._state = "failed"

    def _start(self) -> None:
        if self._header[0] != HEADER_SIZE:
            raise CorruptObject("not a vault object: bad header length byte")
        salt = bytes(self._header[1 : 1 + KEY_SIZE])
        self._prefix = bytes(self._header[1 + KEY_SIZE :])
        self._cipher = _segment_cipher(self._key, salt, self._associated_data)

    def _open(self, segment: BytesLike, last: bool) -> bytes:
        assert self._cipher is not None
        if self._index >= MAX_SEGMENTS:
            raise CorruptObject("more than 2**32 segments")
        try:
            plaintext = self._cipher.decrypt(segment_nonce(self._prefix, self._index, last), segment, None)
        except InvalidTag:
            where = "final segment" if last else "segment"
            raise CorruptObject(
                f"{where} {self._index} failed authentication: tampered, truncated, reordered or spliced data, "
                "trailing garbage, or the wrong data key or associated data"
            ) from None
        self._index += 1
        return plaintext


def encrypt_stream(
    key: bytes, chunks: Iterable[BytesLike], associated_data: bytes = b"", segment_size: int = DEFAULT_SEGMENT_SIZE
) -> Iterator[bytes]:
    """Lazily encrypt an iterable of plaintext chunks into ciphertext pieces (see :class:`Encryptor`)."""
    encryptor = Encryptor(key, associated_data, segment_size)
    for chunk in chunks:
        yield from encryptor.update(chunk)
    yield encryptor.finish()


def decrypt_stream(
    key: bytes, chunks: Iterable[BytesLike], associated_data: bytes = b"", segment_size: int = DEFAULT_SEGMENT_SIZE
) -> Iterator[bytes]:
    """Lazily decrypt ciphertext chunks. Plaintext already yielded is void if the generator raises."""
    decryptor = Decryptor(key, associated_data, segment_size)
    for chunk in chunks:
        yield from decryptor.update(chunk)
    yield decryptor.finish()
