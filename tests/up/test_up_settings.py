"""`peebot up` takes what the operator set from `.env` as well as from the environment: its
own choices (Dagster's storage, dry-run file, a demo's posting gap, the banner) never
override a value written only in `.env`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from peebot.commands.up import dagster_storage_url, posts_line, stack_defaults
from tests.conftest import clear_settings

NAMES = (
    "PEEBOT_DAGSTER_STORAGE_URL",
    "PEEBOT_DRY_RUN_FILE",
    "PEEBOT_POST_MIN_GAP_MINUTES",
    "PEEBOT_POST_BACKENDS",
)


@pytest.fixture
def dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Run in a folder whose `.env` is written by the test; none of NAMES in the
    environment."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)

    def write(text: str) -> None:
        (tmp_path / ".env").write_text(text, encoding="utf-8")
        clear_settings()

    write("")
    return write


def test_dagster_storage_from_dotenv_is_used_as_it_is(dotenv: Callable[[str], None]) -> None:
    dotenv("PEEBOT_DAGSTER_STORAGE_URL=postgresql+psycopg2://dagster@db.example/dagster\n")
    # the application database is unreachable: `up` must not go there to make its own
    assert dagster_storage_url("postgresql://nobody@127.0.0.1:9/none") == (
        "postgresql+psycopg2://dagster@db.example/dagster"
    )


def test_up_fills_in_only_what_the_operator_left_unset(
    dotenv: Callable[[str], None], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    assert stack_defaults(home, simulate=True) == {
        "PEEBOT_DRY_RUN_FILE": str(home / "posts.jsonl"),
        "PEEBOT_POST_MIN_GAP_MINUTES": "1",
    }
    assert "PEEBOT_POST_MIN_GAP_MINUTES" not in stack_defaults(home, simulate=False)
    dotenv("PEEBOT_DRY_RUN_FILE=/srv/peebot/posts.jsonl\nPEEBOT_POST_MIN_GAP_MINUTES=45\n")
    assert stack_defaults(home, simulate=True) == {}


def test_the_banner_tells_the_posting_settings_from_dotenv(
    dotenv: Callable[[str], None], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    dotenv("PEEBOT_POST_BACKENDS=x,bluesky\nPEEBOT_POST_MIN_GAP_MINUTES=45\n")
    assert posts_line({}, home) == "posts        x, bluesky, at least 45 min apart"
    dotenv("PEEBOT_DRY_RUN_FILE=/srv/peebot/posts.jsonl\n")
    env = stack_defaults(home, simulate=True)
    assert posts_line(env, home) == (
        "posts        dry run -> /srv/peebot/posts.jsonl, at least 1 min apart"
    )
