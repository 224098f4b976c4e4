"""Envelope encryption of the vault: master key → citizen KEK → per-object data key.

The key hierarchy of NIST SP 800-57 Part 1 Rev. 5 (key-wrapping keys protecting data-encryption keys):

- a **data key** (32 random bytes, :func:`new_data_key`) per object, used by :mod:`vault.crypto.streaming`, stored
  only as a :class:`WrappedDataKey` under the owner's KEK;
- a **KEK** (32 random bytes, never derived, so it cannot be recomputed) per citizen and KEK version, stored only
  as a :class:`WrappedKek` under a master key;
- a **master key** per master version, held by the KMS/HSM and never stored with the data.

Wrapping is AES-256-GCM (NIST SP 800-38D) with a random 96-bit nonce and associated data binding the wrapped key
to its place: label, owner, object (for data keys) and the versions of both keys. A blob therefore opens only for
the owner, object and versions it was made for: keys cannot be swapped between citizens or objects, nor version
fields edited. GCM rather than AES-KW/KWP (RFC 3394/5649, ``cryptography.hazmat.primitives.keywrap``): KW has no
associated-data input (binding would need a derived wrapping key per context) and a 64-bit integrity check,
where GCM has a 128-bit tag. Its cost is the random-nonce limit of 2**32 wraps per key (SP 800-38D §8.3): a KEK
wraps one citizen's data keys and a master key one KEK per citizen and version, far below it.

Rotation never re-encrypts objects: KEK rotation (:func:`rotate_kek`, then :func:`rewrap_data_key` per object)
and master rotation (:func:`rewrap_kek` per citizen) only replace 66- and 70-byte blobs. Crypto-shredding: the
only way to a data key is through the citizen's wrapped KEK (:func:`open_data_key`); deleting every copy of it
(database rows and backups) leaves the data keys, and so the objects, unrecoverable, even with the master key.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.crypto.keys import (
    KEY_SIZE,
    NONCE_SIZE,
    Kek,
    KeyShredded,
    KeyUnwrapError,
    MasterKey,
    WrappedDataKey,
    WrappedKek,
    check_key,
)

__all__ = [
    "Kek",
    "KeyShredded",
    "KeyUnwrapError",
    "MasterKey",
    "WrappedDataKey",
    "WrappedKek",
    "new_data_key",
    "new_kek",
    "new_master_key",
    "open_data_key",
    "rewrap_data_key",
    "rewrap_kek",
    "rotate_kek",
    "unwrap_data_key",
    "unwrap_kek",
    "wrap_data_key",
]


def _text(value: str) -> bytes:
    encoded = value.encode()
    if not encoded or len(encoded) > 0xFFFF:
        raise ValueError("owner and object references must be 1..65535 bytes of UTF-8")
    return struct.pack(">H", len(encoded)) + encoded


def _kek_context(owner_ref: str, kek_version: int, master_version: int) -> bytes:
    return b"dinhdanh/vault/kek/v1\0" + _text(owner_ref) + struct.pack(">II", kek_version, master_version)


def _data_key_context(owner_ref: str, object_id: str, kek_version: int) -> bytes:
    return b"dinhdanh/vault/data-key/v1\0" + _text(owner_ref) + _text(object_id) + struct.pack(">I", kek_version)


def _wrap(wrapping_key: bytes, key: bytes, context: bytes) -> tuple[bytes, bytes]:
    check_key(key)
    nonce = os.urandom(NONCE_SIZE)
    return nonce, AESGCM(wrapping_key).encrypt(nonce, key, context)


def _unwrap(wrapping_key: bytes, nonce: bytes, wrapped: bytes, context: bytes, what: str) -> bytes:
    try:
        return AESGCM(wrapping_key).decrypt(nonce, wrapped, context)
    except InvalidTag:
        raise KeyUnwrapError(f"{what} does not open: wrong key, owner, object or version, or tampered") from None


def new_master_key(version: int) -> MasterKey:
    """A fresh master key (bootstrap and tests; production master keys live in the KMS/HSM)."""
    return MasterKey(version, os.urandom(KEY_SIZE))


def new_data_key() -> bytes:
    """A fresh 32-byte data key for one object."""
    return os.urandom(KEY_SIZE)


def new_kek(master: MasterKey, owner_ref: str, version: int = 1) -> tuple[Kek, WrappedKek]:
    """A fresh random KEK for ``owner_ref``, and its wrapping under ``master`` to store."""
    kek = Kek(owner_ref, version, os.urandom(KEY_SIZE))
    nonce, wrapped = _wrap(master.key, kek.key, _kek_context(owner_ref, version, master.version))
    return kek, WrappedKek(version, master.version, nonce, wrapped)


def unwrap_kek(master: MasterKey, owner_ref: str, wrapped: WrappedKek) -> Kek:
    """The citizen's KEK; :class:`KeyUnwrapError` unless ``wrapped`` was made for this owner and master key."""
    if wrapped.master_version != master.version:
        raise KeyUnwrapError(f"KEK is wrapped under master version {wrapped.master_version}, not {master.version}")
    context = _kek_context(owner_ref, wrapped.kek_version, wrapped.master_version)
    return Kek(owner_ref, wrapped.kek_version, _unwrap(master.key, wrapped.nonce, wrapped.wrapped, context, "KEK"))


def wrap_data_key(kek: Kek, data_key: bytes, object_id: str) -> WrappedDataKey:
    """Wrap an object's data key under its owner's KEK, bound to owner, object and KEK version."""
    nonce, wrapped = _wrap(kek.key, data_key, _data_key_context(kek.owner_ref, object_id, kek.version))
    return WrappedDataKey(kek.version, nonce, wrapped)


def unwrap_data_key(kek: Kek, wrapped: WrappedDataKey, object_id: str) -> bytes:
    """The object's data key; :class:`KeyUnwrapError` unless ``wrapped`` was made for this KEK and object."""
    if wrapped.kek_version != kek.version:
        raise KeyUnwrapError(f"data key is wrapped under KEK version {wrapped.kek_version}, not {kek.version}")
    context = _data_key_context(kek.owner_ref, object_id, kek.version)
    return _unwrap(kek.key, wrapped.nonce, wrapped.wrapped, context, "data key")


def open_data_key(
    master: MasterKey, owner_ref: str, wrapped_kek: WrappedKek | None, wrapped: WrappedDataKey, object_id: str
) -> bytes:
    """The one path to an object's data key; ``wrapped_kek`` is None once the citizen's KEK was shredded."""
    if wrapped_kek is None:
        raise KeyShredded(f"the KEK of {owner_ref!r} was destroyed")
    return unwrap_data_key(unwrap_kek(master, owner_ref, wrapped_kek), wrapped, object_id)


def rotate_kek(master: MasterKey, current: Kek) -> tuple[Kek, WrappedKek]:
    """The citizen's next KEK version. Rewrap every data key, then destroy the old wrapped KEK."""
    return new_kek(master, current.owner_ref, current.version + 1)


def rewrap_data_key(old: Kek, new: Kek, wrapped: WrappedDataKey, object_id: str) -> WrappedDataKey:
    """Move a data key from ``old`` to ``new`` KEK; the object itself is untouched."""
    if old.owner_ref != new.owner_ref:
        raise ValueError("a data key only moves between KEKs of the same owner")
    return wrap_data_key(new, unwrap_data_key(old, wrapped, object_id), object_id)


def rewrap_kek(old: MasterKey, new: MasterKey, owner_ref: str, wrapped: WrappedKek) -> WrappedKek:
    """Master rotation: the same KEK (same version and bytes) wrapped under the ``new`` master key."""
    kek = unwrap_kek(old, owner_ref, wrapped)
    nonce, rewrapped = _wrap(new.key, kek.key, _kek_context(owner_ref, kek.version, new.version))
    return WrappedKek(kek.version, new.version, nonce, rewrapped)
