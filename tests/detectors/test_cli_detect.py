"""`peebot detect` over real and crafted recordings."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from peebot.commands.detect import detect


def test_detect_prints_one_json_object_per_event(shared_data: Path) -> None:
    files = [str(p) for p in sorted((shared_data / "issp-2023").rglob("NODE*.txt"))]
    result = CliRunner().invoke(detect, files)
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event_type"] for e in events]
    assert kinds.count("bulk_transfer") == 2 and kinds.count("upa_cycle_start") == 1
    assert kinds.count("urination") == 9
    assert [e["start"] for e in events] == sorted(e["start"] for e in events)
    assert all(e["event_key"].startswith(e["processor"] + ":") for e in events)


def test_detect_reports_bad_lines_and_needs_a_year(tmp_path) -> None:
    path = tmp_path / "NODE3000005.txt"
    path.write_text("2026-03-01-12:00:00 10\nbad line\n2026-03-01-12:00:05 11\n")
    result = CliRunner().invoke(detect, [str(path), "--processor", "urine_tank"])
    assert result.exit_code == 0
    assert f"{path}:2:" in result.stderr and result.stdout == ""
    ts_file = tmp_path / "NODE3000009.txt"
    ts_file.write_text("6844.9 50.0\n")
    result = CliRunner().invoke(detect, [str(ts_file)])
    assert result.exit_code != 0 and "year" in result.output
    result = CliRunner().invoke(detect, [str(path), "--processor", "nope"])
    assert result.exit_code != 0
