"""Structured logging: one JSON object a line (structlog). Callers pass facts, never secrets."""

from __future__ import annotations

import logging
import sys

import structlog

from core import tracing


class _CurrentStderr:
    """``sys.stderr`` as it is when a line is written, not when logging was configured: a command run in-process
    (a test's CliRunner) swaps the stream and closes its own afterwards, which must not break later log lines."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(service: str, level: str = "info") -> None:
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,  # request_id (core/request_id.py), service
            tracing.log_ids,  # trace_id, span_id while tracing is on
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


def get(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
