"""`.env.example` documents every variable the code reads, and commits no secret.

"Reads" means both what each package's settings object declares (its fields, under the
`PEEBOT_` prefix or their own alias) and any `PEEBOT_*` name written in the code or in the
instance config, so a variable can be found neither way without being documented."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("peebot", "peebot_ingest", "peebot_sim", "peebot_dagster", "peebot_iss")
NAME = re.compile(r"PEEBOT_[A-Z0-9_]*[A-Z0-9]\b")
# Dagster's own variable: documented by Dagster, set by `peebot up`.
NOT_OURS = {"DAGSTER_HOME"}


def _documented() -> dict[str, str]:
    out = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _settings_variables() -> set[str]:
    names: set[str] = set()
    for package in PACKAGES:
        if not (REPO / package / "settings.py").exists():
            continue
        module = importlib.import_module(f"{package}.settings")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseSettings)
                and value is not BaseSettings
            ):
                prefix = value.model_config.get("env_prefix", "")
                for field_name, info in value.model_fields.items():
                    alias = info.validation_alias or info.alias
                    names.add(alias if isinstance(alias, str) else f"{prefix}{field_name}".upper())
    return names - NOT_OURS


def _used() -> set[str]:
    names: set[str] = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            names |= set(NAME.findall(path.read_text()))
    names |= set(NAME.findall((REPO / "peebot" / "config" / "dagster.yaml").read_text()))
    return names | _settings_variables()


def test_settings_objects_are_seen() -> None:
    # the check below is only as good as this: every package's settings are found
    assert "PEEBOT_HOME" in _settings_variables()


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
