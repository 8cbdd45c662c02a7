"""The database as a Dagster resource: short-lived psycopg 3 connections to PeeBot's database.

Resource key `db` everywhere (assets, checks, sensors, posting ops).
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import psycopg

from peebot_dagster.settings import get_settings


class PostgresResource(dg.ConfigurableResource):  # type: ignore[misc]
    """PeeBot's PostgreSQL, one short-lived connection per use.

    `dsn` unset (as deployed): `PEEBOT_DATABASE_URL`, read when a connection is made, so the
    URL (it may hold a password) is never part of the resource's config shown in the UI.
    """

    dsn: str | None = None
    connect_timeout: int = 5
    application_name: str = "peebot-dagster"

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A new psycopg 3 connection (use it as a context manager: commits on success)."""
        kwargs.setdefault("connect_timeout", self.connect_timeout)
        kwargs.setdefault("application_name", self.application_name)
        try:
            return psycopg.connect(self._dsn(), **kwargs)
        except psycopg.OperationalError as exc:
            # one line, and never the DSN (it may hold a password)
            lines = str(exc).strip().splitlines()
            reason = lines[-1] if lines else type(exc).__name__
            raise psycopg.OperationalError(
                f"cannot connect to PeeBot's database: {reason}"
            ) from exc

    @property
    def configured(self) -> bool:
        """Whether there is a database to connect to (a DSN, or `PEEBOT_DATABASE_URL`)."""
        return bool(self.dsn) or get_settings().database_url is not None

    def _dsn(self) -> str:
        if self.dsn:
            return self.dsn
        url = get_settings().database_url
        if url is None:
            raise psycopg.OperationalError(
                "cannot connect to PeeBot's database: PEEBOT_DATABASE_URL is not set"
            )
        return url.get_secret_value()


# what a sensor says, in one line, when the code location runs without a database (for
# example `dagster dev` on a fresh clone): a skipped tick, not a traceback every tick
NOT_CONFIGURED = "PEEBOT_DATABASE_URL is not set: no PeeBot database to watch"


def database_resource() -> PostgresResource:
    """The resource as deployed: the DSN comes from the settings at connect time."""
    return PostgresResource()
