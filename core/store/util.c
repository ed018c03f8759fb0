/* Small helpers of the store: job errors, argument access, time text and
 * ids. Times are "YYYY-MM-DDTHH:MM:SS.mmmZ" everywhere: that text sorts
 * as time, so SQLite compares it directly, and PostgreSQL parses it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_internal.h"
#include "util/err.h"
#include "util/text.h"
#include "util/json_dump.h"
#include "util/iso_time.h"

int rm__fail(rm__job *j, int err, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  free(j->errmsg);
  j->errmsg = strdup(msg);
  j->err = err;
  return err;
}

int rm__dbfail(rm__job *j, rm__conn *c, int rc) {
  if (rc == RM__ERETRY || rc == 0) return rc;
  return rm__fail(j, rc == RM_ECONFLICT || rc == RM_ENOMEM ? rc : RM_EDB, "%s", c->err);
}

void rm__job_reset(rm__job *j) {
  free(j->errmsg);
  j->errmsg = NULL;
  json_decref(j->result);
  j->result = NULL;
  j->err = 0;
}

static bool has_type(const json_t *v, json_type t) {
  if (t == JSON_TRUE) return json_is_boolean(v);
  if (t == JSON_REAL) return json_is_number(v);
  return json_typeof(v) == t;
}

static const char *type_name(json_type t) {
  switch (t) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a number";
  case JSON_TRUE: return "a boolean";
  default: return "null";
  }
}

int rm__check(rm__job *j, const char *what, const json_t *o, const rm__field *fields) {
  if (!json_is_object(o)) return rm__fail(j, RM_EINVAL, "%s: must be a JSON object", what);
  for (const rm__field *f = fields; f->name; f++) {
    const json_t *v = json_object_get(o, f->name);
    if (!v || json_is_null(v)) {
      if (f->required) return rm__fail(j, RM_EINVAL, "%s: %s: required (%s)", what, f->name, type_name(f->type));
      continue;
    }
    if (!has_type(v, f->type)) return rm__fail(j, RM_EINVAL, "%s: %s: must be %s", what, f->name, type_name(f->type));
  }
  return 0;
}

bool rm__one_of(const char *s, const char *const *set) {
  for (; s && *set; set++)
    if (strcmp(s, *set) == 0) return true;
  return false;
}

const char *rm__str(const json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }

json_t *rm__json_text(const json_t *v) {
  if (!v || json_is_null(v)) return json_null();
  char *text = rm_json_dumps(v, 0);
  json_t *s = text ? json_string(text) : NULL;
  free(text);
  return s;
}

json_t *rm__copy(const json_t *v) { return v ? json_deep_copy(v) : json_null(); }

uint64_t rm__mono_ms(void) { return uv_hrtime() / 1000000; }

void rm__ts_format(int64_t ms, char out[32]) { rm_iso_ms(ms, out); }

int64_t rm__wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads exactly width digits. */
static bool digits(const char **p, int width, int *out) {
  int v = 0;
  for (int i = 0; i < width; i++) {
    char c = (*p)[i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *p += width;
  *out = v;
  return true;
}

/* "Z", "+02:00", "-0530", "+02" or nothing (UTC): seconds east of UTC. */
static bool zone(const char *p, int *offset) {
  int hh = 0, mm = 0;
  *offset = 0;
  if (*p == '\0') return true;
  if ((*p == 'Z' || *p == 'z') && p[1] == '\0') return true;
  if (*p != '+' && *p != '-') return false;
  int sign = *p++ == '-' ? -1 : 1;
  if (!digits(&p, 2, &hh)) return false;
  if (*p == ':') p++;
  if (*p && !digits(&p, 2, &mm)) return false;
  *offset = sign * (hh * 3600 + mm * 60);
  return *p == '\0' && hh < 24 && mm < 60;
}

int rm__ts_normalize(const char *in, char out[32]) {
  const char *p = in;
  int Y, M, D, h = 0, m = 0, s = 0, ms = 0, off = 0;
  if (!p || !digits(&p, 4, &Y) || *p++ != '-' || !digits(&p, 2, &M) || *p++ != '-' || !digits(&p, 2, &D))
    return RM_EINVAL;
  if (*p == 'T' || *p == 't' || *p == ' ') {
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &m)) return RM_EINVAL;
    if (*p == ':' && (p++, !digits(&p, 2, &s))) return RM_EINVAL;
    if (*p == '.' || *p == ',') {
      int scale = 100, n = 0;
      for (p++; *p >= '0' && *p <= '9'; p++, n++) {
        ms += (*p - '0') * scale;
        scale /= 10;
      }
      if (n == 0) return RM_EINVAL;
    }
  }
  if (!zone(p, &off) || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || s > 60) return RM_EINVAL;
  struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = s};
  time_t t = timegm(&tm) - off;
  rm__ts_format((int64_t)t * 1000 + ms, out);
  return 0;
}

int rm__uuid(char out[37]) { return rm_uuid_v4(out); }

int rm__uuid_ordered(char out[37]) { return rm_uuid_v7(out); }

int rm__prune(rm__conn *c, rm__job *j, const char *what, const char *delete_sql, const char *more_sql) {
  json_int_t older_ms = json_integer_value(json_object_get(j->args, "older_ms"));
  json_int_t batch = json_integer_value(json_object_get(j->args, "batch"));
  int64_t deleted = 0;
  json_t *more = NULL;
  if (batch <= 0) return rm__fail(j, RM_EINVAL, "%s retention: batch must be > 0", what);
  if (older_ms <= 0) {
    j->result = json_pack("{s:i, s:b}", "deleted", 0, "more", 0);
    return 0;
  }
  int rc = rm__dbfail(j, c, rm__qx(c, &deleted, delete_sql, json_pack("[I I]", -older_ms, batch)));
  if (rc == 0) rc = rm__dbfail(j, c, rm__q1(c, &more, more_sql, json_pack("[I]", -older_ms)));
  if (rc == 0)
    j->result = json_pack("{s:I, s:b}", "deleted", (json_int_t)deleted, "more",
                          json_is_true(json_object_get(more, "more")));
  json_decref(more);
  return rc;
}
