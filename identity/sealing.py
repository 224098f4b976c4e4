"""Authenticated encryption for the identity service's own secrets (AES-256-GCM, `cryptography`).

One 32-byte master key (a file generated at first start; a Secret in Kubernetes) is expanded with
HKDF-SHA-256 into one key per purpose, so TOTP secrets at rest and login tickets never share a key.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE = 12


class Sealer:
    """AES-256-GCM under a key derived for one ``purpose``; associated data binds each use."""

    def __init__(self, master: bytes, purpose: str) -> None:
        self._aead = AESGCM(self.derive(master, purpose))

    @staticmethod
    def derive(master: bytes, purpose: str) -> bytes:
        """A 32-byte subkey of ``master`` for one purpose (HKDF-SHA-256, RFC 5869)."""
        return HKDF(hashes.SHA256(), 32, salt=None, info=f"dinhdanh/{purpose}".encode()).derive(master)

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes = b"") -> bytes | None:
        """The plaintext, or None when ``sealed`` was not made by this key with this ``aad``."""
        if len(sealed) < NONCE + 16:
            return None
        try:
            return self._aead.decrypt(sealed[:NONCE], sealed[NONCE:], aad)
        except InvalidTag:
            return None


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        return None


def load_or_create_key(path: os.PathLike[str] | str) -> bytes:
    """Read a 32-byte key file, creating it (mode 0600) if missing."""
    try:
        with open(path, "rb") as f:
            key = f.read()
    except FileNotFoundError:
        key = os.urandom(32)
        os.makedirs(os.path.dirname(os.fspath(path)) or ".", mode=0o700, exist_ok=True)
        tmp = f"{os.fspath(path)}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        try:
            os.link(tmp, path)  # atomic: of two processes racing, one key wins and both read it
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        with open(path, "rb") as f:
            key = f.read()
    if len(key) != 32:
        raise SystemExit(f"key file {path} is not 32 bytes")
    return key
