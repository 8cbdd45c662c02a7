"""`peebot replay --into-db` with the shared real recordings, `peebot export` round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from peebot.cli import cli
from peebot_ingest.recordings import read_recording


@pytest.fixture
def wallclock(shared_data: Path) -> list[str]:
    """The 2023 recording's files (wall-clock lines)."""
    return sorted(str(p) for p in (shared_data / "issp-2023").rglob("*.txt"))


@pytest.fixture
def mimic(shared_data: Path) -> list[str]:
    """The 2018 ISS Mimic recording's files (TimeStamp lines, year 2018)."""
    return sorted(str(p) for p in (shared_data / "iss-mimic-2018").rglob("*.txt"))


def _rows(url: str) -> set[tuple]:
    with psycopg.connect(url) as conn:
        return set(
            conn.execute(
                "SELECT c.item_id, r.ts, r.value, r.status_class, r.calibrated_data "
                "FROM telemetry_reading r JOIN telemetry_channel c ON c.id = r.channel_id"
            ).fetchall()
        )


def _expected(paths: list[str], year: int | None = None) -> set[tuple]:
    out = set()
    for path in paths:
        rec = read_recording(path, year=year)
        out |= {(r.item_id, r.ts, r.value, None, None) for r in rec.readings}
    return out


def test_replay_real_recordings_loads_exactly_the_valid_lines(
    db_env: str, wallclock: list[str], mimic: list[str]
) -> None:
    assert wallclock and mimic, "the shared recordings are there but hold no .txt files"
    runner = CliRunner()
    first = runner.invoke(cli, ["replay", *wallclock])
    assert first.exit_code == 0, first.output
    second_files = runner.invoke(cli, ["replay", "--year", "2018", *mimic])
    assert second_files.exit_code == 0, second_files.output
    expected = _expected(wallclock) | _expected(mimic, 2018)
    rows = _rows(db_env)
    assert rows == expected
    lines = sum(len(read_recording(p, year=2018).readings) for p in wallclock + mimic)
    # identical lines (same item, second and value) are one reading
    assert "loaded" in first.output and len(rows) <= lines
    again = runner.invoke(cli, ["replay", *wallclock, "--year", "2018", *mimic])
    assert again.exit_code == 0, again.output
    assert "loaded 0," in again.output
    assert f"duplicates {lines}," in again.output
    assert _rows(db_env) == expected
    with psycopg.connect(db_env) as conn:
        watermark = conn.execute(
            "SELECT last_processed_at FROM processor_state WHERE processor_name = 'ingest'"
        ).fetchone()[0]
    assert watermark == max(r[1] for r in expected)


def test_malformed_lines_are_reported_not_fatal_unless_strict(db_env: str, tmp_path: Path) -> None:
    bad = tmp_path / "NODE3000005.txt"
    bad.write_text(
        "2023-09-19-11:26:45 44\n2023-09-19-11:26:48 forty\nnot-a-time 3\n2023-09-19-11:26:49 45\n"
    )
    runner = CliRunner()
    strict = runner.invoke(cli, ["replay", "--strict", str(bad)])
    assert strict.exit_code == 1 and "--strict" in strict.output
    assert not _rows(db_env)
    result = runner.invoke(cli, ["replay", str(bad)])
    assert result.exit_code == 0, result.output
    assert f"{bad}:2:" in result.output and f"{bad}:3:" in result.output
    assert "loaded 2," in result.output and "2 malformed" in result.output
    runner.invoke(cli, ["replay", str(bad)])  # a second run records nothing new
    with psycopg.connect(db_env) as conn:
        reasons = [r[0] for r in conn.execute("SELECT reason FROM rejected_update")]
    assert len(reasons) == 2 and all(str(bad) in r for r in reasons)


def test_export_then_replay_round_trips(
    db_env: str,
    tmp_path: Path,
    pg_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    wallclock: list[str],
) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["replay", *wallclock]).exit_code == 0
    inject = runner.invoke(
        cli,
        [
            "inject",
            "NODE3000004",
            "16",
            "--at",
            "2023-09-19T03:00:00.123456Z",
            "--status-class",
            "24",
        ],
    )
    assert inject.exit_code == 0, inject.output
    original = _rows(db_env)
    out = tmp_path / "export.csv"
    result = runner.invoke(
        cli,
        [
            "export",
            "--from",
            "2023-09-18T00:00:00Z",
            "--to",
            "2023-09-20T00:00:00Z",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0] == "item_id,ts,value,status_class,calibrated_data"
    assert len(lines) == len(original) + 1
    # the same database: nothing new
    same = runner.invoke(cli, ["replay", str(out)])
    assert "loaded 0," in same.output, same.output
    # a fresh database: exactly the same readings
    import uuid

    from peebot_ingest import migrations

    name = f"peebot_rt_{uuid.uuid4().hex[:8]}"
    fresh = pg_server.create_database(name)
    try:
        migrations.migrate(fresh, timescale="off")
        monkeypatch.setenv("PEEBOT_DATABASE_URL", fresh)
        loaded = runner.invoke(cli, ["replay", str(out)])
        assert loaded.exit_code == 0, loaded.output
        assert _rows(fresh) == original
        subset = runner.invoke(
            cli,
            [
                "export",
                "--from",
                "2023-09-19T00:00:00Z",
                "--to",
                "2023-09-19T04:00:00Z",
                "--items",
                "NODE3000004",
            ],
        )
        assert subset.output.splitlines()[1:] == [
            "NODE3000004,2023-09-19T02:09:38Z,32.0,,",
            "NODE3000004,2023-09-19T03:00:00.123456Z,16.0,24,",
        ]
    finally:
        pg_server.drop_database(name)
