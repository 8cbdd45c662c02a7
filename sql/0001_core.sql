-- PeeBot core schema: the contract between peebot_ingest and peebot_dagster.
-- Plain PostgreSQL 15+. TimescaleDB-specific storage lives in 0002_*.timescaledb.sql.

CREATE TABLE IF NOT EXISTS peebot_setting (
    key         text PRIMARY KEY,
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS telemetry_channel (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id     text NOT NULL UNIQUE,
    description text NOT NULL DEFAULT '',
    discipline  text NOT NULL DEFAULT '',
    units       text NOT NULL DEFAULT '',
    enum_codes  jsonb NOT NULL DEFAULT '{}'::jsonb,   -- {"16": "NORMAL", ...}
    is_active   boolean NOT NULL DEFAULT true,        -- subscribed by the ingest daemon
    in_catalog  boolean NOT NULL DEFAULT true,        -- false: first seen on the feed
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every update the feed sent, exactly once. event_id = uuid5(item, ts, raw value):
-- a re-sent snapshot, a replayed file or a repeated inject is a no-op.
CREATE TABLE IF NOT EXISTS telemetry_reading (
    channel_id      integer NOT NULL REFERENCES telemetry_channel (id),
    ts              timestamptz NOT NULL,              -- the ISS TimeStamp, decoded to UTC
    value           double precision NOT NULL,
    calibrated_data text,
    status_class    smallint,
    event_id        uuid NOT NULL,
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    metadata        jsonb,                             -- raw TimeStamp, indicator, color, source ...
    -- time first: inserts land at the right-hand edge of the index (keeps COPY fast)
    CONSTRAINT telemetry_reading_dedupe UNIQUE (ts, event_id)
);
CREATE INDEX IF NOT EXISTS telemetry_reading_channel_ts
    ON telemetry_reading (channel_id, ts DESC);

-- What failed validation, never silently dropped.
CREATE TABLE IF NOT EXISTS rejected_update (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL DEFAULT 'feed',          -- feed | replay | inject
    item_id     text,
    reason      text NOT NULL,
    raw_payload jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS rejected_update_received_at ON rejected_update (received_at DESC);

-- Connection status changes and signal transitions (AOS / LOS / STALE), so detectors can
-- tell "quiet" from "no signal".
CREATE TABLE IF NOT EXISTS feed_status (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('connection', 'signal')),
    state       text NOT NULL,                         -- e.g. CONNECTED:WS-STREAMING, AOS, LOS, STALE
    changed_at  timestamptz NOT NULL,                  -- wall clock of the transition
    feed_ts     timestamptz,                           -- ISS time of the reading that caused it
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS feed_status_kind_changed ON feed_status (kind, changed_at DESC);

-- Watermarks: 'ingest' (newest reading written) and one row per detection processor.
CREATE TABLE IF NOT EXISTS processor_state (
    processor_name    text PRIMARY KEY,
    last_processed_at timestamptz,
    last_run_at       timestamptz,
    state_data        jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE IF NOT EXISTS detected_event (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_key    text NOT NULL UNIQUE,                 -- processor + channel + event start
    event_type   text NOT NULL,                        -- urination, bulk_transfer, upa_cycle_start, los ...
    processor    text NOT NULL,
    item_id      text NOT NULL,
    detected_at  timestamptz NOT NULL,                 -- event start
    ended_at     timestamptz,
    confidence   real NOT NULL DEFAULT 1 CHECK (confidence >= 0 AND confidence <= 1),
    metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
    window_key   text NOT NULL,                        -- the partition (window) that owns it
    retracted_at timestamptz,                          -- vanished on re-run but already posted
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    posted_at    timestamptz,
    tweet_id     text
);
CREATE INDEX IF NOT EXISTS detected_event_processor_start ON detected_event (processor, detected_at);
CREATE INDEX IF NOT EXISTS detected_event_type_start ON detected_event (event_type, detected_at DESC);

-- The outbox: one row per (event, backend), written in the event's transaction.
CREATE TABLE IF NOT EXISTS social_post (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    bigint NOT NULL REFERENCES detected_event (id) ON DELETE CASCADE,
    backend     text NOT NULL,                         -- dry_run | x | bluesky | mastodon
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'posted', 'failed', 'skipped')),
    text        text NOT NULL,
    external_id text,
    attempts    integer NOT NULL DEFAULT 0,
    error_kind  text,                                  -- retry | permanent | duplicate | ambiguous
    last_error  text,
    skip_reason text,
    not_before  timestamptz,                           -- retry later, not before this time
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    sending_at  timestamptz,
    posted_at   timestamptz,
    UNIQUE (event_id, backend)
);
CREATE INDEX IF NOT EXISTS social_post_status ON social_post (status, backend);
