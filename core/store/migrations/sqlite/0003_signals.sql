-- v3 (SQLite): signals. One row per monitoring object holding its state
-- machine (core/signal, rm_signal_to_json) and the current state, and the
-- timeline of its transitions with their evidence. Keep in step with
-- postgresql/0003_signals.sql.

CREATE TABLE signals (
  object_id        TEXT PRIMARY KEY,
  object_type      TEXT NOT NULL CHECK (object_type IN ('check', 'metric', 'event')),
  name             TEXT,
  tags             TEXT NOT NULL DEFAULT '[]',
  state            TEXT NOT NULL CHECK (state IN ('unknown', 'healthy', 'degraded', 'failed')),
  -- the overview's order: failed 3, degraded 2, unknown 1, healthy 0
  state_rank       INTEGER NOT NULL,
  machine          TEXT NOT NULL,
  transitions      INTEGER NOT NULL DEFAULT 0,
  changed_at       TEXT,
  observed_at      TEXT,
  acknowledged_by  TEXT,
  acknowledged_at  TEXT,
  ack_text         TEXT,
  updated_at       TEXT NOT NULL
);
CREATE INDEX signals_rank ON signals (state_rank, changed_at);

CREATE TABLE signal_transitions (
  object_id       TEXT NOT NULL,
  seq             INTEGER NOT NULL,
  at              TEXT NOT NULL,
  from_state      TEXT NOT NULL,
  to_state        TEXT NOT NULL,
  severity        TEXT NOT NULL,
  source_type     TEXT NOT NULL,
  correlation_id  TEXT,
  body            TEXT NOT NULL,
  PRIMARY KEY (object_id, seq)
);
CREATE INDEX signal_transitions_object_at ON signal_transitions (object_id, at);
CREATE INDEX signal_transitions_at ON signal_transitions (at);
