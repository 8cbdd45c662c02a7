"""`.env.example` documents every variable the code reads, with its default, and commits no
secret.

"Reads" means both what each package's settings object declares (its fields, under the
`PEEBOT_` prefix or their own alias) and any `PEEBOT_*` name written in the code or in the
instance config, so a variable can be found neither way without being documented. The
variables of the build, CI, the tests and the benches are read from the environment only, not
from `.env`: the example documents them too, in comment lines (`# <variable>=...`)."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("peebot", "peebot_ingest", "peebot_sim", "peebot_dagster", "peebot_iss")
NAME = re.compile(r"PEEBOT_[A-Z0-9_]*[A-Z0-9]\b")
# Dagster's own variable: documented by Dagster, set by `peebot up`.
NOT_OURS = {"DAGSTER_HOME"}
# Read from the environment only: the wheel's build hook, CI's scripts, the tests, the benches.
OUTSIDE_THE_PACKAGES = ("hatch_build.py", ".ci", "tests", "bench")


def _documented() -> dict[str, str]:
    out = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _mentioned() -> set[str]:
    """Every name the example writes, in a setting line or a comment line `# NAME=...`."""
    return set(re.findall(r"^#? ?(PEEBOT_[A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.M))


def _settings_classes() -> list[type[BaseSettings]]:
    classes = []
    for package in PACKAGES:
        if not (REPO / package / "settings.py").exists():
            continue
        module = importlib.import_module(f"{package}.settings")
        classes += [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, BaseSettings)
            and value.__module__ == module.__name__
            and not value.__name__.startswith("_")
        ]
    return classes


def _settings_variables() -> set[str]:
    names: set[str] = set()
    for settings in _settings_classes():
        prefix = settings.model_config.get("env_prefix", "")
        for field_name, info in settings.model_fields.items():
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


def test_every_variable_outside_the_packages_is_documented() -> None:
    names: set[str] = set()
    for place in OUTSIDE_THE_PACKAGES:
        path = REPO / place
        for file in [path] if path.is_file() else path.rglob("*"):
            if file.is_file() and file.suffix in (".py", ".sh", "") and "__pycache__" not in file.parts:
                names |= set(NAME.findall(file.read_text(errors="replace")))
    assert "PEEBOT_PURE_PYTHON" in names and "PEEBOT_TEST_TIMESCALEDB_URL" in names  # seen
    missing = sorted(names - _mentioned())
    assert missing == [], f"add to .env.example: {missing}"


@pytest.mark.parametrize("settings", _settings_classes(), ids=lambda c: c.__module__)
def test_the_example_values_are_the_defaults(
    settings: type[BaseSettings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [n for n in os.environ if n.startswith("PEEBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no `.env` of the developer's
    # an empty value in the example means unset
    assert settings(_env_file=REPO / ".env.example") == settings(_env_file=None)  # type: ignore[call-arg]


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
