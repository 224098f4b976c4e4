"""Secrets generated at first start into ``var/secrets/`` (mode 0600), never into the repository."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any


class SecretStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        return self.folder / name

    def token(self, name: str, nbytes: int = 24) -> str:
        """A random URL-safe token kept in ``name``, made on first use."""
        path = self.path(name)
        if not path.exists():
            self._write(path, secrets.token_urlsafe(nbytes).encode())
        return path.read_text().strip()

    def json(self, name: str) -> dict[str, Any] | None:
        path = self.path(name)
        return json.loads(path.read_text()) if path.exists() else None

    def put_json(self, name: str, value: dict[str, Any]) -> None:
        self._write(self.path(name), json.dumps(value, ensure_ascii=False, indent=2).encode())

    def _write(self, path: Path, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        tmp.replace(path)
