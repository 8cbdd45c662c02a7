"""TimescaleDB helpers shared by the fixtures and the tests."""

from __future__ import annotations

import psycopg


def pause_timescaledb_jobs(url: str) -> None:
    """Stop the background scheduler from running this database's jobs: tests run them
    themselves (`peebot db maintain`) and never wait for, or race, the scheduler."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT alter_job(job_id, scheduled => false) "
            "FROM timescaledb_information.jobs WHERE job_id >= 1000"
        )
