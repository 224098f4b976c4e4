"""Keys from files: one file of raw bytes per purpose, named after it, in a folder the process is given.

The local stack writes such a folder per process (``var/secrets/<process>-keys/``); in Kubernetes it is the
process's own Secret mounted as a volume (kubelet's ``..data`` links and other dot-names are skipped).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from core.keys.provider import KeyUnavailable
from core.keys.purposes import SIZES
from core.keys.signing import SoftSigner, derive


class FileKeyProvider:
    """The keys of the files given, read once; sizes are checked against ``core.keys.purposes.SIZES``."""

    def __init__(self, files: Mapping[str, Path], origin: str = "") -> None:
        self._origin = origin or ", ".join(str(path) for path in files.values()) or "no key files"
        self._keys: dict[str, bytes] = {}
        for purpose, path in files.items():
            if purpose not in SIZES:
                raise ValueError(f"{path}: {purpose!r} is not a key purpose")
            data = path.read_bytes()
            if len(data) != SIZES[purpose]:
                raise ValueError(f"key file {path} must hold {SIZES[purpose]} bytes, it holds {len(data)}")
            self._keys[purpose] = data

    @classmethod
    def in_folder(cls, folder: Path) -> FileKeyProvider:
        """Every purpose file in ``folder`` (files of other names are ignored)."""
        if not folder.is_dir():
            raise KeyUnavailable(f"the key folder {folder} does not exist (DINHDANH_KEYS_DIR)")
        files = {p.name: p for p in folder.iterdir() if p.name in SIZES and p.is_file()}
        return cls(files, origin=str(folder))

    @property
    def purposes(self) -> set[str]:
        return set(self._keys)

    def key(self, purpose: str) -> bytes:
        try:
            return self._keys[purpose]
        except KeyError:
            raise KeyUnavailable(f"this process holds no {purpose!r} key (none in {self._origin})") from None

    def signer(self, purpose: str) -> SoftSigner:
        """The key the purpose's seed stands for (``core.keys.signing.derive``), as before signers existed."""
        return derive(purpose, self.key(purpose))
