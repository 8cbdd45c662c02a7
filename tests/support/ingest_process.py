"""The environment of `peebot ingest` run as a subprocess by tests and benches: the test
database, the project's TLCP server, JSON logs, a journal in the test's folder."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def ingest_env(url: str, feed_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    """`os.environ` plus what a test daemon needs; `extra` overrides (PEEBOT_* names)."""
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PEEBOT_DATABASE_URL": url,
        "PEEBOT_FEED_URL": feed_url,
        "PEEBOT_FEED_FAST_RECONNECT": "on",
        "PEEBOT_CLOCK_CHECK": "off",
        "PEEBOT_LOG_FORMAT": "json",
        "PEEBOT_SUMMARY_SECONDS": "0.5",
        "PEEBOT_JOURNAL_DIR": str(tmp / "journal"),
        **extra,
    }
