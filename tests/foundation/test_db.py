from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from peebot_ingest import db as database
from peebot_ingest import migrations, storage_mode
from peebot_ingest import reading_policy as policies
from peebot_iss.catalog import load_catalog, parse_enum


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_migrations_apply_in_order_and_twice_is_a_noop(empty_db_url: str) -> None:
    first = migrations.migrate(empty_db_url, timescale="off")
    assert first.mode == "plain"
    expected = [m.for_mode("plain").name for m in migrations.discover_migrations()]
    assert first.applied == expected
    assert expected[:3] == [
        "0001_core.sql",
        "0002_reading_storage.plain.sql",
        "0003_maintenance.sql",
    ]
    assert {
        "telemetry_channel",
        "telemetry_reading",
        "rejected_update",
        "detected_event",
        "processor_state",
        "social_post",
        "schema_migrations",
        "feed_status",
    } <= _tables(empty_db_url)
    with psycopg.connect(empty_db_url) as conn:
        versions = [
            r[0]
            for r in conn.execute(
                "SELECT version FROM schema_migrations ORDER BY applied_at, version"
            )
        ]
        assert versions == sorted(versions) and versions[:3] == [1, 2, 3]
        before = conn.execute("SELECT max(updated_at) FROM telemetry_channel").fetchone()
    second = migrations.migrate(empty_db_url, timescale="off")
    assert second.applied == []
    assert second.current_version == migrations.discover_migrations()[-1].version
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("SELECT max(updated_at) FROM telemetry_channel").fetchone() == before


def test_broken_migration_rolls_back_to_previous_version(empty_db_url: str, tmp_path: Path) -> None:
    for f in migrations.discover_migrations():
        for path in f.variants.values():
            (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "9999_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nINSERT INTO half_done VALUES (1);\nSELECT no_such_function();\n"
    )
    with pytest.raises(database.DatabaseError, match=r"9999_broken\.sql failed"):
        migrations.migrate(empty_db_url, directory=tmp_path, timescale="off")
    tables = _tables(empty_db_url)
    assert "half_done" not in tables
    assert "telemetry_reading" in tables
    with psycopg.connect(empty_db_url) as conn:
        latest = migrations.discover_migrations()[-1].version
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone() == (latest,)


def test_catalogue_seeds_337_channels_and_reseed_changes_nothing(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM telemetry_channel").fetchone() == (337,)
        codes = conn.execute(
            "SELECT enum_codes FROM telemetry_channel WHERE item_id = 'NODE3000004'"
        ).fetchone()
        assert codes is not None and codes[0]["16"] == "NORMAL" and codes[0]["32"] == "STANDBY"
        assert migrations.seed_catalog(conn) == 0
        conn.execute("UPDATE telemetry_channel SET description = 'x' WHERE item_id = 'NODE3000005'")
        assert migrations.seed_catalog(conn) == 1
        assert conn.execute(
            "SELECT description FROM telemetry_channel WHERE item_id = 'NODE3000005'"
        ).fetchone() == ("Urine Tank Qty",)


def test_dedupe_key_rejects_a_resent_update(db_url: str) -> None:
    ts = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, "NODE3000005|x|42")
    insert = """
        INSERT INTO telemetry_reading (channel_id, ts, value, event_id)
        SELECT id, %s, 42, %s FROM telemetry_channel WHERE item_id = 'NODE3000005'
        ON CONFLICT DO NOTHING
    """
    with psycopg.connect(db_url) as conn:
        assert conn.execute(insert, (ts, event_id)).rowcount == 1
        assert conn.execute(insert, (ts, event_id)).rowcount == 0
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert.replace("ON CONFLICT DO NOTHING", ""), (ts, event_id))


def test_storage_mode_decision() -> None:
    assert storage_mode.decide_storage_mode("auto", extension_available=True) == "timescaledb"
    assert storage_mode.decide_storage_mode("auto", extension_available=False) == "plain"
    assert storage_mode.decide_storage_mode("off", extension_available=True) == "plain"
    with pytest.raises(database.DatabaseError, match="no timescaledb"):
        storage_mode.decide_storage_mode("on", extension_available=False)
    with pytest.raises(database.DatabaseError):
        storage_mode.decide_storage_mode("maybe", extension_available=True)


def test_auto_mode_is_plain_on_this_server(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url) as conn:
        # the embedded server has no timescaledb at all: plain, and nothing to warn about
        assert storage_mode.probe_timescaledb(conn, empty_db_url) == storage_mode.TimescaleProbe(False)
    result = migrations.migrate(empty_db_url)
    assert result.mode == "plain" and result.warnings == []


def test_preload_setting_is_read_as_postgres_does() -> None:
    assert storage_mode.preloaded("timescaledb")
    assert storage_mode.preloaded("pg_stat_statements, timescaledb")
    assert storage_mode.preloaded('"timescaledb-2.28.3"')
    assert storage_mode.preloaded("$libdir/timescaledb")
    assert not storage_mode.preloaded("")
    assert not storage_mode.preloaded("pg_stat_statements")
    assert not storage_mode.preloaded("timescaledb_toolkit")


def test_on_names_why_an_installed_extension_cannot_be_used() -> None:
    reason = "the timescaledb extension is installed but not preloaded (add ...)"
    with pytest.raises(database.DatabaseError, match=r"^PEEBOT_TIMESCALEDB=on: the timescaledb"):
        storage_mode.decide_storage_mode("on", extension_available=False, reason=reason)
    probe = storage_mode.TimescaleProbe(False, reason)
    assert storage_mode.decide_storage_mode("auto", probe.available, probe.reason) == "plain"
    warning = storage_mode.fallback_warning(probe)
    assert warning is not None and "\n" not in warning and reason in warning
    assert storage_mode.fallback_warning(storage_mode.TimescaleProbe(False)) is None
    assert storage_mode.fallback_warning(storage_mode.TimescaleProbe(True)) is None


def test_policy_drift_names_only_explicit_differences() -> None:
    in_force = {"retention_days": 30, "compress_after_days": 7}
    asked = {"retention_days": 30, "compress_after_days": 3}
    assert migrations.policy_drift(in_force, asked, explicit=set()) == []
    assert migrations.policy_drift(in_force, asked, explicit={"retention_days"}) == []
    (line,) = migrations.policy_drift(in_force, asked, explicit={"compress_after_days"})
    assert "PEEBOT_COMPRESS_AFTER_DAYS=3 but the database keeps 7" in line
    assert "peebot db policy --compress-after-days 3" in line


def test_timescaledb_branch_picks_the_timescaledb_variant(tmp_path: Path) -> None:
    found = migrations.discover_migrations()
    storage = next(m for m in found if m.version == 2)
    assert storage.for_mode("timescaledb").name == "0002_reading_storage.timescaledb.sql"
    assert storage.for_mode("plain").name == "0002_reading_storage.plain.sql"
    text = storage.for_mode("timescaledb").read_text()
    assert "create_hypertable" in text and "timescaledb.continuous" in text
    rendered = migrations._render(text)
    assert (
        "{{" not in rendered
        and "INTERVAL '30 days'" in rendered
        and "INTERVAL '7 days'" in rendered
    )


def test_plain_maintenance_deletes_past_retention(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            """
            INSERT INTO telemetry_reading (channel_id, ts, value, event_id)
            SELECT id, now() - make_interval(days => d) + interval '1 hour', d, gen_random_uuid()
            FROM telemetry_channel, generate_series(1, 40) AS d WHERE item_id = 'NODE3000005'
            """
        )
    result = policies.maintain(db_url)  # the default policy: 30 days
    assert result.mode == "plain" and result.steps_run == ["peebot_retention"]
    assert result.policy is not None and result.policy.last_removed == 10
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM telemetry_reading").fetchone() == (30,)
        assert conn.execute("SELECT count(*) FROM telemetry_minute").fetchone() == (30,)


def test_enum_parsing() -> None:
    assert parse_enum("2=STOP; 4=SHUTDOWN;  16 = NORMAL") == {
        2: "STOP",
        4: "SHUTDOWN",
        16: "NORMAL",
    }
    assert len(load_catalog()) == 337


def test_migrate_against_unreachable_server_is_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PEEBOT_DATABASE_URL": "postgresql://peebot@127.0.0.1:1/peebot",
        "HOME": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "peebot.cli", "db", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "127.0.0.1" in lines[0] and "database peebot" in lines[0]
    assert "Traceback" not in proc.stderr


def test_db_url_and_status_commands(db_url: str, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PEEBOT_DATABASE_URL": db_url, "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "peebot.cli", "db", "url"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 0 and out.stdout.strip() == db_url
    st = subprocess.run(
        [sys.executable, "-m", "peebot.cli", "db", "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert st.returncode == 0, st.stderr
    assert f"version {migrations.discover_migrations()[-1].version}, plain mode" in st.stdout
    assert "telemetry_channel" in st.stdout and "337" in st.stdout


def test_migrate_takes_the_timescaledb_branch_when_the_extension_is_available(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This server has no TimescaleDB: pretend the extension was created, and the migration
    # runner must pick the .timescaledb variant (which then fails here on create_hypertable,
    # leaving the database at 0001).
    monkeypatch.setattr(
        migrations, "probe_timescaledb", lambda conn, url: storage_mode.TimescaleProbe(True)
    )
    with pytest.raises(database.DatabaseError, match=r"0002_reading_storage\.timescaledb\.sql"):
        migrations.migrate(empty_db_url)
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone() == (1,)
        assert conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'telemetry_reading_ts_brin'"
        ).fetchone() == (0,)
