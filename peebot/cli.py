"""`peebot`: the command line, and the composition root of the two packages.

Subcommands live in `peebot/commands/<name>.py` and are imported only when used, so
`peebot --help` and light commands stay fast (Dagster and pandas are slow to import).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click
from dotenv import load_dotenv

# name -> (module, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "up": (
        "peebot.commands.up",
        "up",
        "Run the whole stack: database, feed, ingest, Dagster.",
    ),
    "ingest": (
        "peebot.commands.ingest",
        "ingest",
        "Stream ISS Live into the database (daemon).",
    ),
    "inject": (
        "peebot.commands.ingest",
        "inject",
        "Write one manual reading through the ingest path.",
    ),
    "simulate": (
        "peebot.commands.simulate",
        "simulate",
        "Serve a simulated ISS Live feed (TLCP) locally.",
    ),
    "replay": ("peebot.commands.replay", "replay", "Load or serve recordings of the feed."),
    "export": (
        "peebot.commands.replay",
        "export",
        "Export readings as CSV that replay reads back.",
    ),
    "detect": (
        "peebot.commands.detect",
        "detect",
        "Run the detectors over recordings, no database.",
    ),
    "status": (
        "peebot.commands.status",
        "status",
        "One-screen health of ingest, events and posts.",
    ),
    "posts": ("peebot.commands.posts", "posts", "List, retry or skip social posts."),
    "db": ("peebot.commands.db", "db", "Database: migrate, status, url, policy, maintain, stop."),
    "dashboard": (
        "peebot.commands.dashboard",
        "dashboard",
        "Serve the live web dashboard (page, WebSocket, JSON API).",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module_name, attr, help_text = spec
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise

            @click.command(cmd_name, help=help_text)
            def missing() -> None:
                raise click.ClickException(f"`peebot {cmd_name}` is not available in this build")

            return missing
        command: click.Command = getattr(module, attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False),
    default=".env",
    show_default=True,
    help="Read environment variables from this file (existing variables win).",
)
def cli(env_file: str) -> None:
    """PeeBot: ISS urine tank telemetry, detected and joked about."""
    load_dotenv(env_file, override=False)


def main(argv: list[str] | None = None) -> Any:
    from peebot_ingest.db import DatabaseError

    try:
        return cli.main(args=argv, prog_name="peebot", standalone_mode=True)
    except DatabaseError as exc:  # pragma: no cover - standalone_mode handles ClickException
        click.echo(f"peebot: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
