"""`peebot posts`: list with status, retry and skip by id."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from click.testing import CliRunner
from posting_helpers import T0, add_event, enqueue, posts

from peebot.cli import cli


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["--env-file", "/nonexistent", "posts", *args])


def test_list_retry_skip(db_env: str) -> None:
    with psycopg.connect(db_env) as conn:
        a, b, c = (add_event(conn, minute=m) for m in (0, 1, 2))
        conn.commit()
        enqueue(conn, [a, b, c], "dry_run")
        ids = [r["id"] for r in posts(conn)]
        conn.execute(
            "UPDATE social_post SET status = 'failed', error_kind = 'permanent', attempts = 1, "
            "last_error = 'X 401 Unauthorized' WHERE id = %s",
            (ids[0],),
        )
        conn.execute(
            "UPDATE social_post SET status = 'posted', external_id = 'dry-9', posted_at = %s, "
            "attempts = 1 WHERE id = %s",
            (T0 + timedelta(minutes=3), ids[1]),
        )
    out = invoke()
    assert out.exit_code == 0, out.output
    assert "social posts: pending 1, sending 0, posted 1, failed 1, skipped 0" in out.output
    lines = out.output.splitlines()
    assert any(
        f"{ids[0]:>6}" in x
        and "failed" in x
        and "X 401 Unauthorized" in x
        and "needs an operator" in x
        for x in lines
    )
    assert any("posted" in x and "dry-9 at 2026-11-27 12:03" in x for x in lines)

    out = invoke("retry", str(ids[0]))
    assert out.exit_code == 0 and f"post {ids[0]}: failed -> pending" in out.output
    out = invoke("skip", str(ids[2]), "--reason", "boring")
    assert out.exit_code == 0 and "skipped (boring)" in out.output
    with psycopg.connect(db_env) as conn:
        rows = {r["id"]: r for r in posts(conn)}
    assert (rows[ids[0]]["status"], rows[ids[0]]["error_kind"]) == ("pending", None)
    assert (rows[ids[2]]["status"], rows[ids[2]]["skip_reason"]) == ("skipped", "boring")

    # a posted row can be neither retried nor skipped; an unknown id is a clear error
    for cmd in ("retry", "skip"):
        out = invoke(cmd, str(ids[1]))
        assert out.exit_code == 1 and f"post {ids[1]} is posted" in out.output
    out = invoke("retry", "999999")
    assert out.exit_code == 1 and "no social post with id 999999" in out.output
    out = invoke("--status", "skipped", "--text")
    listed = out.output.splitlines()[2:]
    assert out.exit_code == 0 and "| Urine tank" in out.output
    assert "boring" in listed[0] and not any(" pending " in x or " posted " in x for x in listed)


def test_database_errors_are_one_line(monkeypatch: Any) -> None:
    monkeypatch.setenv("PEEBOT_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    out = invoke()
    assert out.exit_code == 1
    assert out.output.count("\n") == 1 and "cannot connect" in out.output
