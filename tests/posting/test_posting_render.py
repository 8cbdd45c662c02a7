"""The joke generator: deterministic, always carries the facts, fits every backend."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peebot_dagster.posting import render
from peebot_dagster.posting.render import EventView

# Names that must never appear (crew of recent expeditions, and a sample of the public list).
CREW_NAMES = (
    "Kimbrough",
    "Pesquet",
    "Hoshide",
    "Vande Hei",
    "Williams",
    "Wilmore",
    "Pettit",
    "Ovchinin",
    "Dubrov",
    "Novitskiy",
    "Hague",
    "Ayers",
    "Koichi",
    "Sunita",
    "Butch",
)


def ev(key: str = "urine_tank:NODE3000005:2026-11-27T12:00:00Z", **md: float) -> EventView:
    metadata = {"level_before": 40.0, "level_after": 42.5, "delta": 2.5, "volume_ml": 200}
    metadata.update(md)
    return EventView(key, "urination", datetime(2026, 11, 27, 12, 3, 30, tzinfo=UTC), metadata)


def test_data_file_has_enough_templates_and_its_own_bulk_set() -> None:
    jokes = render.load_jokes()
    assert len(jokes.templates["urination"]) >= 30
    assert len(set(jokes.templates["urination"])) == len(jokes.templates["urination"])
    assert len(jokes.templates["bulk_transfer"]) >= 5
    assert not set(jokes.templates["bulk_transfer"]) & set(jokes.templates["urination"])
    for template in (*jokes.templates["urination"], *jokes.templates["bulk_transfer"]):
        assert "@" not in template and "http" not in template.lower() and "www." not in template
        assert not any(name.lower() in template.lower() for name in CREW_NAMES)


def test_same_event_same_text_and_keys_spread_over_templates() -> None:
    a = render.render(ev(), "x")
    assert a == render.render(ev(), "x") == render.render(ev(), "bluesky")
    picks = {
        render.template_index(f"urine_tank:NODE3000005:2026-11-27T{h:02d}:{m:02d}:00Z", 35)
        for h in range(24)
        for m in range(0, 60, 7)
    }
    assert len(picks) >= 30  # the event key really chooses


def test_facts_line_carries_change_volume_and_utc_time() -> None:
    text = render.render(ev(), "x")
    assert text.endswith("Urine tank 40.0% -> 42.5% (+2.5 pts, ~200 mL), 2026-11-27 12:03 UTC.")
    # volume estimated from the change when the detector gave none (80 mL per %)
    no_volume = render.render(ev(volume_ml=float("nan"), delta=3.0, level_after=43.0), "x")
    assert "(+3.0 pts, ~240 mL)" in no_volume
    # a time zone other than UTC is converted
    other = EventView(
        "k",
        "urination",
        datetime(2026, 11, 27, 14, 3, tzinfo=UTC).astimezone(
            __import__("zoneinfo").ZoneInfo("Europe/Berlin")
        ),
        {"delta": 1.0},
    )
    assert "2026-11-27 14:03 UTC" in render.render(other)


def test_bulk_transfer_uses_its_own_jokes() -> None:
    bulk = EventView(
        "k:bulk",
        "bulk_transfer",
        datetime(2026, 11, 27, 1, 0, tzinfo=UTC),
        {"level_before": 30, "level_after": 55, "delta": 25},
    )
    text = render.render(bulk)
    joke = text.splitlines()[0]
    assert joke in render.load_jokes().templates["bulk_transfer"]
    assert "~2000 mL" in text


def test_missing_level_change_is_a_clear_error() -> None:
    with pytest.raises(render.RenderError, match="no level change"):
        render.render(EventView("k", "urination", datetime(2026, 1, 1, tzinfo=UTC), {}))
    with pytest.raises(render.RenderError, match="time zone"):
        render.render(EventView("k", "urination", datetime(2026, 1, 1), {"delta": 1}))


def test_x_weighted_length_counts_like_x() -> None:
    assert render.x_weighted_length("hello") == 5
    assert render.x_weighted_length("日本語") == 6  # CJK weight 2
    assert render.x_weighted_length("🚽") == 2  # an emoji is 2
    assert render.x_weighted_length("👩‍🚀") == 2  # a ZWJ sequence is one emoji
    assert render.x_weighted_length("é") == render.x_weighted_length("e\u0301") == 1  # NFC first
    assert render.x_weighted_length("–’") == 2  # punctuation in the light ranges
    assert render.x_weighted_length("…") == 2  # U+2026 is outside them
    assert render.grapheme_count("👩‍🚀🇫🇷e\u0301") == 3
    assert render.fits("x", "a" * 280) and not render.fits("x", "a" * 281)
    assert not render.fits("x", "日" * 141) and render.fits("bluesky", "日" * 300)


levels = st.floats(min_value=-5, max_value=105, allow_nan=False)
keys = st.text(min_size=1, max_size=120)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(
    key=keys,
    before=levels,
    delta=st.floats(min_value=-100, max_value=100, allow_nan=False),
    volume=st.one_of(st.none(), st.floats(allow_nan=True), st.integers(-10, 10**9)),
    at=times,
    kind=st.sampled_from(["urination", "bulk_transfer", "upa_cycle_start"]),
)
def test_every_rendered_text_fits_every_backend(
    key: str, before: float, delta: float, volume: float | None, at: datetime, kind: str
) -> None:
    event = EventView(
        key,
        kind,
        at,
        {
            "level_before": before,
            "level_after": before + delta,
            "delta": delta,
            "volume_ml": volume,
        },
    )
    for backend in ("x", "bluesky", "mastodon", "dry_run"):
        text = render.render(event, backend)
        assert text == render.render(event, backend)
        assert render.x_weighted_length(text) <= 280
        assert render.grapheme_count(text) <= 300
        assert len(text) <= 500
        assert f"{delta:+.1f} pts" in text
        assert re.search(r"~\d+ mL", text)
        assert at.strftime("%Y-%m-%d %H:%M UTC") in text
        assert "@" not in text and "http" not in text
        lines = text.splitlines()  # a joke line, then the facts line (not the bare fallback)
        assert len(lines) == 2 and lines[1] == render.facts_line(render.facts_of(event))
        assert "{" not in text and "}" not in text


def test_daily_digest() -> None:
    day = date(2026, 11, 27)
    events = [ev(key=f"k{i}") for i in range(3)]
    events = [
        EventView(e.event_key, e.event_type, e.detected_at + timedelta(hours=i), e.metadata)
        for i, e in enumerate(events)
    ]
    events.append(EventView("b", "bulk_transfer", events[0].detected_at, {"delta": 20.0}))
    text = render.render_digest(day, events)
    assert text.startswith("PeeBot daily digest for 2026-11-27 (UTC): 3 toilet visits")
    assert "about 600 mL" in text and "1 bulk transfers" in text and "net tank change +27.5" in text
    assert "First at 12:03, last at 14:03" in text
    assert render.fits_everywhere(text)
    assert "no toilet visits" in render.render_digest(day, [])
