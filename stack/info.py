"""``var/stack.json``: what a running stack offers, for scripts, the CLI, benchmarks and tests."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import grpc

if TYPE_CHECKING:  # minio is imported by the commands that reach S3, not by every command
    from minio import Minio
from services.tls import secure_channel


@dataclass
class StackInfo:
    services: dict[str, str]
    tls: dict[str, str]
    postgres_dsn: str
    s3_endpoint: str
    s3_credentials: str
    demo_citizen: dict[str, str] = field(default_factory=dict)
    oidc_issuer: str = ""
    demo_portal: str = ""
    demo_portal_2: str = ""
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)  # process → its Prometheus URL (core/metrics.py)

    @classmethod
    def load(cls, path: Path) -> StackInfo:
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: start the platform with `make up` first")
        data = json.loads(path.read_text())
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.as_dict(), f, ensure_ascii=False, indent=2)
        tmp.replace(path)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def channel(self, service: str) -> grpc.aio.Channel:
        """An mTLS channel to ``service``, presenting the operator certificate."""
        return secure_channel(
            self.services[service], Path(self.tls["ca"]), Path(self.tls["cert"]), Path(self.tls["key"]), server=service
        )

    def s3_keys(self) -> tuple[str, str]:
        data = json.loads(Path(self.s3_credentials).read_text())
        return data["access_key"], data["secret_key"]

    def s3_client(self) -> Minio:
        """A ``minio`` client of the stack's S3 server (``s3_endpoint``: ``host:port`` or a URL)."""
        from minio import Minio

        access, secret = self.s3_keys()
        endpoint, secure = self.s3_endpoint, False
        if "://" in endpoint:
            parts = urlsplit(endpoint)
            endpoint, secure = parts.netloc, parts.scheme == "https"
        return Minio(endpoint, access_key=access, secret_key=secret, secure=secure)


def shown(path: Path) -> str:
    """A path relative to the working directory when it lies below it (``var/pki/ca.pem``)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())
