/* Helpers of the administration routes: list queries, times, waiting for
 * the store at start-up (see admin.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/admin.h"
#include "util/err.h"

static bool known_name(const char *n, const char *const *known) {
  for (size_t i = 0; known[i]; i++)
    if (strcmp(known[i], n) == 0) return true;
  return false;
}

/* A parameter named in known (the ud), given once. */
static void known_param(json_t *q, rm_api_details *d, const char *path, const char *name, const char *value,
                        void *ud) {
  if (!known_name(name, ud)) rm_api_details_add(d, path, "unknown query parameter");
  else if (json_object_get(q, name)) rm_api_details_add(d, path, "given more than once");
  else json_object_set_new(q, name, json_string(value));
}

json_t *rm__serve_list_query(rm_hctx *c, const char *const *known, long def_size) {
  return rm_hctx_list_query(c, def_size, known_param, (void *)known);
}

void rm__serve_list_answer(rm_hctx *c, int err, const char *errmsg, json_t *res,
                           json_t *(*view)(const json_t *item)) {
  if (err == RM_EINVAL && c->req) {
    json_decref(res);
    rm_hctx_error(c, RM_API_INVALID_QUERY, errmsg);
    return;
  }
  if (rm_hctx_done_if_failed(c, err, errmsg, res)) return;
  json_t *items = json_object_get(res, "items"), *it;
  size_t i;
  json_array_foreach(items, i, it) if (view) json_array_set_new(items, i, view(it));
  rm_hctx_ok(c, 200, res);
}

bool rm__serve_is_admin(const rm_hctx *c) { return c->role == RM_ROLE_ADMIN; }

bool rm__serve_live(const json_t *doc) { return doc && json_is_null(json_object_get(doc, "deleted_at")); }

/* Reads n digits at *p into *out; false when they are not all digits. */
static bool digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i])) return false;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return true;
}

/* The offset of "Z", "+HH:MM", "+HHMM" or "+HH" at p in seconds; false
 * for anything else (trailing text included). */
static bool zone_offset(const char *p, long *off) {
  *off = 0;
  if (strcmp(p, "Z") == 0 || strcmp(p, "z") == 0) return true;
  if (*p != '+' && *p != '-') return false;
  int sign = *p++ == '-' ? -1 : 1, hh, mm = 0;
  if (!digits(&p, 2, &hh)) return false;
  if (*p == ':') p++;
  if (*p && !digits(&p, 2, &mm)) return false;
  if (*p || hh > 23 || mm > 59) return false;
  *off = sign * (hh * 3600L + mm * 60L);
  return true;
}

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int rm__serve_iso_to_unix(const char *s, int64_t *out) {
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const char *p = s;
  int y, mo, d, h = 0, mi = 0, sec = 0;
  long off = 0;
  if (!s || !digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' || !digits(&p, 2, &d))
    return RM_EINVAL;
  if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y))) return RM_EINVAL;
  if (*p == 'T' || *p == 't' || *p == ' ') {
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi)) return RM_EINVAL;
    if (*p == ':') {
      p++;
      if (!digits(&p, 2, &sec)) return RM_EINVAL;
    }
    if (*p == '.') /* fractions of a second are dropped */
      do p++;
      while (isdigit((unsigned char)*p));
    if (h > 23 || mi > 59 || sec > 60 || !zone_offset(p, &off)) return RM_EINVAL;
  } else if (*p) {
    return RM_EINVAL;
  }
  /* days since 1970-01-01 (civil-from-days, proleptic Gregorian) */
  int yy = mo <= 2 ? y - 1 : y;
  int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
  int64_t yoe = yy - era * 400, mp = (mo + 9) % 12;
  int64_t doy = (153 * mp + 2) / 5 + d - 1, doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = era * 146097 + doe - 719468;
  *out = days * 86400 + h * 3600 + mi * 60 + sec - off;
  return 0;
}

json_t *rm__serve_unix_to_iso(int64_t t) {
  time_t tt = (time_t)t;
  struct tm tm;
  char buf[40];
  if (!gmtime_r(&tt, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm)) return json_null();
  return json_string(buf);
}

void rm__serve_wait_cb(void *ud, int err, const char *errmsg, json_t *res) {
  rm__serve_waiter *w = ud;
  w->done = true;
  w->err = err;
  if (err) snprintf(w->errmsg, sizeof w->errmsg, "%s", errmsg ? errmsg : rm_strerror(err));
  w->res = res;
}

void rm__serve_wait(rm_serve *s, rm__serve_waiter *w) {
  while (!w->done) uv_run(&s->loop, UV_RUN_ONCE);
}
