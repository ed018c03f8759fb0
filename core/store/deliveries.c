/* Notification deliveries (store/deliveries.h): one row per message and
 * channel, its outcome, the dead-letter list that re-sends read, and the
 * leases that let a queued delivery outlive the process sending it. */
#include <stdio.h>
#include <string.h>

#include "store/deliveries.h"
#include "store/store_internal.h"
#include "util/err.h"

#define DELIVERY_COLS                                                                                            \
  "id, channel_id, channel_name, channel_type, event, object_kind, object_id, run_id, status, attempts, "      \
  "last_status, last_error, suppressed_by, resends, body, created_at, updated_at"

#define ADD_COLS                                                                                                 \
  "id, channel_id, channel_name, channel_type, event, object_kind, object_id, run_id, status, attempts, "      \
  "last_error, suppressed_by, resends, body, created_at, updated_at"
#define ADD_VALUES "$1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, 0, $12, rm_now(), rm_now()"

static const char *const statuses[] = {"queued", "delivered", "failed", "dead", "suppressed", NULL};

static const rm__field add_fields[] = {
    {"id", JSON_STRING, false},          {"channel_id", JSON_STRING, true},  {"event", JSON_STRING, true},
    {"status", JSON_STRING, true},       {"body", JSON_OBJECT, true},        {"channel_name", JSON_STRING, false},
    {"channel_type", JSON_STRING, false}, {"object_kind", JSON_STRING, false}, {"object_id", JSON_STRING, false},
    {"run_id", JSON_STRING, false},      {"last_error", JSON_STRING, false}, {"suppressed_by", JSON_STRING, false},
    {"lease_owner", JSON_STRING, false}, {"lease_ms", JSON_INTEGER, false}, {NULL, 0, false}};

static int add_run(rm__conn *c, rm__job *j) {
  static const char *const initial[] = {"queued", "suppressed", "dead", NULL};
  const json_t *d = json_object_get(j->args, "d");
  char id[RM_DELIVERY_ID_MAX + 1];
  int rc = rm__check(j, "delivery", d, add_fields);
  if (rc) return rc;
  if (!rm__one_of(rm__str(d, "status"), initial))
    return rm__fail(j, RM_EINVAL, "delivery: status: must be queued, suppressed or dead");
  if (rm__str(d, "id") && strlen(rm__str(d, "id")) > RM_DELIVERY_ID_MAX)
    return rm__fail(j, RM_EINVAL, "delivery: id: at most %d characters", RM_DELIVERY_ID_MAX);
  if (rm__str(d, "id")) snprintf(id, sizeof id, "%s", rm__str(d, "id"));
  else if (rm__uuid_ordered(id) != 0) return rm__fail(j, RM_EIO, "delivery: cannot make an id");
  /* only a queued delivery is being sent, so only it is leased */
  bool leased = rm__str(d, "lease_owner") && strcmp(rm__str(d, "status"), "queued") == 0;
  json_t *params = json_pack("[s s s? s? s s? s? s? s s? s? o]", id, rm__str(d, "channel_id"),
                             rm__str(d, "channel_name"), rm__str(d, "channel_type"), rm__str(d, "event"),
                             rm__str(d, "object_kind"), rm__str(d, "object_id"), rm__str(d, "run_id"),
                             rm__str(d, "status"), rm__str(d, "last_error"), rm__str(d, "suppressed_by"),
                             rm__json_text(json_object_get(d, "body")));
  if (leased && params) {
    json_array_append_new(params, json_string(rm__str(d, "lease_owner")));
    json_array_append_new(params, json_integer(json_integer_value(json_object_get(d, "lease_ms"))));
  }
  return rm__dbfail(j, c,
                    rm__q1(c, &j->result,
                           leased ? "INSERT INTO deliveries (" ADD_COLS ", lease_owner, lease_expires_at) VALUES ("
                                    ADD_VALUES ", $13, rm_now_plus_ms($14)) ON CONFLICT (id) DO NOTHING RETURNING "
                                    DELIVERY_COLS
                                  : "INSERT INTO deliveries (" ADD_COLS ") VALUES (" ADD_VALUES
                                    ") ON CONFLICT (id) DO NOTHING RETURNING " DELIVERY_COLS,
                           params));
}

/* After an UPDATE that matched nothing: RM_ENOTFOUND, or RM_ECONFLICT
 * naming the delivery's status and what was expected (want). */
static int not_changed(rm__conn *c, rm__job *j, const char *id, const char *want) {
  json_t *row = NULL;
  int rc = rm__dbfail(j, c, rm__q1(c, &row, "SELECT status FROM deliveries WHERE id = $1", json_pack("[s]", id)));
  if (rc == 0 && !row) rc = rm__fail(j, RM_ENOTFOUND, "delivery %s: not found", id);
  else if (rc == 0) rc = rm__fail(j, RM_ECONFLICT, "delivery %s is %s; %s", id, rm__str(row, "status"), want);
  json_decref(row);
  return rc;
}

static const rm__field end_fields[] = {{"status", JSON_STRING, true},
                                       {"attempts", JSON_INTEGER, true},
                                       {"last_status", JSON_INTEGER, false},
                                       {"last_error", JSON_STRING, false},
                                       {NULL, 0, false}};

static int end_run(rm__conn *c, rm__job *j) {
  static const char *const final[] = {"delivered", "failed", "dead", "queued", NULL};
  const json_t *o = json_object_get(j->args, "o");
  const char *id = rm__str(j->args, "id");
  int rc = rm__check(j, "delivery outcome", o, end_fields);
  if (rc) return rc;
  if (!rm__one_of(rm__str(o, "status"), final))
    return rm__fail(j, RM_EINVAL, "delivery outcome: status: must be delivered, failed, dead or queued");
  json_t *last = json_object_get(o, "last_status");
  /* queued: handed back, its lease over now, for the next claim */
  rc = rm__dbfail(j, c,
                  rm__q1(c, &j->result,
                         "UPDATE deliveries SET status = $2, attempts = attempts + $3, last_status = "
                         "COALESCE($4, last_status), last_error = $5, lease_owner = NULL, lease_expires_at = CASE "
                         "WHEN status = $2 THEN rm_now() ELSE NULL END, updated_at = rm_now() "
                         "WHERE id = $1 AND status = 'queued' RETURNING " DELIVERY_COLS,
                         json_pack("[s s O o s?]", id, rm__str(o, "status"), json_object_get(o, "attempts"),
                                   json_is_integer(last) && json_integer_value(last) > 0 ? json_incref(last) : json_null(),
                                   rm__str(o, "last_error"))));
  if (rc == 0 && !j->result) rc = not_changed(c, j, id, "only a queued delivery can end");
  return rc;
}

static int get_run(rm__conn *c, rm__job *j) {
  const char *id = rm__str(j->args, "id");
  int rc = rm__dbfail(j, c, rm__q1(c, &j->result, "SELECT " DELIVERY_COLS " FROM deliveries WHERE id = $1",
                                   json_pack("[s]", id)));
  if (rc == 0 && !j->result) rc = rm__fail(j, RM_ENOTFOUND, "delivery %s: not found", id);
  return rc;
}

static int requeue_run(rm__conn *c, rm__job *j) {
  const char *id = rm__str(j->args, "id");
  int rc = rm__dbfail(j, c,
                      rm__q1(c, &j->result,
                             "UPDATE deliveries SET status = 'queued', resends = resends + 1, lease_owner = $2, "
                             "lease_expires_at = rm_now_plus_ms($3), updated_at = rm_now() "
                             "WHERE id = $1 AND status IN ('dead', 'failed') RETURNING " DELIVERY_COLS,
                             json_pack("[s s I]", id, rm__str(j->args, "owner"),
                                       json_integer_value(json_object_get(j->args, "lease_ms")))));
  if (rc == 0 && !j->result) rc = not_changed(c, j, id, "only a dead or failed delivery can be re-sent");
  return rc;
}

/* ---- leases ---- */

static int renew_run(rm__conn *c, rm__job *j) {
  int64_t n = 0;
  int rc = rm__dbfail(j, c,
                      rm__qx(c, &n,
                             "UPDATE deliveries SET lease_expires_at = rm_now_plus_ms($2) "
                             "WHERE status = 'queued' AND lease_owner = $1",
                             json_pack("[s I]", rm__str(j->args, "owner"),
                                       json_integer_value(json_object_get(j->args, "lease_ms")))));
  if (rc == 0) j->result = json_pack("{s:I}", "renewed", (json_int_t)n);
  return rc;
}

/* Queued, and nobody's lease holds it: expired, handed back, or (a row
 * of an older binary, unleased) unchanged for a lease period. */
#define CLAIMABLE                                                                                                \
  "status = 'queued' AND (lease_expires_at <= rm_now() OR (lease_expires_at IS NULL AND "                      \
  "updated_at <= rm_now_plus_ms($4)))"

static int claim_run(rm__conn *c, rm__job *j) {
  const char *owner = rm__str(j->args, "owner");
  json_int_t lease = json_integer_value(json_object_get(j->args, "lease_ms"));
  json_int_t limit = json_integer_value(json_object_get(j->args, "limit"));
  if (!owner || !*owner || lease <= 0 || limit <= 0)
    return rm__fail(j, RM_EINVAL, "delivery_claim: owner, lease_ms > 0 and limit > 0 are required");
  /* PostgreSQL: rows another server is claiming right now are skipped;
   * SQLite: the one writer makes this atomic as is. */
  const char *sql = rm__conn_pg(c)
                        ? "UPDATE deliveries SET lease_owner = $1, lease_expires_at = rm_now_plus_ms($2), "
                          "updated_at = rm_now() WHERE id IN (SELECT id FROM deliveries WHERE " CLAIMABLE
                          " ORDER BY created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING " DELIVERY_COLS
                        : "UPDATE deliveries SET lease_owner = $1, lease_expires_at = rm_now_plus_ms($2), "
                          "updated_at = rm_now() WHERE id IN (SELECT id FROM deliveries WHERE " CLAIMABLE
                          " ORDER BY created_at, id LIMIT $3) RETURNING " DELIVERY_COLS;
  json_t *rows = NULL;
  int rc = rm__dbfail(j, c, rm__q(c, &rows, sql, json_pack("[s I I I]", owner, lease, limit, -lease)));
  if (rc == 0) j->result = json_pack("{s:o}", "items", rows ? rows : json_array());
  else json_decref(rows);
  return rc;
}

/* " AND status = ?" or " AND status IN (?, ...)" of known statuses. */
static int status_filter(rm__job *j, rm__sql *q, const json_t *status) {
  json_t *list = json_is_array(status) ? json_incref((json_t *)status) : json_pack("[O]", status);
  size_t i;
  json_t *v;
  int rc = list && json_array_size(list) ? 0 : rm__fail(j, RM_EINVAL, "status: must be a status or a list of them");
  json_array_foreach(list, i, v) if (rc == 0 && !rm__one_of(json_string_value(v), statuses))
      rc = rm__fail(j, RM_EINVAL, "status: '%s' is not one of queued, delivered, failed, dead, suppressed",
                    json_string_value(v) ? json_string_value(v) : "?");
  if (rc == 0) {
    rm__sql_add(q, " AND status IN (");
    json_array_foreach(list, i, v) rm__sql_add(q, i ? ", ?" : "?", json_incref(v));
    rm__sql_add(q, ")");
  }
  json_decref(list);
  return rc;
}

static int time_filter(rm__job *j, rm__sql *q, const json_t *query, const char *key, const char *frag) {
  char ts[32];
  const char *v = rm__str(query, key);
  if (!v) return 0;
  if (rm__ts_normalize(v, ts) != 0) return rm__fail(j, RM_EINVAL, "%s: not an ISO-8601 time", key);
  rm__sql_add(q, frag, json_string(ts));
  return 0;
}

static int list_run(rm__conn *c, rm__job *j) {
  static const char *const sorts[] = {"created_at", "updated_at", "status", "attempts", "event", NULL};
  static const char *const eq[] = {"channel_id", "object_id", "event", "run_id", NULL};
  static const rm__field fields[] = {{"channel_id", JSON_STRING, false}, {"object_id", JSON_STRING, false},
                                     {"event", JSON_STRING, false},      {"run_id", JSON_STRING, false},
                                     {"from", JSON_STRING, false},       {"to", JSON_STRING, false},
                                     {NULL, 0, false}};
  const json_t *query = json_object_get(j->args, "query"), *status = json_object_get(query, "status");
  char frag[64];
  rm__page p;
  int rc = rm__check(j, "delivery query", query, fields);
  if (rc == 0) rc = rm__page_parse(j, query, sorts, "-created_at", "id", &p);
  if (rc != 0) return rc;
  rm__sql q;
  rm__sql_init(&q);
  rm__sql_add(&q, "FROM deliveries WHERE 1 = 1");
  for (const char *const *k = eq; *k; k++)
    if (rm__str(query, *k)) {
      snprintf(frag, sizeof frag, " AND %s = ?", *k);
      rm__sql_add(&q, frag, json_string(rm__str(query, *k)));
    }
  if (status && !json_is_null(status)) rc = status_filter(j, &q, status);
  if (rc == 0) rc = time_filter(j, &q, query, "from", " AND created_at >= ?");
  if (rc == 0) rc = time_filter(j, &q, query, "to", " AND created_at < ?");
  if (rc != 0) {
    rm__sql_free(&q);
    return rc;
  }
  return rm__page_run(c, j, DELIVERY_COLS, &q, &p);
}

/* Ended deliveries (delivered, dead, suppressed, failed) last changed
 * before the period; queued ones are never pruned. */
#define OLD_DELIVERY "status <> 'queued' AND updated_at < rm_now_plus_ms($1)"

static int retention_run(rm__conn *c, rm__job *j) {
  return rm__prune(c, j, "delivery",
                   "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE " OLD_DELIVERY
                   " ORDER BY updated_at LIMIT $2)",
                   "SELECT EXISTS (SELECT 1 FROM deliveries WHERE " OLD_DELIVERY ") AS more");
}

static const rm__op retention_op = {"delivery_retention", RM__OP_WRITE, retention_run};
static const rm__op add_op = {"delivery_add", RM__OP_WRITE, add_run};
static const rm__op end_op = {"delivery_end", RM__OP_WRITE, end_run};
static const rm__op get_op = {"delivery_get", RM__OP_READ, get_run};
static const rm__op requeue_op = {"delivery_requeue", RM__OP_WRITE, requeue_run};
static const rm__op list_op = {"delivery_list", RM__OP_READ, list_run};
static const rm__op renew_op = {"delivery_renew", RM__OP_WRITE, renew_run};
static const rm__op claim_op = {"delivery_claim", RM__OP_WRITE, claim_run};

void rm_store_delivery_add(rm_store *s, const json_t *d, rm_store_cb cb, void *ud) {
  rm__submit(s, &add_op, json_pack("{s:o}", "d", rm__copy(d)), cb, ud);
}

void rm_store_delivery_retention(rm_store *s, uint64_t older_than_ms, int batch, rm_store_cb cb, void *ud) {
  rm__submit(s, &retention_op, json_pack("{s:I, s:i}", "older_ms", (json_int_t)older_than_ms, "batch", batch), cb, ud);
}

void rm_store_delivery_end(rm_store *s, const char *id, const json_t *o, rm_store_cb cb, void *ud) {
  rm__submit(s, &end_op, json_pack("{s:s, s:o}", "id", id, "o", rm__copy(o)), cb, ud);
}

void rm_store_delivery_get(rm_store *s, const char *id, rm_store_cb cb, void *ud) {
  rm__submit(s, &get_op, json_pack("{s:s}", "id", id), cb, ud);
}

void rm_store_delivery_requeue(rm_store *s, const char *id, const char *owner, uint64_t lease_ms, rm_store_cb cb,
                               void *ud) {
  rm__submit(s, &requeue_op, json_pack("{s:s, s:s, s:I}", "id", id, "owner", owner, "lease_ms", (json_int_t)lease_ms),
             cb, ud);
}

void rm_store_delivery_renew(rm_store *s, const char *owner, uint64_t lease_ms, rm_store_cb cb, void *ud) {
  rm__submit(s, &renew_op, json_pack("{s:s, s:I}", "owner", owner, "lease_ms", (json_int_t)lease_ms), cb, ud);
}

void rm_store_delivery_claim(rm_store *s, const char *owner, uint64_t lease_ms, int limit, rm_store_cb cb,
                             void *ud) {
  rm__submit(s, &claim_op,
             json_pack("{s:s, s:I, s:i}", "owner", owner, "lease_ms", (json_int_t)lease_ms, "limit", limit), cb, ud);
}

void rm_store_delivery_list(rm_store *s, const json_t *query, rm_store_cb cb, void *ud) {
  rm__submit(s, &list_op, json_pack("{s:o}", "query", query ? json_deep_copy(query) : json_object()), cb, ud);
}
