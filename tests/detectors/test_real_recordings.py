"""Detectors on the real recordings in ../shared/data/iss/ (see its SOURCES.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from peebot_dagster.detectors.base import window_frame
from peebot_dagster.detectors.registry import PROCESSORS
from peebot_dagster.detectors.upa import UPA_CYCLE
from peebot_dagster.detectors.urine import URINE_TANK
from peebot_dagster.detectors.water import CLEAN_WATER
from peebot_ingest.recordings import read_recording, to_frame

MIMIC_ARCHIVE = Path("iss-mimic-2018") / "Pi" / "RecordedData" / "Data" / "Archive"

# Every rise of 2 % or more that holds in the 2023 recording, labelled by reading the file
# (value before -> value held after, first reading of the rise). Pumped rises are transfers.
RISES_2023 = [
    ("2023-09-18 23:30:17", 16, 20, "urination"),  # right after a 21 min recorder gap
    ("2023-09-18 23:39:10", 18, 31, "bulk_transfer"),  # +13 in 42 s at 1 %/3.5 s
    ("2023-09-19 00:27:25", 20, 24, "urination"),
    ("2023-09-19 01:29:04", 11, 13, "urination"),  # +2 during the drain
    ("2023-09-19 02:10:16", 5, 8, "urination"),  # slow: 90 s, UPA in standby
    ("2023-09-19 06:28:12", 8, 12, "urination"),  # after 4 h of silence (no change)
    ("2023-09-19 07:15:20", 12, 71, "bulk_transfer"),
    ("2023-09-19 07:57:59", 68, 75, None),  # only across a 33 min recorder gap
    ("2023-09-19 08:49:41", 64, 67, "urination"),
    ("2023-09-19 10:08:05", 51, 54, "urination"),
    ("2023-09-19 12:02:42", 38, 43, "urination"),  # the last minutes of the recording
]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def frame_2023(shared_data: Path) -> pd.DataFrame:
    issp = shared_data / "issp-2023"
    files = [issp / "public/data/NODE3000005.txt", issp / "NODE3000005.txt"]
    files.append(issp / "public/data/NODE3000004.txt")
    readings = [r for f in files for r in read_recording(f).readings]
    return to_frame(readings)


def test_every_held_rise_of_two_percent_is_found_and_nothing_else(frame_2023) -> None:
    events = URINE_TANK.detect(frame_2023)
    found = {e.start: e for e in events}
    assert len(events) == len(RISES_2023), [(e.start, e.event_type) for e in events]
    for when, before, after, kind in RISES_2023:
        e = found[_utc(when)]
        assert e.metadata["step_before"] == before and e.metadata["step_peak"] == after
        if kind is not None:
            assert e.event_type == kind
        else:
            assert "rise_across_silence" in e.metadata["flags"] and e.confidence <= 0.3


def _flip_stretches(frame: pd.DataFrame) -> list[tuple[datetime, datetime]]:
    """Maximal runs of >= 4 tank readings spanning at most two neighbouring integers."""
    tank = frame[frame["item_id"] == "NODE3000005"].reset_index(drop=True)
    out, i = [], 0
    while i < len(tank):
        j = i
        lo = hi = tank.at[i, "value"]
        while j + 1 < len(tank):
            v = tank.at[j + 1, "value"]
            if max(hi, v) - min(lo, v) > 1:
                break
            lo, hi, j = min(lo, v), max(hi, v), j + 1
        if j - i >= 3:
            out.append((tank.at[i, "ts"].to_pydatetime(), tank.at[j, "ts"].to_pydatetime()))
        i = j + 1
    return out


def test_no_event_inside_stretches_where_the_value_only_flips(frame_2023) -> None:
    stretches = _flip_stretches(frame_2023)
    assert len(stretches) > 40  # the recording is mostly flips and drain steps
    for e in URINE_TANK.detect(frame_2023):
        for lo, hi in stretches:
            assert not (lo < e.start <= hi and e.end is not None and e.end <= hi), (e, lo, hi)


@pytest.mark.parametrize("window_min,offset_s", [(5, 0), (7, 131), (60, 0), (60, 1777)])
def test_windowed_detection_equals_whole_recording(frame_2023, window_min, offset_s) -> None:
    whole = {(e.event_key, e.event_type) for e in URINE_TANK.detect(frame_2023)}
    first = frame_2023["ts"].min().to_pydatetime().replace(second=0, microsecond=0)
    last = frame_2023["ts"].max().to_pydatetime()
    horizon = last
    start = first - timedelta(seconds=offset_s)
    step = timedelta(minutes=window_min)
    owned: list = []
    while start <= last:
        end = start + step
        sub = window_frame(frame_2023, start, end, URINE_TANK.lookback, URINE_TANK.lookahead)
        owned += URINE_TANK.detect_window(
            sub, start, end, horizon=min(end + URINE_TANK.lookahead, horizon)
        )
        start = end
    keys = [(e.event_key, e.event_type) for e in owned]
    assert len(keys) == len(set(keys))
    assert set(keys) == whole


def test_upa_cycles_and_drain_rates_2023(frame_2023) -> None:
    events = UPA_CYCLE.detect(frame_2023)
    assert [(e.event_type, e.start) for e in events] == [
        ("upa_cycle_stop", _utc("2023-09-19 02:09:38")),
        ("upa_cycle_start", _utc("2023-09-19 07:18:20")),
    ]
    stop = events[0].metadata
    # 1 % per 4-5 min before the stop: -12..-15 %/h
    assert -16 < stop["drain_pct_per_hour"] < -11
    assert stop["state_before_name"] == "NORMAL" and stop["state_after_name"] == "STANDBY"


def test_clean_water_draws_2018(shared_data: Path) -> None:
    mimic = shared_data / MIMIC_ARCHIVE
    rec = read_recording(mimic / "NODE3000009.txt", year=2018)
    events = CLEAN_WATER.detect(to_frame(rec.readings))
    assert [e.event_type for e in events] == ["clean_water_draw"] * 3
    for e in events:
        assert -5.6 < e.metadata["delta"] < -5.2
        assert e.confidence > 0.9
    # the waste-water tank in the same recording has no steps
    waste = read_recording(mimic / "NODE3000008.txt", year=2018)
    assert CLEAN_WATER.detect(to_frame(waste.readings)) == []


def test_all_processors_run_on_all_recordings(shared_data: Path) -> None:
    for path in sorted(shared_data.rglob("NODE*.txt")):
        frame = to_frame(read_recording(path, year=2018).readings)
        for p in PROCESSORS:
            for e in p.detect(frame):
                assert 0.0 <= e.confidence <= 1.0
                assert e.event_type in p.event_types
