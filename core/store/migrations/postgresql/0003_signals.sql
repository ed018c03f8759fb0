-- v3: signals. One row per monitoring object holding its state machine
-- (core/signal, rm_signal_to_json) and the current state, and the
-- timeline of its transitions with their evidence. Keep in step with
-- sqlite/0003_signals.sql.

CREATE TABLE signals (
  object_id        text PRIMARY KEY,
  object_type      text NOT NULL CHECK (object_type IN ('check', 'metric', 'event')),
  name             text,
  tags             jsonb NOT NULL DEFAULT '[]',
  state            text NOT NULL CHECK (state IN ('unknown', 'healthy', 'degraded', 'failed')),
  -- the overview's order: failed 3, degraded 2, unknown 1, healthy 0
  state_rank       integer NOT NULL,
  machine          jsonb NOT NULL,
  transitions      bigint NOT NULL DEFAULT 0,
  changed_at       timestamptz,
  observed_at      timestamptz,
  acknowledged_by  text,
  acknowledged_at  timestamptz,
  ack_text         text,
  updated_at       timestamptz NOT NULL
);
CREATE INDEX signals_rank ON signals (state_rank, changed_at);

CREATE TABLE signal_transitions (
  object_id       text NOT NULL,
  seq             bigint NOT NULL,
  at              timestamptz NOT NULL,
  from_state      text NOT NULL,
  to_state        text NOT NULL,
  severity        text NOT NULL,
  source_type     text NOT NULL,
  correlation_id  text,
  body            jsonb NOT NULL,
  PRIMARY KEY (object_id, seq)
);
CREATE INDEX signal_transitions_object_at ON signal_transitions (object_id, at);
CREATE INDEX signal_transitions_at ON signal_transitions (at);
