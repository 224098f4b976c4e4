"""Process settings, from ``DINHDANH_*`` environment variables (pydantic-settings).

The local stack sets them for each service it starts; in Kubernetes a ConfigMap and Secrets do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.keys.files import FileKeyProvider
from core.keys.provider import KeyUnavailable

if TYPE_CHECKING:
    from core.keys.pkcs11 import TokenKeyProvider


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DINHDANH_", extra="ignore")

    listen: str = "127.0.0.1:0"
    postgres_dsn: str = ""
    tls_ca: Path = Path("var/pki/ca.pem")
    tls_cert: Path = Path("var/pki/service.pem")
    tls_key: Path = Path("var/pki/service.key")
    registry_address: str = ""
    identity_address: str = ""
    consent_address: str = ""
    log_address: str = ""
    vault_address: str = ""
    judicial_address: str = ""
    issuance_address: str = ""
    health_address: str = ""
    issuer: str = ""  # the OpenID Provider's public URL (the HTTP edge)
    mtls_listen: str = ""  # the edge: host:port of its mutual-TLS endpoints for agencies (RFC 8705 §5); "" none
    keys_dir: Path | None = None  # this process's keys, one file per purpose (core.keys.files)
    key_backend: Literal["files", "pkcs11"] = "files"  # where signing keys live: seeds in keys_dir, or a token
    pkcs11_module: Path = Path("/usr/lib/softhsm/libsofthsm2.so")  # the PKCS#11 library (core/keys/pkcs11.py)
    pkcs11_token: str = ""  # the token's label
    pkcs11_pin_file: Path | None = None  # a file holding the user PIN (a mounted Secret in Kubernetes)
    argon2_workers: int = Field(default=0, ge=0)  # 0: one per core
    db_pool_size: int = Field(default=10, ge=1)
    log_level: str = "info"
    metrics_listen: str = ""  # host:port of this process's Prometheus /metrics (core/metrics.py); "" none
    tracing: str = ""  # OpenTelemetry traces (core/tracing.py): "" off; otherwise where spans go
    trusted_proxies: str = ""  # the edge: CIDRs whose X-Forwarded-For it believes (none by default)
    device_mints_per_hour: float = Field(default=120, gt=0)  # the edge: new device ids per client address
    device_mint_burst: int = Field(default=60, ge=1)  # the edge: … of which at once
    argon2_queue: int = Field(default=0, ge=0)  # hashes waiting or running before "busy"; 0: 16 per worker
    s3_endpoint: str = ""  # host:port of the S3 server (the vault's object store)
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_secure: bool = False  # TLS to S3 (off for the loopback SeaweedFS of the local stack)
    vault_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1)  # largest document the vault accepts
    vault_retention_days: float = Field(default=30, ge=0)  # deleted or shredded documents, until purged
    vault_upload_grace: float = Field(default=3600, gt=0)  # seconds an upload may take before it is swept
    vault_upkeep_interval: float = Field(default=300, ge=0)  # seconds between purge/sweep rounds; 0: never
    vault_max_open_uploads: int = Field(default=4, ge=1)  # uploads one citizen may have open at once (per process)
    vault_upload_idle_timeout: float = Field(default=30, gt=0)  # seconds an upload stream may send nothing
    consent_expiry_interval: float = Field(default=2, ge=0)  # seconds between expiry sweeps; 0: never
    consent_notify_interval: float = Field(default=0.5, ge=0)  # seconds between outbox rounds; 0: never send
    consent_notify_initial_backoff: float = Field(default=1, gt=0)  # first retry after ~this many seconds
    consent_notify_max_backoff: float = Field(default=300, gt=0)  # the back-off doubles up to this
    consent_notify_give_up: float = Field(default=86400, gt=0)  # seconds after which a notification is dropped
    consent_notify_timeout: float = Field(default=10, gt=0)  # seconds one POST may take
    consent_notify_loopback_http: bool = False  # allow http://127.0.0.1 / localhost URLs (the local stack sets it)


def key_provider(settings: Settings) -> FileKeyProvider | TokenKeyProvider:
    """The keys this process was given (``DINHDANH_KEYS_DIR``), its signing keys in a PKCS#11 token when
    ``DINHDANH_KEY_BACKEND=pkcs11``; a missing folder, token or wrong PIN stops the start with one line."""
    if settings.keys_dir is None:
        raise SystemExit("DINHDANH_KEYS_DIR is not set: the folder of this process's keys (core/keys/files.py)")
    try:
        files = FileKeyProvider.in_folder(settings.keys_dir)
        if settings.key_backend == "files":
            return files
        from core.keys.pkcs11 import Token, TokenKeyProvider  # python-pkcs11 is loaded only by its users

        token = Token.open(settings.pkcs11_module, settings.pkcs11_token, settings.pkcs11_pin_file)
        return TokenKeyProvider(files, token)
    except (KeyUnavailable, ValueError, RuntimeError) as error:
        raise SystemExit(str(error)) from None
