-- The review queue (issue 16): an event below PEEBOT_POST_MIN_CONFIDENCE gets its outbox row
-- `skipped` with skip_reason `low_confidence: ...`; `peebot posts approve ID` puts it back to
-- pending and records who approved it and when (a row is approved at most once).
ALTER TABLE social_post ADD COLUMN IF NOT EXISTS approved_by text;
ALTER TABLE social_post ADD COLUMN IF NOT EXISTS approved_at timestamptz;
