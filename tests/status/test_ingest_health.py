"""`peebot status`: ingest health from the database."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from peebot.cli import cli
from peebot.status.queries import ingest_health
from peebot_ingest.batch import Batch
from peebot_ingest.db import connect
from peebot_ingest.feedstate import FeedState, SignalConfig
from peebot_ingest.records import ValidatedReading
from peebot_ingest.sink import DatabaseSink
from peebot_ingest.validate import Validator


def test_status_reports_ingest_health(db_env: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    v = Validator(clock_check=False)
    readings = []
    for i in range(30):  # one reading a minute for half an hour
        r = v.reading("NODE3000005", now - timedelta(minutes=i, seconds=5), 40 + i % 3)
        assert isinstance(r, ValidatedReading)
        readings.append(r)
    t = v.reading("TIME_000001", now - timedelta(seconds=2), 1.0, 24)
    assert isinstance(t, ValidatedReading)
    state = FeedState(SignalConfig(clock_check=False))
    transitions = state.on_connection("CONNECTED:WS-STREAMING", time.time())
    transitions += state.on_time_update(t.ts, 24, time.time())
    bad = v.update("NODE3000005", {"TimeStamp": "x"}, time.time())
    sink = DatabaseSink(db_env)
    sink.write(Batch(readings=[*readings, t], rejections=[bad], transitions=transitions))
    sink.close()

    with connect(db_env, autocommit=True) as conn:
        health = ingest_health(conn, now)
    assert health["rows_last_minute"] == 2  # the tank at -5 s and TIME_000001 at -2 s
    assert health["rows_last_hour"] == 31
    assert health["rejected_total"] == 1
    assert health["signal"]["state"] == "AOS"
    assert health["connection"]["state"] == "CONNECTED:WS-STREAMING"
    assert health["lag_s"] == 2.0
    tank = next(i for i in health["items"] if i["item"] == "NODE3000005")
    assert tank["value"] == 40.0 and tank["age_s"] == 5.0
    assert health["watermark"] == t.ts

    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 0, result.output
    assert "AOS" in result.output and "NODE3000005" in result.output
    as_json = CliRunner().invoke(cli, ["status", "--json"])
    assert json.loads(as_json.output)["rows_last_hour"] == 31


def test_status_on_an_empty_database(db_env: str) -> None:
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 0, result.output
    assert "never recorded" in result.output


def test_status_with_database_down_is_one_line(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PEEBOT_DATABASE_URL", "postgresql://x@127.0.0.1:1/none")
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 1
    assert "cannot connect" in result.output and "Traceback" not in result.output
