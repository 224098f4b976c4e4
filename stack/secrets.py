"""Secrets generated at first start into ``var/secrets/`` (mode 0600), never into the repository.

Keys: one file per purpose in ``keys/`` (the supervisor's and the operator's copy), and for each process a
folder ``<process>-keys/`` holding only the purposes of ``PROCESS_KEYS[process]``, which is all that process
is handed (``DINHDANH_KEYS_DIR``). On the local stack every process runs as the same user, so the folders
separate what each process is given, not what a compromised one could read from disk; in Kubernetes each
pod mounts only its own Secret (k8s/README.md).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from core.keys import legacy
from core.keys import purposes as p
from core.keys.files import FileKeyProvider

PROCESS_KEYS: dict[str, tuple[str, ...]] = {
    "edge": (p.OIDC_SUBJECT, p.OIDC_SIGNING_KEY, p.SSO_SESSION, p.LOGIN_FLOW, p.AUTHORIZATION_CODE, p.DEVICE_ID),
    "registry": (p.OIDC_SUBJECT,),  # GetMyRecord: the token's sub back to the ID number
    "identity": (p.TOTP_SECRET, p.LOGIN_TICKET, p.AUDIT_PSEUDONYM),
    "vault": (p.OIDC_SUBJECT, p.AUDIT_PSEUDONYM, p.VAULT_OWNER, p.VAULT_MASTER),
    "consent": (p.OIDC_SUBJECT, p.AUDIT_PSEUDONYM, p.CONSENT_SIGNING),  # citizens by sub or ID number; signing
    "log": (p.OIDC_SUBJECT, p.AUDIT_PSEUDONYM, p.LOG_SIGNING),  # a citizen's own entries; checkpoints
    "judicial": (),  # conviction records only, read by the issuance service
    "issuance": (p.OIDC_SUBJECT, p.AUDIT_PSEUDONYM, p.ISSUANCE_SIGNING, p.ISSUANCE_DOCUMENT),  # citizens; signing
    "health": (p.OIDC_SUBJECT, p.AUDIT_PSEUDONYM, p.HEALTH_SIGNING),  # citizens by sub; signed extracts
    "portal": (p.HOLDER_KEY,),  # the citizens' holder keys it presents credentials with
}
LEGACY_MASTER = "identity.key"


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

    def database_password(self, service: str) -> str:
        """The password of ``service``'s own PostgreSQL role."""
        return self.token(f"postgres-{service}-password")

    def keys_dir(self, process: str) -> Path:
        """The folder handed to ``process`` as ``DINHDANH_KEYS_DIR``."""
        return self.path(f"{process}-keys")

    def keys(self, process: str) -> FileKeyProvider:
        """The keys ``process`` holds (operator commands acting as it use the same)."""
        return FileKeyProvider.in_folder(self.keys_dir(process))

    def ensure_keys(self) -> bool:
        """Every purpose's key, made once, and each process's folder; True when the old master key was split.

        With ``identity.key`` of an earlier release present, each key is derived from it (``core.keys.legacy``),
        so what it sealed stays readable, and the file is removed once every key is written; otherwise the keys
        are random."""
        master_path = self.path(LEGACY_MASTER)
        master = master_path.read_bytes() if master_path.exists() else None
        if master is not None and len(master) != 32:
            raise ValueError(f"{master_path} is not 32 bytes")
        canonical = self.path("keys")
        canonical.mkdir(parents=True, exist_ok=True, mode=0o700)
        for purpose, size in p.SIZES.items():
            path = canonical / purpose
            if not path.exists():
                known = master is not None and purpose in legacy.LABELS
                self._write(path, legacy.derive(master, purpose) if known else secrets.token_bytes(size))
        for process, held in PROCESS_KEYS.items():
            folder = self.keys_dir(process)
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            for stale in folder.iterdir():
                if stale.name not in held:
                    stale.unlink()
            for purpose in held:
                data = (canonical / purpose).read_bytes()
                if not (folder / purpose).exists() or (folder / purpose).read_bytes() != data:
                    self._write(folder / purpose, data)
        if master is not None:
            master_path.unlink()
        return master is not None

    def json(self, name: str) -> dict[str, Any] | None:
        path = self.path(name)
        return json.loads(path.read_text()) if path.exists() else None

    def put_json(self, name: str, value: dict[str, Any]) -> None:
        self._write(self.path(name), json.dumps(value, ensure_ascii=False, indent=2).encode())

    def _write(self, path: Path, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
