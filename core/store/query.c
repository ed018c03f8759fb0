/* Building SQL with numbered parameters, and the paged lists every list
 * operation returns ({"items", "page", "page_size", "total",
 * "total_pages"}). Sort columns come only from the caller's allowlist, so
 * user input never reaches the SQL text. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/err.h"

#define PAGE_SIZE_DEFAULT 50
#define PAGE_SIZE_MAX 500

void rm__sql_init(rm__sql *q) {
  memset(q, 0, sizeof *q);
  q->params = json_array();
  if (!q->params) q->err = RM_ENOMEM;
}

void rm__sql_add(rm__sql *q, const char *frag, ...) {
  va_list ap;
  va_start(ap, frag);
  for (const char *p = frag; *p; p++) {
    if (*p != '?') {
      if (rm_buf_putc(&q->b, *p)) q->err = RM_ENOMEM;
      continue;
    }
    json_t *v = va_arg(ap, json_t *);
    if (!v || json_array_append_new(q->params, v)) q->err = RM_ENOMEM;
    if (rm_buf_printf(&q->b, "$%zu", json_array_size(q->params))) q->err = RM_ENOMEM;
  }
  va_end(ap);
}

int rm__sql_time(rm__job *j, rm__sql *q, const json_t *query, const char *key, const char *frag) {
  const json_t *v = json_object_get(query, key);
  char ts[32];
  if (!v || json_is_null(v)) return 0;
  if (!json_is_string(v) || rm__ts_normalize(json_string_value(v), ts) != 0)
    return rm__fail(j, RM_EINVAL, "%s: not an ISO-8601 time (2026-01-02T03:04:05Z)", key);
  rm__sql_add(q, frag, json_string(ts));
  return 0;
}

void rm__sql_free(rm__sql *q) {
  rm_buf_free(&q->b);
  json_decref(q->params);
  q->params = NULL;
}

static int int_field(rm__job *j, const json_t *query, const char *key, int dflt, int min, int *out) {
  const json_t *v = json_object_get(query, key);
  *out = dflt;
  if (!v || json_is_null(v)) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > 1000000000)
    return rm__fail(j, RM_EINVAL, "%s: must be an integer >= %d", key, min);
  *out = (int)json_integer_value(v);
  return 0;
}

/* Columns that are never NULL sort without "NULLS LAST": on PostgreSQL
 * that clause on a descending sort keeps the planner from scanning the
 * column's index backwards (newest runs: ~1 s instead of ~1 ms at 1 M
 * runs), and it changes nothing for them. */
static bool never_null(const char *col) {
  static const char *const cols[] = {"created_at", "updated_at", "at", "name", "id", "run_id", "status", NULL};
  for (size_t i = 0; cols[i]; i++)
    if (strcmp(cols[i], col) == 0) return true;
  return false;
}

int rm__page_parse(rm__job *j, const json_t *query, const char *const *allowed, const char *dflt,
                   const char *tiebreak, rm__page *p) {
  int rc = int_field(j, query, "page", 1, 1, &p->page);
  if (rc == 0) rc = int_field(j, query, "page_size", PAGE_SIZE_DEFAULT, 1, &p->size);
  if (rc != 0) return rc;
  if (p->size > PAGE_SIZE_MAX) p->size = PAGE_SIZE_MAX;
  const json_t *sv = json_object_get(query, "sort");
  if (sv && !json_is_null(sv) && !json_is_string(sv)) return rm__fail(j, RM_EINVAL, "sort: must be a string");
  const char *sort = sv && json_is_string(sv) ? json_string_value(sv) : dflt;
  bool desc = sort[0] == '-';
  const char *col = desc ? sort + 1 : sort;
  for (const char *const *a = allowed; *a; a++)
    if (strcmp(*a, col) == 0) {
      snprintf(p->order, sizeof p->order, " ORDER BY %s %s%s, %s %s", *a, desc ? "DESC" : "ASC",
               never_null(*a) ? "" : " NULLS LAST", tiebreak, desc ? "DESC" : "ASC");
      return 0;
    }
  rm_buf names = RM_BUF_INIT;
  for (const char *const *a = allowed; *a; a++) rm_buf_printf(&names, "%s%s", a == allowed ? "" : ", ", *a);
  rc = rm__fail(j, RM_EINVAL, "sort: '%s' is not one of %s (a leading '-' sorts descending)", sort,
                names.data ? names.data : "");
  rm_buf_free(&names);
  return rc;
}

/* Counting every match of a broad search costs as much as reading them
 * all; lists count up to this many (or past the page asked for) and say
 * "total_capped" beyond it. */
enum { COUNT_CAP = 10000 };

static json_int_t count_cap(const rm__page *p) {
  json_int_t through_page = (json_int_t)p->page * p->size + p->size;
  return through_page > COUNT_CAP ? through_page : COUNT_CAP;
}

int rm__page_run(rm__conn *c, rm__job *j, const char *cols, rm__sql *q, const rm__page *p) {
  rm_buf count = RM_BUF_INIT, items = RM_BUF_INIT;
  json_t *row = NULL, *rows = NULL;
  int rc = q->err;
  if (rc == 0)
    rc = rm_buf_printf(&count, "SELECT count(*) AS total FROM (SELECT 1 %s LIMIT %lld) counted", q->b.data,
                       (long long)count_cap(p) + 1) ||
                 rm_buf_printf(&items, "SELECT %s %s%s LIMIT $%zu OFFSET $%zu", cols, q->b.data, p->order,
                               json_array_size(q->params) + 1, json_array_size(q->params) + 2)
             ? RM_ENOMEM
             : 0;
  if (rc == 0) rc = rm__dbfail(j, c, rm__q1(c, &row, count.data, json_incref(q->params)));
  json_int_t total = json_integer_value(json_object_get(row, "total"));
  if (rc == 0 && json_array_append_new(q->params, json_integer(p->size)) == 0 &&
      json_array_append_new(q->params, json_integer((json_int_t)(p->page - 1) * p->size)) == 0)
    rc = rm__dbfail(j, c, rm__q(c, &rows, items.data, json_incref(q->params)));
  if (rc == 0) {
    bool capped = total > count_cap(p);
    if (capped) total = count_cap(p);
    json_int_t pages = (total + p->size - 1) / p->size;
    j->result = json_pack("{s:o, s:i, s:i, s:I, s:I, s:b}", "items", rows, "page", p->page, "page_size", p->size,
                          "total", (json_int_t)total, "total_pages", pages, "total_capped", capped);
    rows = NULL;
    if (!j->result) rc = rm__fail(j, RM_ENOMEM, "out of memory");
  } else if (rc == RM_ENOMEM && !j->errmsg) {
    rm__fail(j, RM_ENOMEM, "out of memory");
  }
  json_decref(row);
  json_decref(rows);
  rm_buf_free(&count);
  rm_buf_free(&items);
  rm__sql_free(q);
  return rc;
}
