-- Reading retention and compression that can change after the first migration, and a minute
-- aggregate that really is kept for good (docs/ARCHITECTURE.md, "Reading storage").
--
-- * The policy in force is the `reading_policy` setting; `peebot_set_reading_policy` changes it
--   (`peebot db policy`). retention_days 0 keeps raw readings forever; compress_after_days 0
--   never compresses.
-- * TimescaleDB's retention policy is replaced by `peebot_retention`, a job that drops a chunk
--   only once every minute of it is in telemetry_minute (and says so when it holds one back).
--   Its drop does not invalidate the aggregate: TimescaleDB's own retention marks the dropped
--   range as modified, so any later refresh over it would empty those minutes.
-- * `peebot_refresh_history`, a job, refreshes every chunk with minutes the aggregate has not
--   seen (replayed history, journal catch-up after a long outage): the refresh policy only
--   looks at the last 2 hours.
-- * `peebot_maintenance_steps()` lists the statements `peebot db maintain` and Dagster's
--   db_maintenance_job run one by one at top level in autocommit: `CALL run_job(id)` through
--   EXECUTE inside a procedure fails ("portal snapshots (1) did not account for all active
--   snapshots (2)"), and a refresh cannot run inside a transaction block.
-- Double-braced names are filled from the environment at migrate time.

-- The policy in force: on a database migrated before, the one 0002 baked in.
INSERT INTO peebot_setting (key, value)
SELECT 'reading_policy', jsonb_build_object(
    'retention_days', coalesce(
        (SELECT extract(epoch FROM (j.config ->> 'drop_after')::interval)::integer / 86400
         FROM timescaledb_information.jobs j
         WHERE j.proc_name = 'policy_retention' AND j.hypertable_name = 'telemetry_reading'),
        {{retention_days}}),
    'compress_after_days', coalesce(
        (SELECT extract(epoch FROM (j.config ->> 'compress_after')::interval)::integer / 86400
         FROM timescaledb_information.jobs j
         WHERE j.proc_name = 'policy_compression' AND j.hypertable_name = 'telemetry_reading'),
        {{compress_after_days}}))
ON CONFLICT (key) DO NOTHING;

-- What TimescaleDB's retention policy has already removed on a database migrated before: a run
-- at T dropped the chunks older than T - drop_after. Its first run, at creation, found an empty
-- table (the mode is chosen at the first migration, which creates the table), so only a later
-- run counts.
INSERT INTO peebot_setting (key, value)
SELECT 'reading_retention', jsonb_build_object(
    'raw_kept_from', s.last_successful_finish - (j.config ->> 'drop_after')::interval,
    'last_run_at', s.last_successful_finish, 'removed', NULL, 'held_back', 0)
FROM timescaledb_information.jobs j
JOIN timescaledb_information.job_stats s USING (job_id)
WHERE j.proc_name = 'policy_retention' AND j.hypertable_name = 'telemetry_reading'
  AND s.last_successful_finish > (SELECT applied_at + interval '1 hour'
                                  FROM schema_migrations WHERE version = 2)
ON CONFLICT (key) DO NOTHING;

SELECT remove_retention_policy('telemetry_reading', if_exists => true);

-- Chunks of telemetry_reading holding minutes telemetry_minute has not materialized:
-- TimescaleDB's invalidation logs (rows written below its threshold), the ranges it has never
-- refreshed (which include everything above the threshold) and any refresh in progress.
-- Internal catalogs of TimescaleDB 2.28 (the last release for PostgreSQL 15);
-- tests/timescaledb pins the behaviour on a real build.
CREATE OR REPLACE FUNCTION peebot_minute_pending_chunks()
RETURNS TABLE (range_start timestamptz, range_end timestamptz)
LANGUAGE sql STABLE
AS $$
    WITH cagg AS (
        SELECT ca.raw_hypertable_id, ca.mat_hypertable_id
        FROM _timescaledb_catalog.continuous_agg ca
        WHERE ca.user_view_name = 'telemetry_minute' AND ca.user_view_schema = current_schema()
    ), pending AS (
        SELECT l.lowest_modified_value AS lo, l.greatest_modified_value AS hi
        FROM _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log l
        JOIN cagg ON l.hypertable_id = cagg.raw_hypertable_id
        UNION ALL
        SELECT l.lowest_modified_value, l.greatest_modified_value
        FROM _timescaledb_catalog.continuous_aggs_materialization_invalidation_log l
        JOIN cagg ON l.materialization_id = cagg.mat_hypertable_id
        UNION ALL
        SELECT r.lowest_modified_value, r.greatest_modified_value
        FROM _timescaledb_catalog.continuous_aggs_materialization_ranges r
        JOIN cagg ON r.materialization_id = cagg.mat_hypertable_id
    )
    SELECT c.range_start, c.range_end
    FROM timescaledb_information.chunks c
    WHERE c.hypertable_schema = current_schema() AND c.hypertable_name = 'telemetry_reading'
      AND EXISTS (
          SELECT 1 FROM pending p
          WHERE p.lo < _timescaledb_functions.to_unix_microseconds(c.range_end)
            AND p.hi >= _timescaledb_functions.to_unix_microseconds(c.range_start))
    ORDER BY c.range_start
$$;

-- Refresh telemetry_minute over every chunk with unseen minutes, up to where the refresh
-- policy takes over (its start_offset). A job (the scheduler runs it) and a procedure
-- (`peebot replay` calls it once its rows are in). Refreshing a range whose raw rows are all
-- there recomputes exactly the minutes that changed, so it is safe to repeat.
CREATE OR REPLACE PROCEDURE peebot_refresh_history(job_id integer DEFAULT NULL,
                                                   config jsonb DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    upto    timestamptz;
    windows tstzrange[];
    w       tstzrange;
    done    integer := 0;
BEGIN
    SELECT now() - coalesce((j.config ->> 'start_offset')::interval, interval '2 hours')
    INTO upto
    FROM timescaledb_information.jobs j
    WHERE j.proc_name = 'policy_refresh_continuous_aggregate'
      AND j.hypertable_name = 'telemetry_minute';
    upto := date_trunc('minute', coalesce(upto, now() - interval '2 hours'));
    SELECT array_agg(tstzrange(p.range_start, least(p.range_end, upto)) ORDER BY p.range_start)
    INTO windows
    FROM peebot_minute_pending_chunks() p
    -- a refresh window must hold at least one whole bucket
    WHERE least(p.range_end, upto) >= p.range_start + interval '1 minute';
    FOREACH w IN ARRAY coalesce(windows, '{}') LOOP
        CALL refresh_continuous_aggregate('telemetry_minute', lower(w), upper(w));
        done := done + 1;
    END LOOP;
    INSERT INTO processor_state (processor_name, last_run_at, state_data)
    VALUES ('minute_history', now(), jsonb_build_object('refreshed_chunks', done, 'upto', upto))
    ON CONFLICT (processor_name) DO UPDATE
        SET last_run_at = EXCLUDED.last_run_at, state_data = EXCLUDED.state_data;
END;
$$;

-- Drop the chunks past the retention horizon whose minutes are all in telemetry_minute; hold
-- back (and count) those still waiting for peebot_refresh_history. Records the horizon below
-- which raw readings are gone (`reading_retention`.raw_kept_from), which detection checks.
CREATE OR REPLACE PROCEDURE peebot_retention(job_id integer DEFAULT NULL,
                                             config jsonb DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    days         integer;
    horizon      timestamptz;
    pending_from timestamptz;
    cutoff       timestamptz;
    dropped      integer := 0;
    held         integer := 0;
    newest_gone  timestamptz;
    kept_from    timestamptz;
BEGIN
    SELECT (value ->> 'retention_days')::integer INTO days
    FROM peebot_setting WHERE key = 'reading_policy';
    SELECT (value ->> 'raw_kept_from')::timestamptz INTO kept_from
    FROM peebot_setting WHERE key = 'reading_retention';
    horizon := now() - make_interval(days => coalesce(days, 0));
    IF coalesce(days, 0) > 0 AND EXISTS (
        SELECT 1 FROM timescaledb_information.chunks c
        WHERE c.hypertable_schema = current_schema() AND c.hypertable_name = 'telemetry_reading'
          AND c.range_end <= horizon)
    THEN
        -- No write may land in an old chunk between choosing and dropping it: its minutes
        -- would be gone before the aggregate saw them. Writers wait for this transaction.
        LOCK TABLE telemetry_reading IN SHARE ROW EXCLUSIVE MODE;
        SELECT min(p.range_start) INTO pending_from FROM peebot_minute_pending_chunks() p;
        cutoff := least(horizon, pending_from);
        SELECT count(*) FILTER (WHERE c.range_end <= cutoff),
               count(*) FILTER (WHERE c.range_end > cutoff AND c.range_end <= horizon),
               max(c.range_end) FILTER (WHERE c.range_end <= cutoff)
        INTO dropped, held, newest_gone
        FROM timescaledb_information.chunks c
        WHERE c.hypertable_schema = current_schema() AND c.hypertable_name = 'telemetry_reading';
        IF dropped > 0 THEN
            -- their minutes are materialized: dropping the raw rows must not invalidate them
            PERFORM set_config('timescaledb.skip_cagg_invalidation', 'on', true);
            PERFORM drop_chunks('telemetry_reading', older_than => cutoff);
            PERFORM set_config('timescaledb.skip_cagg_invalidation', 'off', true);
            kept_from := greatest(kept_from, newest_gone);
        END IF;
    END IF;
    INSERT INTO peebot_setting (key, value, updated_at)
    VALUES ('reading_retention', jsonb_build_object(
        'raw_kept_from', kept_from, 'last_run_at', now(), 'retention_days', coalesce(days, 0),
        'removed', dropped, 'removed_unit', 'chunks', 'held_back', held), now())
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at;
END;
$$;

SELECT add_job('peebot_refresh_history', INTERVAL '1 hour', job_name => 'peebot_refresh_history');
SELECT add_job('peebot_retention', INTERVAL '1 hour', job_name => 'peebot_retention');

-- Change the horizons. Returns the policy now in force.
CREATE OR REPLACE FUNCTION peebot_set_reading_policy(retention_days integer,
                                                     compress_after_days integer)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    policy          jsonb;
    compression_job integer;
    after_interval  interval;
BEGIN
    IF retention_days < 0 OR compress_after_days < 0 THEN
        RAISE EXCEPTION 'retention and compression days must be 0 or more (0: never)';
    END IF;
    SELECT value INTO policy FROM peebot_setting WHERE key = 'reading_policy';
    policy := jsonb_build_object(
        'retention_days', coalesce(retention_days, (policy ->> 'retention_days')::integer),
        'compress_after_days',
            coalesce(compress_after_days, (policy ->> 'compress_after_days')::integer));
    SELECT j.job_id INTO compression_job FROM timescaledb_information.jobs j
    WHERE j.proc_name = 'policy_compression' AND j.hypertable_name = 'telemetry_reading';
    after_interval := make_interval(days => (policy ->> 'compress_after_days')::integer);
    IF (policy ->> 'compress_after_days')::integer = 0 THEN
        PERFORM remove_compression_policy('telemetry_reading', if_exists => true);
    ELSIF compression_job IS NULL THEN
        PERFORM add_compression_policy('telemetry_reading', after_interval);
    ELSE
        -- the job keeps its schedule (and stays paused if an operator paused it)
        PERFORM alter_job(compression_job, config => config || jsonb_build_object(
            'compress_after', after_interval::text))
        FROM timescaledb_information.jobs WHERE job_id = compression_job;
    END IF;
    INSERT INTO peebot_setting (key, value, updated_at) VALUES ('reading_policy', policy, now())
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at;
    RETURN policy;
END;
$$;

-- What maintenance runs, in order, each statement on its own at top level: unseen history
-- into the aggregate, the refresh policy, compression, then retention (which the refreshes
-- let through).
CREATE OR REPLACE FUNCTION peebot_maintenance_steps()
RETURNS TABLE (step text, statement text, job_id integer)
LANGUAGE sql STABLE
AS $$
    SELECT j.application_name::text, format('CALL run_job(%s)', j.job_id), j.job_id
    FROM timescaledb_information.jobs j
    WHERE (j.proc_name IN ('peebot_refresh_history', 'peebot_retention')
           AND j.proc_schema = current_schema())
       OR (j.proc_name = 'policy_compression' AND j.hypertable_name = 'telemetry_reading')
       OR (j.proc_name = 'policy_refresh_continuous_aggregate'
           AND j.hypertable_name = 'telemetry_minute')
    ORDER BY CASE j.proc_name
        WHEN 'peebot_refresh_history' THEN 1
        WHEN 'policy_refresh_continuous_aggregate' THEN 2
        WHEN 'policy_compression' THEN 3
        ELSE 4 END
$$;

DROP PROCEDURE IF EXISTS peebot_maintain(integer, jsonb);
