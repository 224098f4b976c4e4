"""The transparency log's settings (``DINHDANH_LOG_*``), read by the log service and the edge."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BUCKET = "dinhdanh-log"


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DINHDANH_LOG_", extra="ignore")

    origin: str = "dinhdanh.gov.vn/log"  # the checkpoint origin and the signing key's name (C2SP tlog-checkpoint)
    bucket: str = DEFAULT_BUCKET  # the S3 bucket of tiles, entry bundles, checkpoint and verifier key
    batch_size: int = Field(default=1000, ge=1, le=10_000)  # events sequenced per transaction, at most
    checkpoint_interval: float = Field(default=1.0, gt=0)  # seconds between checkpoints, at least
