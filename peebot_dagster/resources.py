"""The database as a Dagster resource: short-lived psycopg 3 connections to PeeBot's database.

Resource key `db` everywhere (assets, checks, sensors, posting ops).
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import psycopg


class PostgresResource(dg.ConfigurableResource):  # type: ignore[misc]
    """PeeBot's PostgreSQL (`PEEBOT_DATABASE_URL`), one short-lived connection per use."""

    dsn: str
    connect_timeout: int = 5
    application_name: str = "peebot-dagster"

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A new psycopg 3 connection (use it as a context manager: commits on success)."""
        kwargs.setdefault("connect_timeout", self.connect_timeout)
        kwargs.setdefault("application_name", self.application_name)
        try:
            return psycopg.connect(self.dsn, **kwargs)
        except psycopg.OperationalError as exc:
            # one line, and never the DSN (it may hold a password)
            lines = str(exc).strip().splitlines()
            reason = lines[-1] if lines else type(exc).__name__
            raise psycopg.OperationalError(
                f"cannot connect to PeeBot's database: {reason}"
            ) from exc


def database_resource() -> PostgresResource:
    """The resource as deployed: the DSN comes from the environment at run time."""
    return PostgresResource(dsn=dg.EnvVar("PEEBOT_DATABASE_URL"))
