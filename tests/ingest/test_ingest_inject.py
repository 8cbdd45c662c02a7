"""`peebot inject`: one manual reading through the ingest path; twice adds one row."""

from __future__ import annotations

import psycopg
from click.testing import CliRunner

from peebot.cli import cli


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM telemetry_reading").fetchone()[0])


def test_inject_twice_adds_one_row(db_env: str) -> None:
    runner = CliRunner()
    args = ["inject", "NODE3000005", "47", "--at", "2026-03-01T12:00:00Z", "--status-class", "24"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "written" in first.output
    second = runner.invoke(cli, args)
    assert second.exit_code == 0, second.output
    assert "already present" in second.output
    assert _count(db_env) == 1
    with psycopg.connect(db_env) as conn:
        row = conn.execute(
            "SELECT c.item_id, r.ts::text, r.value, r.status_class, r.metadata "
            "FROM telemetry_reading r JOIN telemetry_channel c ON c.id = r.channel_id"
        ).fetchone()
    assert row[:4] == ("NODE3000005", "2026-03-01 12:00:00+00", 47.0, 24)
    assert row[4]["manual"] is True


def test_inject_bad_value_is_rejected_and_recorded(db_env: str) -> None:
    result = CliRunner().invoke(cli, ["inject", "NODE3000005", "lots"])
    assert result.exit_code == 1
    assert "rejected" in result.output and "Value" in result.output
    with psycopg.connect(db_env) as conn:
        assert conn.execute("SELECT source FROM rejected_update").fetchone()[0] == "inject"
    assert _count(db_env) == 0


def test_inject_accepts_an_iss_timestamp(db_env: str) -> None:
    result = CliRunner().invoke(cli, ["inject", "NODE3000005", "12", "--at", "nonsense"])
    assert result.exit_code == 2 and "--at" in result.output
    ok = CliRunner().invoke(cli, ["inject", "NEWITEM_9", "1.5", "--at", "1000.5"])
    assert ok.exit_code == 0, ok.output
    with psycopg.connect(db_env) as conn:
        row = conn.execute(
            "SELECT extract(doy FROM r.ts AT TIME ZONE 'UTC'), c.in_catalog FROM telemetry_reading r "
            "JOIN telemetry_channel c ON c.id = r.channel_id"
        ).fetchone()
    assert row == (41, False)  # 1000.5 h: day 41, 16:30 UTC; a new, uncatalogued item
