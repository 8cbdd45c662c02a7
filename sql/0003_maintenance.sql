-- Retention, compression and aggregate refresh as one procedure, so the CLI
-- (`peebot db maintain`) and Dagster's scheduled maintenance job run the same thing.
-- TimescaleDB: runs its policies' jobs with run_job. Plain: deletes readings past retention.
-- Replaced by 0005: run_job inside a procedure fails ("portal snapshots"), so maintenance now
-- runs each step at top level (docs/ARCHITECTURE.md, "Reading storage").
CREATE OR REPLACE PROCEDURE peebot_maintain(retention_days integer, INOUT result jsonb DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    mode    text;
    deleted bigint := 0;
    jobs    jsonb := '[]'::jsonb;
    job     record;
BEGIN
    SELECT value #>> '{}' INTO mode FROM peebot_setting WHERE key = 'storage_mode';
    IF mode = 'timescaledb' THEN
        FOR job IN EXECUTE $q$
            SELECT job_id, proc_name FROM timescaledb_information.jobs
            WHERE hypertable_name = 'telemetry_reading'
               OR hypertable_name IN (SELECT materialization_hypertable_name
                                      FROM timescaledb_information.continuous_aggregates
                                      WHERE view_name = 'telemetry_minute')
            ORDER BY job_id $q$
        LOOP
            EXECUTE 'CALL run_job($1)' USING job.job_id;
            jobs := jobs || to_jsonb(job.proc_name || '#' || job.job_id);
        END LOOP;
    ELSE
        mode := 'plain';
        DELETE FROM telemetry_reading WHERE ts < now() - make_interval(days => retention_days);
        GET DIAGNOSTICS deleted = ROW_COUNT;
    END IF;
    result := jsonb_build_object('mode', mode, 'deleted', deleted, 'jobs', jobs,
                                 'retention_days', retention_days);
    INSERT INTO processor_state (processor_name, last_run_at, state_data)
    VALUES ('db_maintain', now(), result)
    ON CONFLICT (processor_name) DO UPDATE SET last_run_at = now(), state_data = EXCLUDED.state_data;
END;
$$;
