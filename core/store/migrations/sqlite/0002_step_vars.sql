-- v2 (SQLite): an index table of extracted variables, so a search by a
-- variable's value is an index lookup instead of a scan of every step's
-- JSON. Kept by triggers on steps. Values are canonical JSON text: strings
-- quoted, numbers as SQLite prints them, true/false/null, objects and
-- arrays minified. PostgreSQL needs no such table (GIN on steps.extracted).

CREATE TABLE step_vars (
  run_id  TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  task    TEXT NOT NULL,
  name    TEXT NOT NULL,
  value   TEXT NOT NULL,
  PRIMARY KEY (run_id, task, name)
) WITHOUT ROWID;
CREATE INDEX step_vars_lookup ON step_vars (name, value);

CREATE TRIGGER steps_vars_insert AFTER INSERT ON steps
BEGIN
  INSERT OR REPLACE INTO step_vars (run_id, task, name, value)
  SELECT NEW.run_id, NEW.task, v.key,
         CASE v.type WHEN 'text' THEN json_quote(v.value) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                     WHEN 'null' THEN 'null' WHEN 'integer' THEN CAST(v.value AS TEXT)
                     WHEN 'real' THEN CAST(v.value AS TEXT) ELSE json(v.value) END
  FROM json_each(NEW.extracted) v;
END;

CREATE TRIGGER steps_vars_update AFTER UPDATE OF extracted ON steps
BEGIN
  DELETE FROM step_vars WHERE run_id = OLD.run_id AND task = OLD.task;
  INSERT OR REPLACE INTO step_vars (run_id, task, name, value)
  SELECT NEW.run_id, NEW.task, v.key,
         CASE v.type WHEN 'text' THEN json_quote(v.value) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                     WHEN 'null' THEN 'null' WHEN 'integer' THEN CAST(v.value AS TEXT)
                     WHEN 'real' THEN CAST(v.value AS TEXT) ELSE json(v.value) END
  FROM json_each(NEW.extracted) v;
END;

CREATE TRIGGER steps_vars_delete AFTER DELETE ON steps
BEGIN
  DELETE FROM step_vars WHERE run_id = OLD.run_id AND task = OLD.task;
END;

INSERT OR REPLACE INTO step_vars (run_id, task, name, value)
SELECT s.run_id, s.task, v.key,
       CASE v.type WHEN 'text' THEN json_quote(v.value) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                   WHEN 'null' THEN 'null' WHEN 'integer' THEN CAST(v.value AS TEXT)
                   WHEN 'real' THEN CAST(v.value AS TEXT) ELSE json(v.value) END
FROM steps s, json_each(s.extracted) v;
