-- v5: when each scheduled item last fired (UTC milliseconds), so that the
-- fires missed while the server was down can be handled by the item's
-- missed-fire policy at the next start. Written in batches by the server's
-- scheduler (core/serve/schedules.c); an item is a check monitor's id.
CREATE TABLE schedule_state (
  item          text PRIMARY KEY,
  last_fire_ms  bigint NOT NULL,
  updated_at    timestamptz NOT NULL
);
