"""The posting sensor and post_events_job, on a real Dagster instance and the test database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
from posting_helpers import add_event, enqueue, posts

from peebot_dagster.defs.posting import defs
from peebot_dagster.defs.posting.jobs import post_events_job
from peebot_dagster.defs.posting.sensors import posting_sensor
from peebot_dagster.resources import PostgresResource


@pytest.fixture
def instance() -> Any:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("PEEBOT_POST_BACKENDS", raising=False)
    out = tmp_path / "posts.jsonl"
    monkeypatch.setenv("PEEBOT_DRY_RUN_FILE", str(out))
    return out


def evaluate(db_url: str, instance: Any) -> Any:
    ctx = dg.build_sensor_context(instance=instance, resources={"db": PostgresResource(dsn=db_url)})
    return posting_sensor(ctx)


def test_sensor_launches_only_when_due_and_never_the_same_batch_twice(
    db_url: str, instance: Any, env: Path
) -> None:
    assert isinstance(evaluate(db_url, instance), dg.SkipReason)  # empty outbox
    now = datetime.now(UTC)
    with psycopg.connect(db_url) as conn:
        a = add_event(conn, start=now - timedelta(minutes=5))
        b = add_event(conn, start=now - timedelta(minutes=4))
        c = add_event(conn, start=now - timedelta(minutes=3), event_type="los")
        conn.commit()
        enqueue(conn, [a, b, c], "dry_run")
        # a row deferred into the future and a row of a disabled backend are not due
        enqueue(conn, [a], "mastodon")
    first = evaluate(db_url, instance)
    assert isinstance(first, dg.RunRequest)
    assert first.run_key == evaluate(db_url, instance).run_key  # same batch, same key
    assert first.tags["peebot/posts"].count(",") == 1  # two dry_run rows, not mastodon
    # a run of the job is queued: no launch at all
    queued = instance.create_run_for_job(job_def=post_events_job, tags={"dagster/run_key": "x"})
    assert isinstance(evaluate(db_url, instance), dg.SkipReason)
    instance.report_run_canceled(queued)
    # the batch changes (one row deferred): a different key
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE social_post SET not_before = now() + interval '1 hour' "
            "WHERE event_id = %s AND backend = 'dry_run'",
            (b,),
        )
    second = evaluate(db_url, instance)
    assert isinstance(second, dg.RunRequest) and second.run_key != first.run_key
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE social_post SET not_before = NULL")
    # run it for real: afterwards nothing is due, so no launch
    result = post_events_job.execute_in_process(
        instance=instance, resources={"db": PostgresResource(dsn=db_url)}, tags=first.tags
    )
    assert result.success
    after = evaluate(db_url, instance)
    assert isinstance(after, dg.SkipReason) and "nothing pending and due" in after.skip_message


def test_job_posts_with_the_dry_run_backend(db_url: str, instance: Any, env: Path) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(db_url) as conn:
        ok = add_event(conn, start=now - timedelta(minutes=6))
        gap = add_event(
            conn, start=now - timedelta(minutes=5), event_type="bulk_transfer", delta=22.0
        )
        los = add_event(conn, start=now - timedelta(minutes=4), flags=["los"])
        old = add_event(conn, start=now - timedelta(hours=5))
        conn.commit()
        assert enqueue(conn, [ok, gap, los, old], "dry_run") == 4
    result = post_events_job.execute_in_process(
        instance=instance, resources={"db": PostgresResource(dsn=db_url)}
    )
    assert result.success
    assert result.output_for_node("post_events") == {
        "posted": 1,
        "duplicates": 0,
        "reconciled": 0,
        "skipped": 2,
        "deferred": 1,
        "failed": 0,
    }
    with psycopg.connect(db_url) as conn:
        rows = {r["event_id"]: r for r in posts(conn)}
        event_posted = conn.execute(
            "SELECT posted_at FROM detected_event WHERE id = %s", (ok,)
        ).fetchone()
    lines = [json.loads(x) for x in env.read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["text"] == rows[ok]["text"]
    assert lines[0]["key"] == f"peebot-post-{rows[ok]['id']}"
    assert (rows[ok]["status"], rows[ok]["external_id"]) == ("posted", lines[0]["id"])
    assert rows[gap]["status"] == "pending" and rows[gap]["not_before"] > now
    assert rows[los]["status"] == "skipped" and "los" in rows[los]["skip_reason"]
    assert rows[old]["status"] == "skipped" and "too old" in rows[old]["skip_reason"]
    assert event_posted == (None,)  # a dry run is not a real post
    # running again changes nothing: the gap is not over
    again = post_events_job.execute_in_process(
        instance=instance, resources={"db": PostgresResource(dsn=db_url)}
    )
    assert again.success and len(env.read_text().splitlines()) == 1


def test_job_refuses_to_start_without_credentials(
    db_url: str, instance: Any, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEEBOT_POST_BACKENDS", "dry_run,x")
    monkeypatch.setenv("PEEBOT_X_CONSUMER_KEY", "ck-SECRETISH")
    for name in (
        "PEEBOT_X_CONSUMER_SECRET",
        "PEEBOT_X_ACCESS_TOKEN",
        "PEEBOT_X_ACCESS_TOKEN_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    result = post_events_job.execute_in_process(
        instance=instance, resources={"db": PostgresResource(dsn=db_url)}, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = str(failure.step_failure_data.user_failure_data.description)
    assert "PEEBOT_X_CONSUMER_SECRET" in text and "PEEBOT_X_ACCESS_TOKEN_SECRET" in text
    assert "SECRETISH" not in text


def test_definitions_load() -> None:
    merged = dg.Definitions.merge(defs, dg.Definitions(resources={"db": PostgresResource(dsn="x")}))
    repo = merged.get_repository_def()
    assert repo.get_job("post_events_job") and repo.get_sensor_def("posting_sensor")
