"""Key types of the vault's envelope encryption (:mod:`vault.crypto.envelope`) and their compact storage form.

``WrappedKek.to_bytes`` (70 bytes) and ``WrappedDataKey.to_bytes`` (66 bytes) are what PostgreSQL stores (bytea):
a format byte, a kind byte, the key versions as uint32 big-endian, the 12-byte AES-GCM nonce and the 48-byte
wrapped key (32-byte key and 16-byte tag, NIST SP 800-38D). The versions are also in the wrapping's associated
data, so editing them in the blob makes the key fail to unwrap.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

KEY_SIZE = 32
NONCE_SIZE = 12
WRAPPED_SIZE = KEY_SIZE + 16
_FORMAT = 1
_KEK_BLOB = struct.Struct(f">BcII{NONCE_SIZE}s{WRAPPED_SIZE}s")  # format, b"K", kek v, master v, nonce, wrapped
_DEK_BLOB = struct.Struct(f">BcI{NONCE_SIZE}s{WRAPPED_SIZE}s")  # format, b"D", kek v, nonce, wrapped


class KeyUnwrapError(Exception):
    """A wrapped key does not open with this key for this owner, object and version."""


class KeyShredded(KeyUnwrapError):
    """The citizen's KEK was destroyed: their data keys, and so their objects, are gone for good."""


def check_version(version: int) -> None:
    if not 0 <= version < 2**32:
        raise ValueError(f"key versions are 32-bit unsigned integers, got {version}")


def check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError(f"keys are {KEY_SIZE} bytes")


def _check_blob(nonce: bytes, wrapped: bytes) -> None:
    if len(nonce) != NONCE_SIZE or len(wrapped) != WRAPPED_SIZE:
        raise ValueError(f"a wrapped key is a {NONCE_SIZE}-byte nonce and {WRAPPED_SIZE} bytes of ciphertext")


@dataclass(frozen=True)
class MasterKey:
    """A master key version (in production: a handle held by the KMS/HSM)."""

    version: int
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_version(self.version)
        check_key(self.key)


@dataclass(frozen=True)
class Kek:
    """A citizen's unwrapped key-encryption key. Keep it in memory only, briefly."""

    owner_ref: str
    version: int
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_version(self.version)
        check_key(self.key)


@dataclass(frozen=True)
class WrappedKek:
    """A citizen's KEK under a master key: what the citizen's row stores (70 bytes)."""

    kek_version: int
    master_version: int
    nonce: bytes
    wrapped: bytes

    def __post_init__(self) -> None:
        check_version(self.kek_version)
        check_version(self.master_version)
        _check_blob(self.nonce, self.wrapped)

    def to_bytes(self) -> bytes:
        return _KEK_BLOB.pack(_FORMAT, b"K", self.kek_version, self.master_version, self.nonce, self.wrapped)

    @classmethod
    def from_bytes(cls, blob: bytes) -> WrappedKek:
        if len(blob) != _KEK_BLOB.size or blob[:2] != bytes([_FORMAT]) + b"K":
            raise ValueError("not a wrapped KEK")
        _format, _kind, kek_version, master_version, nonce, wrapped = _KEK_BLOB.unpack(blob)
        return cls(kek_version, master_version, nonce, wrapped)


@dataclass(frozen=True)
class WrappedDataKey:
    """An object's data key under its owner's KEK: what the object's row stores (66 bytes)."""

    kek_version: int
    nonce: bytes
    wrapped: bytes

    def __post_init__(self) -> None:
        check_version(self.kek_version)
        _check_blob(self.nonce, self.wrapped)

    def to_bytes(self) -> bytes:
        return _DEK_BLOB.pack(_FORMAT, b"D", self.kek_version, self.nonce, self.wrapped)

    @classmethod
    def from_bytes(cls, blob: bytes) -> WrappedDataKey:
        if len(blob) != _DEK_BLOB.size or blob[:2] != bytes([_FORMAT]) + b"D":
            raise ValueError("not a wrapped data key")
        _format, _kind, kek_version, nonce, wrapped = _DEK_BLOB.unpack(blob)
        return cls(kek_version, nonce, wrapped)
