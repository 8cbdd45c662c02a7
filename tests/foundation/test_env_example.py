"""`.env.example` documents every variable the code reads, and commits no secret."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAME = re.compile(r"PEEBOT_[A-Z0-9_]*[A-Z0-9]\b")


def _documented() -> dict[str, str]:
    out = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _used() -> set[str]:
    names: set[str] = set()
    for folder in ("peebot_ingest", "peebot_dagster"):
        for path in (REPO / folder).rglob("*.py"):
            names |= set(NAME.findall(path.read_text()))
    names |= set(NAME.findall((REPO / "dagster.yaml").read_text()))
    return names


def test_every_variable_the_code_reads_is_documented() -> None:
    missing = sorted(_used() - set(_documented()))
    assert missing == [], f"add to .env.example: {missing}"


def test_no_secret_has_a_value_in_the_example() -> None:
    secrets = {
        k: v for k, v in _documented().items() if re.search(r"SECRET|TOKEN|PASSWORD|KEY$", k)
    }
    assert {
        "PEEBOT_X_CONSUMER_SECRET",
        "PEEBOT_BLUESKY_APP_PASSWORD",
        "PEEBOT_MASTODON_ACCESS_TOKEN",
    } <= set(secrets)
    assert {k for k, v in secrets.items() if v} == set(), "secrets must be empty in .env.example"
