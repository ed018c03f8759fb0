-- RestMon schema v1 (SQLite). Keep in step with postgresql/0001_init.sql:
-- same tables, columns and meaning; only the types differ. Timestamps are
-- ISO-8601 UTC text with milliseconds ("2026-01-02T03:04:05.678Z"), which
-- sorts and compares as time; JSON is text read with json_extract and
-- json_each; booleans are 0/1.

CREATE TABLE documents (
  id          TEXT PRIMARY KEY,
  kind        TEXT NOT NULL,
  name        TEXT NOT NULL,
  owner       TEXT,
  scope       TEXT NOT NULL DEFAULT 'global' CHECK (scope IN ('global', 'private')),
  tags        TEXT NOT NULL DEFAULT '[]',
  version     INTEGER NOT NULL,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  deleted_at  TEXT,
  body        TEXT NOT NULL
);
-- A name is unique per kind among live documents only, so a deleted
-- document's name can be used again.
CREATE UNIQUE INDEX documents_live_name ON documents (kind, name) WHERE deleted_at IS NULL;
CREATE INDEX documents_kind_updated ON documents (kind, updated_at);

CREATE TABLE workflow_versions (
  workflow_id   TEXT NOT NULL REFERENCES documents (id),
  version       INTEGER NOT NULL,
  definition    TEXT NOT NULL,
  published_at  TEXT NOT NULL,
  published_by  TEXT,
  PRIMARY KEY (workflow_id, version)
);
CREATE TRIGGER workflow_versions_no_update BEFORE UPDATE ON workflow_versions
BEGIN SELECT RAISE(ABORT, 'workflow versions are immutable'); END;
CREATE TRIGGER workflow_versions_no_delete BEFORE DELETE ON workflow_versions
BEGIN SELECT RAISE(ABORT, 'workflow versions are immutable'); END;

CREATE TABLE runs (
  run_id            TEXT PRIMARY KEY,
  workflow_id       TEXT,
  workflow_name     TEXT NOT NULL,
  workflow_version  INTEGER NOT NULL DEFAULT 0,
  definition        TEXT NOT NULL,
  source            TEXT,
  trigger           TEXT NOT NULL,
  trigger_type      TEXT NOT NULL,
  inputs            TEXT NOT NULL DEFAULT '{}',
  status            TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'degraded', 'failed', 'cancelled')),
  reason            TEXT,
  vars              TEXT NOT NULL DEFAULT '{}',
  dry_run           BOOLEAN NOT NULL DEFAULT 0,
  rerun_of          TEXT,
  resumed_from      TEXT,
  created_at        TEXT NOT NULL,
  started_at        TEXT,
  finished_at       TEXT,
  duration_ms       REAL,
  summary           TEXT,
  tags              TEXT NOT NULL DEFAULT '[]',
  lease_owner       TEXT,
  lease_expires_at  TEXT,
  cancel_requested  BOOLEAN NOT NULL DEFAULT 0,
  acknowledged_by   TEXT,
  acknowledged_at   TEXT
);
CREATE INDEX runs_created ON runs (created_at);
CREATE INDEX runs_workflow_id ON runs (workflow_id, created_at);
CREATE INDEX runs_workflow_name ON runs (workflow_name, created_at);
CREATE INDEX runs_status ON runs (status, created_at);
CREATE INDEX runs_trigger ON runs (trigger_type, created_at);
CREATE INDEX runs_lease ON runs (status, lease_expires_at);
CREATE INDEX runs_finished ON runs (status, finished_at);

CREATE TABLE steps (
  run_id       TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  task         TEXT NOT NULL,
  status       TEXT,
  http_status  INTEGER,
  extracted    TEXT NOT NULL DEFAULT '{}',
  record       TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  PRIMARY KEY (run_id, task)
);
CREATE INDEX steps_run_seq ON steps (run_id, seq);
CREATE INDEX steps_http_status ON steps (http_status, run_id);

CREATE TABLE annotations (
  id          TEXT PRIMARY KEY,
  run_id      TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  kind        TEXT NOT NULL CHECK (kind IN ('note', 'ack')),
  author      TEXT,
  text        TEXT,
  created_at  TEXT NOT NULL
);
CREATE INDEX annotations_run ON annotations (run_id, created_at);

CREATE TABLE audit (
  id           TEXT PRIMARY KEY,
  at           TEXT NOT NULL,
  actor        TEXT NOT NULL,
  action       TEXT NOT NULL,
  object_kind  TEXT,
  object_id    TEXT,
  before       TEXT,
  after        TEXT,
  ip           TEXT
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_object ON audit (object_kind, object_id, at);
CREATE INDEX audit_actor ON audit (actor, at);
