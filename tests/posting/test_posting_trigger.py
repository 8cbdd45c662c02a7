"""Posting starts when a detection run has stored events to post, not at the next poll:
`post_after_detection_sensor` reacts to a detection run's success and asks for the same batch
the posting sensor would (same run_key), so nothing can be posted twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
from posting_helpers import add_event, enqueue

from peebot_dagster.defs.posting.sensors import post_after_detection_sensor, posting_sensor
from peebot_dagster.resources import PostgresResource


@dg.op
def _nothing() -> None:
    pass


def _finished_run(instance: Any, kind: str) -> tuple[Any, Any]:
    """A real successful run tagged like a detection run of `kind`, and its success event."""

    @dg.job(name=f"fake_{kind}_job", tags={"peebot/kind": kind})
    def fake() -> None:
        _nothing()

    result = fake.execute_in_process(instance=instance)
    return result.dagster_run, result.get_run_success_event()


@pytest.fixture
def instance() -> Any:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture(autouse=True)
def dry_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PEEBOT_POST_BACKENDS", raising=False)
    monkeypatch.setenv("PEEBOT_DRY_RUN_FILE", str(tmp_path / "posts.jsonl"))


def _after(db_url: str, instance: Any, kind: str) -> Any:
    run, event = _finished_run(instance, kind)
    ctx = dg.build_run_status_sensor_context(
        sensor_name="post_after_detection_sensor",
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"db": PostgresResource(dsn=db_url)},
    )
    return post_after_detection_sensor(ctx)


def test_a_detection_run_that_stored_a_post_launches_the_posting_job(
    db_url: str, instance: Any
) -> None:
    with psycopg.connect(db_url) as conn:
        event = add_event(conn, start=datetime.now(UTC) - timedelta(minutes=1))
        conn.commit()
        enqueue(conn, [event], "dry_run")
    request = _after(db_url, instance, "live")
    assert isinstance(request, dg.RunRequest)
    assert request.tags["peebot/kind"] == "posting"
    # the batch the posting sensor would launch: one run key for both, never two runs
    polled = posting_sensor(
        dg.build_sensor_context(instance=instance, resources={"db": PostgresResource(dsn=db_url)})
    )
    assert isinstance(polled, dg.RunRequest) and polled.run_key == request.run_key
    assert isinstance(_after(db_url, instance, "detection"), dg.RunRequest)


def test_nothing_due_or_not_a_detection_run_launches_nothing(db_url: str, instance: Any) -> None:
    quiet = _after(db_url, instance, "live")
    assert isinstance(quiet, dg.SkipReason) and "left nothing due" in (quiet.skip_message or "")
    with psycopg.connect(db_url) as conn:
        event = add_event(conn, start=datetime.now(UTC) - timedelta(minutes=1))
        conn.commit()
        enqueue(conn, [event], "dry_run")
    other = _after(db_url, instance, "maintenance")
    assert isinstance(other, dg.SkipReason) and "not a detection run" in (other.skip_message or "")


def test_a_post_held_back_by_the_gap_is_said_to_be_waiting(db_url: str, instance: Any) -> None:
    with psycopg.connect(db_url) as conn:
        event = add_event(conn, start=datetime.now(UTC) - timedelta(minutes=1))
        conn.commit()
        enqueue(conn, [event], "dry_run")
        conn.execute(
            "UPDATE social_post SET not_before = now() + interval '10 minutes', "
            "last_error = 'deferred: minimum gap 20 min'"
        )
    skip = posting_sensor(
        dg.build_sensor_context(instance=instance, resources={"db": PostgresResource(dsn=db_url)})
    )
    assert isinstance(skip, dg.SkipReason)
    assert "1 waiting (deferred: minimum gap 20 min) until " in (skip.skip_message or "")
