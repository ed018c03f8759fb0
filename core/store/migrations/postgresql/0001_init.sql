-- RestMon schema v1 (PostgreSQL). Keep in step with sqlite/0001_init.sql:
-- same tables, columns and meaning; only the types differ. Documents,
-- definitions and records are `json`, which keeps the text as given (a
-- workflow's tasks keep their order); the columns that are searched (tags,
-- extracted variables) are `jsonb` with GIN indexes.

-- Every timestamp the store writes comes from these, so all nodes share
-- the database server's clock (leases compare against it) and times have
-- millisecond precision as on SQLite.
CREATE FUNCTION rm_now() RETURNS timestamptz LANGUAGE sql STABLE
AS $$ SELECT date_trunc('milliseconds', now()) $$;
CREATE FUNCTION rm_now_plus_ms(ms bigint) RETURNS timestamptz LANGUAGE sql STABLE
AS $$ SELECT date_trunc('milliseconds', now()) + ms * interval '1 millisecond' $$;

CREATE TABLE documents (
  id          text PRIMARY KEY,
  kind        text NOT NULL,
  name        text NOT NULL,
  owner       text,
  scope       text NOT NULL DEFAULT 'global' CHECK (scope IN ('global', 'private')),
  tags        jsonb NOT NULL DEFAULT '[]',
  version     integer NOT NULL,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL,
  deleted_at  timestamptz,
  body        json NOT NULL
);
CREATE UNIQUE INDEX documents_live_name ON documents (kind, name) WHERE deleted_at IS NULL;
CREATE INDEX documents_kind_updated ON documents (kind, updated_at);
CREATE INDEX documents_tags ON documents USING gin (tags jsonb_path_ops);

CREATE TABLE workflow_versions (
  workflow_id   text NOT NULL REFERENCES documents (id),
  version       integer NOT NULL,
  definition    json NOT NULL,
  published_at  timestamptz NOT NULL,
  published_by  text,
  PRIMARY KEY (workflow_id, version)
);
CREATE FUNCTION rm_workflow_versions_immutable() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN RAISE EXCEPTION 'workflow versions are immutable'; END $$;
CREATE TRIGGER workflow_versions_immutable BEFORE UPDATE OR DELETE ON workflow_versions
FOR EACH ROW EXECUTE FUNCTION rm_workflow_versions_immutable();

CREATE TABLE runs (
  run_id            text PRIMARY KEY,
  workflow_id       text,
  workflow_name     text NOT NULL,
  workflow_version  integer NOT NULL DEFAULT 0,
  definition        json NOT NULL,
  source            text,
  trigger           json NOT NULL,
  trigger_type      text NOT NULL,
  inputs            json NOT NULL DEFAULT '{}',
  status            text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'degraded', 'failed', 'cancelled')),
  reason            text,
  vars              json NOT NULL DEFAULT '{}',
  dry_run           boolean NOT NULL DEFAULT false,
  rerun_of          text,
  resumed_from      text,
  created_at        timestamptz NOT NULL,
  started_at        timestamptz,
  finished_at       timestamptz,
  duration_ms       double precision,
  summary           json,
  tags              jsonb NOT NULL DEFAULT '[]',
  lease_owner       text,
  lease_expires_at  timestamptz,
  cancel_requested  boolean NOT NULL DEFAULT false,
  acknowledged_by   text,
  acknowledged_at   timestamptz
);
CREATE INDEX runs_created ON runs (created_at);
CREATE INDEX runs_workflow_id ON runs (workflow_id, created_at);
CREATE INDEX runs_workflow_name ON runs (workflow_name, created_at);
CREATE INDEX runs_status ON runs (status, created_at);
CREATE INDEX runs_trigger ON runs (trigger_type, created_at);
CREATE INDEX runs_lease ON runs (status, lease_expires_at);
CREATE INDEX runs_finished ON runs (status, finished_at);
CREATE INDEX runs_tags ON runs USING gin (tags jsonb_path_ops);

CREATE TABLE steps (
  run_id       text NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  seq          integer NOT NULL,
  task         text NOT NULL,
  status       text,
  http_status  integer,
  extracted    jsonb NOT NULL DEFAULT '{}',
  record       json NOT NULL,
  updated_at   timestamptz NOT NULL,
  PRIMARY KEY (run_id, task)
);
CREATE INDEX steps_run_seq ON steps (run_id, seq);
CREATE INDEX steps_http_status ON steps (http_status, run_id);
CREATE INDEX steps_extracted ON steps USING gin (extracted jsonb_path_ops);

CREATE TABLE annotations (
  id          text PRIMARY KEY,
  run_id      text NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  kind        text NOT NULL CHECK (kind IN ('note', 'ack')),
  author      text,
  text        text,
  created_at  timestamptz NOT NULL
);
CREATE INDEX annotations_run ON annotations (run_id, created_at);

CREATE TABLE audit (
  id           text PRIMARY KEY,
  at           timestamptz NOT NULL,
  actor        text NOT NULL,
  action       text NOT NULL,
  object_kind  text,
  object_id    text,
  before       json,
  after        json,
  ip           text
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_object ON audit (object_kind, object_id, at);
CREATE INDEX audit_actor ON audit (actor, at);
