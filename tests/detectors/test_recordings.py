"""Recording readers: each format, content-based detection, malformed lines reported."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from peebot_ingest.recordings import (
    CSV_HEADER,
    FORMAT_CSV,
    FORMAT_TIMESTAMP,
    FORMAT_WALLCLOCK,
    RecordingFormatError,
    format_csv_row,
    read_recording,
    to_frame,
)


def test_iss_timestamp_lines_need_a_year_and_decode_to_utc(tmp_path) -> None:
    path = tmp_path / "NODE3000008.txt"
    path.write_text("6844.98852916665 29.6900005340576 \n\n6845.0 29.7\n")
    with pytest.raises(RecordingFormatError, match="year"):
        read_recording(path)
    rec = read_recording(path, year=2018)
    assert rec.format == FORMAT_TIMESTAMP and rec.errors == []
    first, second = rec.readings
    assert first.item_id == "NODE3000008" and first.value == pytest.approx(29.69)
    # day 285 of 2018 is 12 Oct; 6845.0 h = day 285, 05:00
    assert second.ts == datetime(2018, 10, 12, 5, 0, tzinfo=UTC)
    assert first.line == 1 and second.line == 3 and first.raw.startswith("6844.98")


def test_timestamp_rollover_moves_to_the_next_year(tmp_path) -> None:
    path = tmp_path / "NODE3000005.txt"
    path.write_text("8783.9 10\n24.1 11\n")  # 31 Dec 23:54, then 1 Jan 00:06
    rec = read_recording(path, year=2018)
    assert [r.ts.year for r in rec.readings] == [2018, 2019]
    assert rec.readings[1].ts == datetime(2019, 1, 1, 0, 6, tzinfo=UTC)


def test_wallclock_lines(tmp_path) -> None:
    path = tmp_path / "NODE3000005.txt"
    path.write_text("2023-09-18-22:42:18 27\n2023-09-18-22:43:03 26\n")
    rec = read_recording(path)
    assert rec.format == FORMAT_WALLCLOCK
    assert [(r.ts, r.value) for r in rec.readings] == [
        (datetime(2023, 9, 18, 22, 42, 18, tzinfo=UTC), 27.0),
        (datetime(2023, 9, 18, 22, 43, 3, tzinfo=UTC), 26.0),
    ]


def test_malformed_lines_are_reported_with_file_and_line(tmp_path) -> None:
    path = tmp_path / "NODE3000005.txt"
    path.write_text(
        "2023-09-18-22:42:18 27\n"
        "2023-09-18-22:42:19\n"  # no value
        "2023-09-18-25:00:00 27\n"  # hour 25
        "yesterday 28\n"
        "2023-09-18-22:42:20 abc\n"
        "2023-09-18-22:42:21 29 extra\n"
        "2023-09-18-22:42:22 30\n"
    )
    rec = read_recording(path)
    assert [r.value for r in rec.readings] == [27.0, 30.0]
    assert [e.line for e in rec.errors] == [2, 3, 4, 5, 6]
    assert all(e.file == str(path) for e in rec.errors)
    assert "not a number" in rec.errors[3].reason
    assert str(rec.errors[0]).startswith(f"{path}:2: ")


def test_csv_export_round_trips_and_reports_bad_rows(tmp_path) -> None:
    good = [
        ["TIME_000001", "2026-03-01T12:00:00Z", "1440.5", "24", ""],
        ["NODE3000005", "2026-03-01T12:00:01.250000+00:00", "42.0", "", "42 %"],
    ]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_HEADER)
    w.writerows(good)
    w.writerow(["NODE3000005", "2026-03-01T12:00:02", "43", "", ""])  # no UTC offset
    w.writerow(["NODE3000005", "2026-03-01T12:00:03Z", "x", "", ""])
    w.writerow(["NODE3000005", "2026-03-01T12:00:04Z", "44", "twenty", ""])
    w.writerow(["NODE3000005", "2026-03-01T12:00:05Z"])
    path = tmp_path / "export.txt"  # detected from content, not from the name
    path.write_text(buf.getvalue())
    rec = read_recording(path)
    assert rec.format == FORMAT_CSV
    assert [(r.item_id, r.value, r.status_class) for r in rec.readings] == [
        ("TIME_000001", 1440.5, 24),
        ("NODE3000005", 42.0, None),
    ]
    assert rec.readings[1].ts == datetime(2026, 3, 1, 12, 0, 1, 250000, tzinfo=UTC)
    assert rec.readings[1].calibrated_data == "42 %"
    assert [e.line for e in rec.errors] == [4, 5, 6, 7]
    # the writer's rows read back identically
    again = tmp_path / "again.csv"
    again.write_text(
        ",".join(CSV_HEADER) + "\n" + "\n".join(",".join(format_csv_row(r)) for r in rec.readings)
    )
    back = read_recording(again)
    assert [(r.item_id, r.ts, r.value, r.status_class) for r in back.readings] == [
        (r.item_id, r.ts, r.value, r.status_class) for r in rec.readings
    ]


def test_unknown_format_is_refused(tmp_path) -> None:
    path = tmp_path / "NODE3000005.txt"
    path.write_text("hello world\n")
    with pytest.raises(RecordingFormatError):
        read_recording(path)


def test_to_frame_has_the_detector_shape(shared_data: Path) -> None:
    rec = read_recording(shared_data / "issp-2023" / "public" / "data" / "NODE3000004.txt")
    frame = to_frame(rec.readings)
    assert list(frame.columns) == ["item_id", "ts", "value", "status_class"]
    assert str(frame["ts"].dt.tz) == "UTC"
    assert str(frame["status_class"].dtype) == "Int64"
    assert frame["ts"].is_monotonic_increasing
    assert frame["value"].tolist() == [16.0, 32.0, 16.0]
    assert len(to_frame([])) == 0


def test_real_files_parse_without_errors(shared_data: Path) -> None:
    counts = {}
    for path in sorted(shared_data.rglob("NODE*.txt")):
        rec = read_recording(path, year=2018)
        assert rec.errors == []
        counts[path.name] = counts.get(path.name, 0) + len(rec.readings)
    # SOURCES.md: 500 + 57 tank lines, 3 UPA lines, 6,647 + 4,615 water updates
    assert counts == {
        "NODE3000005.txt": 557,
        "NODE3000004.txt": 3,
        "NODE3000008.txt": 6647,
        "NODE3000009.txt": 4615,
    }
