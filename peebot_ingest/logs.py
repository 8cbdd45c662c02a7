"""The daemon's logs: one structured line per event on stderr, key=value or JSON."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from peebot_ingest.settings import get_settings


def configure_logging(fmt: str | None = None, level: str | None = None) -> None:
    """Structured one-line logs on stderr: key=value (default) or JSON; `fmt` and `level`
    default to the settings (PEEBOT_LOG_FORMAT, PEEBOT_LOG_LEVEL)."""
    settings = get_settings()
    fmt = (fmt or settings.log_format).strip().lower()
    level_name = (level or settings.log_level).upper()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.processors.KeyValueRenderer(key_order=["ts", "level", "event"])
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", key="ts"),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level_name, logging.INFO))
    structlog.configure(
        processors=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", key="ts"),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
