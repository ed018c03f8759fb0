-- v2: SQLite gains an index table of extracted variables (step_vars) for
-- searches by a variable's value. PostgreSQL already answers those from
-- the GIN index on steps.extracted, so this version changes nothing here;
-- it exists so both backends share version numbers.
SELECT 1;
