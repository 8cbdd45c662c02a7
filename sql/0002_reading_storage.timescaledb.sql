-- TimescaleDB storage for telemetry_reading. Applied instead of the .plain variant when
-- `CREATE EXTENSION timescaledb` succeeds. Double-braced names are filled from the environment at
-- migrate time (PEEBOT_COMPRESS_AFTER_DAYS, PEEBOT_RETENTION_DAYS).
SELECT create_hypertable('telemetry_reading', by_range('ts', INTERVAL '1 day'),
                         if_not_exists => true, migrate_data => true);

ALTER TABLE telemetry_reading SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'channel_id',
    timescaledb.compress_orderby = 'ts DESC'
);
SELECT add_compression_policy('telemetry_reading', INTERVAL '{{compress_after_days}} days',
                              if_not_exists => true);
SELECT add_retention_policy('telemetry_reading', INTERVAL '{{retention_days}} days',
                            if_not_exists => true);

CREATE MATERIALIZED VIEW IF NOT EXISTS telemetry_minute
WITH (timescaledb.continuous) AS
SELECT
    channel_id,
    time_bucket(INTERVAL '1 minute', ts) AS bucket,
    first(value, ts)                     AS first_value,
    last(value, ts)                      AS last_value,
    min(value)                           AS min_value,
    max(value)                           AS max_value,
    count(*)                             AS n
FROM telemetry_reading
GROUP BY channel_id, time_bucket(INTERVAL '1 minute', ts)
WITH NO DATA;
-- The aggregate is kept for good: no retention policy on it.
SELECT add_continuous_aggregate_policy('telemetry_minute',
    start_offset => INTERVAL '2 hours', end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute', if_not_exists => true);

INSERT INTO peebot_setting (key, value) VALUES ('storage_mode', '"timescaledb"')
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now();
