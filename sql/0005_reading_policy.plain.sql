-- Reading retention that can change after the first migration (docs/ARCHITECTURE.md,
-- "Reading storage"); the plain twin of 0005_reading_policy.timescaledb.sql.
--
-- * The policy in force is the `reading_policy` setting; `peebot_set_reading_policy` changes it
--   (`peebot db policy`). retention_days 0 keeps raw readings forever. Plain storage does not
--   compress, and its telemetry_minute is a view over the readings kept.
-- * `peebot_retention` deletes readings past the horizon and records the horizon below which
--   raw readings are gone (`reading_retention`.raw_kept_from), which detection checks.
-- * `peebot_maintenance_steps()` lists what `peebot db maintain` and Dagster's
--   db_maintenance_job run, as in TimescaleDB mode.
-- Double-braced names are filled from the environment at migrate time.

INSERT INTO peebot_setting (key, value)
VALUES ('reading_policy', jsonb_build_object('retention_days', {{retention_days}},
                                             'compress_after_days', {{compress_after_days}}))
ON CONFLICT (key) DO NOTHING;

-- What `peebot db maintain` has already deleted on a database migrated before: its last run
-- deleted everything older than its retention then.
INSERT INTO peebot_setting (key, value)
SELECT 'reading_retention', jsonb_build_object(
    'raw_kept_from', last_run_at - make_interval(days => (state_data ->> 'retention_days')::integer),
    'last_run_at', last_run_at, 'removed', NULL, 'held_back', 0)
FROM processor_state
WHERE processor_name = 'db_maintain' AND state_data ? 'retention_days'
ON CONFLICT (key) DO NOTHING;

CREATE OR REPLACE PROCEDURE peebot_retention(job_id integer DEFAULT NULL,
                                             config jsonb DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    days      integer;
    horizon   timestamptz;
    deleted   bigint := 0;
    kept_from timestamptz;
BEGIN
    SELECT (value ->> 'retention_days')::integer INTO days
    FROM peebot_setting WHERE key = 'reading_policy';
    SELECT (value ->> 'raw_kept_from')::timestamptz INTO kept_from
    FROM peebot_setting WHERE key = 'reading_retention';
    IF coalesce(days, 0) > 0 THEN
        horizon := now() - make_interval(days => days);
        DELETE FROM telemetry_reading WHERE ts < horizon;
        GET DIAGNOSTICS deleted = ROW_COUNT;
        IF deleted > 0 THEN
            kept_from := greatest(kept_from, horizon);
        END IF;
    END IF;
    INSERT INTO peebot_setting (key, value, updated_at)
    VALUES ('reading_retention', jsonb_build_object(
        'raw_kept_from', kept_from, 'last_run_at', now(), 'retention_days', coalesce(days, 0),
        'removed', deleted, 'removed_unit', 'readings', 'held_back', 0), now())
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at;
END;
$$;

-- Change the horizons. Returns the policy now in force.
CREATE OR REPLACE FUNCTION peebot_set_reading_policy(retention_days integer,
                                                     compress_after_days integer)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    policy jsonb;
BEGIN
    IF retention_days < 0 OR compress_after_days < 0 THEN
        RAISE EXCEPTION 'retention and compression days must be 0 or more (0: never)';
    END IF;
    SELECT value INTO policy FROM peebot_setting WHERE key = 'reading_policy';
    policy := jsonb_build_object(
        'retention_days', coalesce(retention_days, (policy ->> 'retention_days')::integer),
        'compress_after_days',
            coalesce(compress_after_days, (policy ->> 'compress_after_days')::integer));
    INSERT INTO peebot_setting (key, value, updated_at) VALUES ('reading_policy', policy, now())
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at;
    RETURN policy;
END;
$$;

CREATE OR REPLACE FUNCTION peebot_maintenance_steps()
RETURNS TABLE (step text, statement text, job_id integer)
LANGUAGE sql STABLE
AS $$
    SELECT 'peebot_retention', 'CALL peebot_retention()', NULL::integer
$$;

DROP PROCEDURE IF EXISTS peebot_maintain(integer, jsonb);
