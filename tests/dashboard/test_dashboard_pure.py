"""The dashboard's pure parts and both ends of the NOTIFY contract, without a database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from peebot.dashboard import notifications as contract
from peebot.dashboard import params
from peebot.dashboard.notifications import BadPayload, FeedChange
from peebot.dashboard.queries import fill_quiet_hours, post_url
from peebot.dashboard.state import LiveState, Series, epoch, iso, signal_gaps, toilet_in_use
from peebot_dagster import notify as dagster_notify
from peebot_ingest import notify as ingest_notify

T0 = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


def reading(item: str, seconds: float, value: float) -> SimpleNamespace:
    return SimpleNamespace(item_id=item, ts=T0 + timedelta(seconds=seconds), value=value)


def transition(kind: str, state: str, seconds: float) -> SimpleNamespace:
    at = T0 + timedelta(seconds=seconds)
    return SimpleNamespace(kind=kind, state=state, changed_at=at.timestamp(), feed_ts=at)


def test_the_channel_names_agree_on_both_ends() -> None:
    assert ingest_notify.READINGS_CHANNEL == contract.READINGS_CHANNEL
    assert dagster_notify.EVENTS_CHANNEL == contract.EVENTS_CHANNEL
    assert dagster_notify.POSTS_CHANNEL == contract.POSTS_CHANNEL


def test_what_ingest_sends_the_dashboard_reads() -> None:
    payload = ingest_notify.readings_payload(
        [
            reading("NODE3000005", 2, 41.0),
            reading("TIME_000001", 1, 0.0),
            reading("NODE3000005", 1, 40.0),
            reading("NODE3000004", 1, 16.0),
        ],
        [transition("signal", "AOS", 1)],
        T0 + timedelta(seconds=2),
        4,
        "feed",
    )
    assert payload is not None
    note = contract.parse_readings(payload)
    assert note.watermark == T0 + timedelta(seconds=2) and note.written == 4
    assert note.items == {
        "NODE3000004": [(T0 + timedelta(seconds=1), 16.0)],
        "NODE3000005": [(T0 + timedelta(seconds=1), 40.0), (T0 + timedelta(seconds=2), 41.0)],
    }
    assert note.truncated == frozenset()
    assert note.feed == [
        FeedChange("signal", "AOS", T0 + timedelta(seconds=1), T0 + timedelta(seconds=1))
    ]


def test_a_batch_with_nothing_to_show_sends_nothing() -> None:
    assert ingest_notify.readings_payload([], [], T0, 0, "feed") is None
    # duplicates of other items only: no watermark news for a viewer
    assert ingest_notify.readings_payload([reading("TIME_000001", 1, 0)], [], T0, 0, "feed") is None


def test_long_batches_list_the_newest_readings_and_say_they_were_cut() -> None:
    many = [reading("NODE3000005", s, float(s % 100)) for s in range(5000)]
    payload = ingest_notify.readings_payload(
        many, [transition("signal", "LOS", 1)] * 50, T0, 5000, "replay"
    )
    assert payload is not None and len(payload.encode()) < 8000
    note = contract.parse_readings(payload)
    assert note.truncated == {"NODE3000005", "feed"}
    assert [p[0] for p in note.items["NODE3000005"]] == [
        T0 + timedelta(seconds=s) for s in range(5000 - ingest_notify.MAX_PER_ITEM, 5000)
    ]


def test_what_the_event_store_and_posting_send_the_dashboard_reads() -> None:
    note = contract.parse_events(dagster_notify.events_payload("urine_tank", [3, 1], [2]))
    assert note == contract.EventsNote(frozenset({1, 3}), frozenset({2}), False)
    big = dagster_notify.events_payload("urine_tank", list(range(2000)), [])
    assert len(big.encode()) < 8000 and contract.parse_events(big).truncated
    post = contract.parse_posts('{"v":1,"post_id":5,"event_id":12,"backend":"x","status":"posted"}')
    assert post == contract.PostsNote(5, 12, "posted")


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "[]",
        "not json",
        '{"items": []}',
        '{"items": {"X": [[1, 2]]}}',
        '{"items": {"X": [["2026-01-01T00:00:00Z", "high"]]}}',
        '{"watermark": "2026-01-01T00:00"}',
        '{"feed": [{"changed_at": null}]}',
    ],
)
def test_unreadable_readings_payloads_are_refused_not_guessed(payload: str) -> None:
    with pytest.raises(BadPayload):
        contract.parse_readings(payload)


def test_series_keeps_order_ignores_repeats_and_trims_to_the_value_in_force() -> None:
    s = Series()
    assert s.add(10, 40) and s.add(30, 42) and s.add(20, 41)
    assert not s.add(20, 41)
    assert s.points == [(10, 40), (20, 41), (30, 42)]
    s.trim(25)
    assert s.points == [(20, 41), (30, 42)]


def test_chart_times_are_cut_to_the_millisecond_as_the_browser_cuts_the_watermark() -> None:
    # the page parses the ISO watermark with Date.parse, which drops the sub-millisecond
    # digits; a point rounded up past it fell off the chart's right edge (issue 15)
    at = datetime(2026, 11, 30, 8, 27, 36, 673787, tzinfo=UTC)
    assert iso(at) == "2026-11-30T08:27:36.673787Z"
    assert epoch(at) == 1796027256.673  # Date.parse(iso(at)) / 1000
    assert epoch(at.replace(microsecond=999)) == 1796027256.0
    assert epoch(at.replace(microsecond=0)) == 1796027256.0
    before_1970 = datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC)
    assert epoch(before_1970) == -0.001  # floor, as Date.parse does for negative times


def test_gaps_are_the_intervals_without_signal() -> None:
    changes = [
        FeedChange("signal", "AOS", T0, None),
        FeedChange("signal", "LOS", T0 + timedelta(minutes=10), None),
        FeedChange("signal", "STALE", T0 + timedelta(minutes=12), None),
        FeedChange("signal", "AOS", T0 + timedelta(minutes=20), None),
        FeedChange("connection", "DISCONNECTED", T0 + timedelta(minutes=25), None),
        FeedChange("signal", "LOS", T0 + timedelta(minutes=30), None),
    ]
    ts = lambda m: (T0 + timedelta(minutes=m)).timestamp()  # noqa: E731
    assert signal_gaps(changes, T0) == [[ts(10), ts(20)], [ts(30), None]]
    assert signal_gaps(changes, T0 + timedelta(minutes=15)) == [[ts(15), ts(20)], [ts(30), None]]


def event(kind: str, start_min: float, end_min: float, flags: list[str] | None = None) -> dict:
    iso = lambda m: (T0 + timedelta(minutes=m)).isoformat()  # noqa: E731
    return {
        "id": int(start_min),
        "type": kind,
        "start": iso(start_min),
        "end": iso(end_min),
        "flags": flags or [],
        "retracted": False,
    }


def test_someone_is_on_the_toilet_while_the_live_pass_holds_a_use() -> None:
    wm = T0 + timedelta(minutes=10)
    assert toilet_in_use([event("urination", 9, 9.3)], wm)["active"]
    assert toilet_in_use([event("urination", 7, 7.0, ["short_hold"])], wm)["active"]
    assert not toilet_in_use([event("urination", 5, 5.3)], wm)["active"]
    # a hold cut short by LOS keeps its flag; nobody is on the toilet 18 minutes later
    assert not toilet_in_use([event("urination", -8, -7.7, ["short_hold"])], wm)["active"]
    assert not toilet_in_use([event("bulk_transfer", 9, 9.5)], wm)["active"]
    assert not toilet_in_use([event("urination", 9, 9.3)], None)["active"]
    retracted = {**event("urination", 9, 9.3), "retracted": True}
    assert not toilet_in_use([retracted], wm)["active"]


def test_nobody_can_tell_while_the_tank_cannot_be_seen() -> None:
    wm = T0 + timedelta(minutes=10)
    use = [event("urination", 9, 9.3)]
    assert toilet_in_use(use, wm, "AOS", "CONNECTED:WS-STREAMING")["active"]
    assert toilet_in_use(use, wm, None, None)["active"]  # a replay records no feed state
    for signal in ("LOS", "STALE", "UNKNOWN"):
        out = toilet_in_use(use, wm, signal, "CONNECTED:WS-STREAMING")
        assert (out["active"], out["unknown"]) == (False, "signal"), signal
    for connection in ("DISCONNECTED", "STALLED", "DISCONNECTED:WILL-RETRY"):
        out = toilet_in_use(use, wm, "AOS", connection)
        assert (out["active"], out["unknown"]) == (False, "feed"), connection
    # an outage says so even when no use is near: "nobody" would be a guess too
    assert toilet_in_use([], wm, "LOS", None)["unknown"] == "signal"
    assert toilet_in_use([], wm, "AOS", None) == {
        "active": False,
        "event_id": None,
        "since": None,
        "unknown": None,
    }


def test_a_use_just_before_los_is_not_shown_as_now_through_the_los() -> None:
    state = LiveState(history=timedelta(hours=6))

    def note(seconds: float, *changes: SimpleNamespace) -> contract.ReadingsNote:
        payload = ingest_notify.readings_payload(
            [reading("NODE3000005", seconds, 44.0)],
            list(changes),
            T0 + timedelta(seconds=seconds),
            1,
            "feed",
        )
        return contract.parse_readings(payload or "")

    state.apply_readings(note(0, transition("signal", "AOS", 0)), T0)
    state.set_events([event("urination", 0, 0.5)], {})
    assert state.in_use()["active"]
    # LOS 40 s after the use: the newest reading stays at 40 s for the whole LOS
    delta = state.apply_readings(note(40, transition("signal", "LOS", 40)), T0)
    assert delta["in_use"]["unknown"] == "signal" and not delta["in_use"]["active"]
    assert state.snapshot(T0)["in_use"]["unknown"] == "signal"
    # AOS 20 minutes later: the use is long over
    delta = state.apply_readings(note(1240, transition("signal", "AOS", 1240)), T0)
    assert delta["in_use"] == {"active": False, "event_id": None, "since": None, "unknown": None}


def test_a_readings_note_becomes_one_delta_and_moves_the_snapshot() -> None:
    state = LiveState(history=timedelta(hours=6))
    note = contract.parse_readings(
        ingest_notify.readings_payload(
            [reading("NODE3000005", 5, 44.0)],
            [transition("signal", "LOS", 5)],
            T0 + timedelta(seconds=5),
            1,
            "feed",
        )
        or ""
    )
    delta = state.apply_readings(note, T0)
    assert delta["type"] == "reading" and delta["seq"] == 1
    assert delta["points"] == {"NODE3000005": [[(T0 + timedelta(seconds=5)).timestamp(), 44.0]]}
    assert delta["feed"]["signal"]["state"] == "LOS"
    again = state.apply_readings(note, T0)  # the same batch again: nothing new to draw
    assert again["points"] == {}
    snap = json.loads(json.dumps(state.snapshot(T0)))
    assert snap["now"]["NODE3000005"]["value"] == 44.0 and snap["seq"] == 2


def test_time_parameters_take_iso_with_or_without_offset() -> None:
    assert params.parse_time("from", "2026-11-30T05:00:00Z") == T0
    assert params.parse_time("from", "2026-11-30T05:00:00") == T0
    assert params.parse_time("from", "2026-11-30T06:00:00 01:00") == T0  # '+' lost in a URL
    with pytest.raises(params.BadParameter, match="to: '11' is not an ISO 8601 time"):
        params.parse_time("to", "11")


def test_post_links_where_the_backend_has_one() -> None:
    assert post_url("x", "123") == "https://x.com/i/web/status/123"
    assert post_url("bluesky", "at://did:plc:abc/app.bsky.feed.post/3k") == (
        "https://bsky.app/profile/did:plc:abc/post/3k"
    )
    assert post_url("mastodon", "99", "https://m.example/") == "https://m.example/web/statuses/99"
    assert post_url("mastodon", "99") is None
    assert post_url("dry_run", "line-3") is None
    assert post_url("x", None) is None


def test_quiet_hours_hold_the_level_in_the_30_day_chart() -> None:
    h = 3600.0
    buckets: list[list[float | None]] = [
        [0.0, 40, 42, 41],
        [3 * h, 44, 45, 45],
        [4 * h, 45, 47, 46],
    ]
    assert fill_quiet_hours(buckets) == [
        [0.0, 40, 42, 41],
        [h, 41, 41, 41],
        [2 * h, 41, 41, 41],
        [3 * h, 44, 45, 45],
        [4 * h, 45, 47, 46],
    ]
    assert fill_quiet_hours([]) == []
