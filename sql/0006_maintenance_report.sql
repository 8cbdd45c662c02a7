-- What maintenance did, in one place for `peebot db maintain`, Dagster's db_maintenance_job and
-- `peebot status`, and the horizon below which raw readings are gone (both storage modes).

-- Raw readings older than this may have been removed by retention (NULL: none ever were).
-- A detection window reaching below it would find them missing, not absent.
CREATE OR REPLACE FUNCTION peebot_raw_kept_from()
RETURNS timestamptz
LANGUAGE sql STABLE
AS $$
    SELECT (value ->> 'raw_kept_from')::timestamptz
    FROM peebot_setting WHERE key = 'reading_retention'
$$;

-- Called after the statements of peebot_maintenance_steps() ran (their names in `steps`):
-- records the run in processor_state 'db_maintain' and returns it.
CREATE OR REPLACE FUNCTION peebot_maintenance_report(steps jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    result jsonb;
BEGIN
    SELECT jsonb_build_object(
        'mode', (SELECT value #>> '{}' FROM peebot_setting WHERE key = 'storage_mode'),
        'steps', steps,
        'policy', (SELECT value FROM peebot_setting WHERE key = 'reading_policy'),
        'retention', (SELECT value FROM peebot_setting WHERE key = 'reading_retention'))
    INTO result;
    INSERT INTO processor_state (processor_name, last_run_at, state_data)
    VALUES ('db_maintain', now(), result)
    ON CONFLICT (processor_name) DO UPDATE
        SET last_run_at = EXCLUDED.last_run_at, state_data = EXCLUDED.state_data;
    RETURN result;
END;
$$;
