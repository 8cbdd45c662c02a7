"""The backends by name (`PEEBOT_POST_BACKENDS`), and building the selected ones."""

from __future__ import annotations

from collections.abc import Sequence

from peebot_dagster.posting.backends.base import Backend, MissingCredentials
from peebot_dagster.posting.backends.bluesky import BlueskyBackend
from peebot_dagster.posting.backends.dry_run import DryRunBackend
from peebot_dagster.posting.backends.mastodon import MastodonBackend
from peebot_dagster.posting.backends.x import XBackend
from peebot_dagster.settings import Settings

BACKEND_CLASSES: dict[str, type[Backend]] = {
    "dry_run": DryRunBackend,
    "x": XBackend,
    "bluesky": BlueskyBackend,
    "mastodon": MastodonBackend,
}
# The names settings.py accepts (POST_BACKENDS) are the ones built here; a test holds them
# equal (settings.py cannot import the backends: they read it).


def build_backends(names: Sequence[str], settings: Settings) -> dict[str, Backend]:
    """The selected backends, built from the settings.

    Refuses to start (MissingCredentials) when any selected backend lacks a variable; the
    error names every missing variable of every backend at once, never a value.
    """
    out: dict[str, Backend] = {}
    problems: list[MissingCredentials] = []
    for name in names:
        cls = BACKEND_CLASSES.get(name)
        if cls is None:
            raise ValueError(f"unknown posting backend {name!r}")
        try:
            out[name] = cls.from_settings(settings)
        except MissingCredentials as exc:
            problems.append(exc)
    if problems:
        for b in out.values():
            b.close()
        if len(problems) == 1:
            raise problems[0]
        missing = [v for p in problems for v in p.missing]
        err = MissingCredentials(", ".join(p.backend for p in problems), missing)
        raise err
    return out
