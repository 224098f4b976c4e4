"""Sealed names: a document version's title, filename and issuer name, encrypted like its content.

The key is derived from the version's data key (HKDF-SHA256, RFC 5869, ``info`` = a label and the version's
associated data; no salt), so the names open exactly when the content does: through the citizen's KEK, and never
after a crypto-shred. A KEK rotation rewraps the data key and leaves the names as they are. The blob is a format
byte, a random 96-bit nonce and the AES-256-GCM ciphertext (NIST SP 800-38D) of the JSON list
``[title, filename, issuer_name]``, authenticated with the same associated data.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.crypto.keys import KEY_SIZE, NONCE_SIZE, KeyUnwrapError

_FORMAT = 1
_LABEL = b"dinhdanh/vault/names/v1\0"


@dataclass(frozen=True, slots=True)
class Names:
    title: str
    filename: str
    issuer_name: str = ""


def _key(data_key: bytes, associated: bytes) -> bytes:
    return HKDF(hashes.SHA256(), KEY_SIZE, salt=None, info=_LABEL + associated).derive(data_key)


def seal_names(data_key: bytes, names: Names, associated: bytes) -> bytes:
    """The sealed blob of ``names`` under ``data_key``, bound to ``associated`` (owner and version)."""
    nonce = os.urandom(NONCE_SIZE)
    plain = json.dumps([names.title, names.filename, names.issuer_name], ensure_ascii=False).encode()
    return bytes([_FORMAT]) + nonce + AESGCM(_key(data_key, associated)).encrypt(nonce, plain, associated)


def open_names(data_key: bytes, blob: bytes, associated: bytes) -> Names:
    """The names sealed in ``blob``; :class:`KeyUnwrapError` unless it was sealed with this key and data."""
    if len(blob) < 1 + NONCE_SIZE + 16 or blob[0] != _FORMAT:
        raise KeyUnwrapError("not sealed names")
    nonce, sealed = blob[1 : 1 + NONCE_SIZE], blob[1 + NONCE_SIZE :]
    try:
        title, filename, issuer_name = json.loads(AESGCM(_key(data_key, associated)).decrypt(nonce, sealed, associated))
    except InvalidTag:
        raise KeyUnwrapError("the sealed names do not open: wrong key, owner or document, or tampered") from None
    return Names(title, filename, issuer_name)
