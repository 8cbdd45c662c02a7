-- Plain PostgreSQL storage for telemetry_reading: a BRIN index on time (cheap, fits
-- append-mostly time series) and a view with the same shape as TimescaleDB's continuous
-- aggregate. Retention is done by `peebot db maintain`.
CREATE INDEX IF NOT EXISTS telemetry_reading_ts_brin
    ON telemetry_reading USING brin (ts) WITH (pages_per_range = 32);

CREATE OR REPLACE VIEW telemetry_minute AS
SELECT
    channel_id,
    date_trunc('minute', ts)                   AS bucket,
    (array_agg(value ORDER BY ts ASC))[1]      AS first_value,
    (array_agg(value ORDER BY ts DESC))[1]     AS last_value,
    min(value)                                 AS min_value,
    max(value)                                 AS max_value,
    count(*)                                   AS n
FROM telemetry_reading
GROUP BY channel_id, date_trunc('minute', ts);

INSERT INTO peebot_setting (key, value) VALUES ('storage_mode', '"plain"')
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now();
