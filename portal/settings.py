"""Portal settings, from ``DINHDANH_PORTAL_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DINHDANH_PORTAL_", extra="ignore", populate_by_name=True)

    issuer: str = "http://localhost:8080"
    metrics_listen: str = ""  # host:port of this portal's Prometheus /metrics (core/metrics.py); "" none
    tracing: str = ""  # OpenTelemetry traces (core/tracing.py): "" off
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    base_url: str = "http://localhost:8081"
    listen: str = "127.0.0.1:8081"
    title: str = "Cổng Dịch vụ công quốc gia (demo)"
    session_key: SecretStr = SecretStr("")
    scope: str = "openid profile address phone national_id"
    # Cookies ignore the port: two portals on localhost need two cookie names.
    cookie_name: str = "portal_session"
    session_max_age: int = Field(default=8 * 3600, ge=60)
    http_timeout: float = Field(default=10.0, gt=0)
    log_level: str = "info"
    # The vault's address and this portal's platform certificate (mutual TLS); with no address, no vault pages.
    vault_address: str = ""
    consent_address: str = ""  # the consent service (the citizen's consent pages); "" no such pages
    log_address: str = ""  # the transparency log (the access history with its proofs)
    issuance_address: str = ""  # the issuance service (certificates, their selective sharing); "" no such pages
    health_address: str = ""  # the health service (the citizen's electronic health book); "" no such pages
    # The log's verifier key (C2SP signed-note "<name>+<hex id>+<base64 key>"); "" fetches it once from the
    # edge's /log/key. ``log_origin``: the checkpoints' expected origin line ("": the key's name).
    log_key: str = ""
    log_origin: str = ""
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    vault_timeout: float = Field(default=60.0, gt=0)
    # Upload request bodies above this many bytes are refused (413) before they reach the vault, whose own
    # limit on a document (20 MiB by default) is lower.
    upload_limit: int = Field(default=32 * 1024 * 1024, ge=1024)
    # The folder of this process's keys (``DINHDANH_KEYS_DIR``, as every process is given it): the portal holds
    # only HOLDER_KEY, from which each citizen's holder key is derived (portal/holder.py); None: no holder keys.
    keys_dir: Path | None = Field(default=None, validation_alias="DINHDANH_KEYS_DIR")

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return f"{self.base_url}/"

    @property
    def metadata_url(self) -> str:
        # OpenID Connect Discovery 1.0 §4: the issuer (exactly as the OP publishes it), less any trailing "/".
        return f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
