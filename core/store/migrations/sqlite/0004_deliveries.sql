-- v4: notification deliveries. One row per message sent (or suppressed)
-- through one channel: workflow-level notifications when a run ends,
-- signal transitions, escalations and re-sends of dead letters. body is
-- the message as sent, scrubbed of every vault secret value.
-- status: queued | delivered | failed (cut short, e.g. at shutdown) |
-- dead (every attempt failed, or a permanent refusal) | suppressed (a
-- maintenance window or a disabled channel held it back).

CREATE TABLE deliveries (
  id            TEXT PRIMARY KEY,
  channel_id    TEXT NOT NULL,
  channel_name  TEXT,
  channel_type  TEXT,
  event         TEXT NOT NULL,
  object_kind   TEXT,
  object_id     TEXT,
  run_id        TEXT,
  status        TEXT NOT NULL,
  attempts      INTEGER NOT NULL DEFAULT 0,
  last_status   INTEGER,
  last_error    TEXT,
  suppressed_by TEXT,
  resends       INTEGER NOT NULL DEFAULT 0,
  body          TEXT NOT NULL,
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL
);
CREATE INDEX deliveries_created ON deliveries (created_at);
CREATE INDEX deliveries_status ON deliveries (status, created_at);
CREATE INDEX deliveries_channel ON deliveries (channel_id, created_at);
CREATE INDEX deliveries_object ON deliveries (object_id, created_at);
