-- v4: notification deliveries (see the SQLite migration for the meaning
-- of the columns and statuses).

CREATE TABLE deliveries (
  id            text PRIMARY KEY,
  channel_id    text NOT NULL,
  channel_name  text,
  channel_type  text,
  event         text NOT NULL,
  object_kind   text,
  object_id     text,
  run_id        text,
  status        text NOT NULL,
  attempts      integer NOT NULL DEFAULT 0,
  last_status   integer,
  last_error    text,
  suppressed_by text,
  resends       integer NOT NULL DEFAULT 0,
  body          jsonb NOT NULL,
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL
);
CREATE INDEX deliveries_created ON deliveries (created_at);
CREATE INDEX deliveries_status ON deliveries (status, created_at);
CREATE INDEX deliveries_channel ON deliveries (channel_id, created_at);
CREATE INDEX deliveries_object ON deliveries (object_id, created_at);
