"""One module per `peebot` subcommand (see peebot_ingest/cli.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def one_line_errors(func: F) -> F:
    """Turn the project's expected errors into one clear line and exit status 2."""
    from peebot_ingest.db import DatabaseError
    from peebot_ingest.settings import SettingsError

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (DatabaseError, SettingsError) as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]
