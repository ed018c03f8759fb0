/* Validation of a task's request against its plugin's manifest
 * (plugins/NAME/manifest.json: {"fields": [{"name", "type", "required",
 * "default", "options"}, ...]}), and the checks particular to "http". */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/validate_internal.h"
#include "util/buf.h"

enum mtype {
  MT_TEXT,
  MT_NUMBER,
  MT_BOOLEAN,
  MT_DATE,
  MT_TIME,
  MT_DATETIME,
  MT_LIST,
  MT_MAP,
  MT_OBJECT,
  MT_JSON,
  MT_PASSWORD
};
static const char *const mtypes[] = {"text", "number", "boolean", "date", "time",     "datetime",
                                     "list", "map",    "object",  "json", "password", NULL};

static const rm__field auth_basic[] = {
    {"type", RM__T_STRING, 1}, {"username", RM__T_STRING, 1}, {"password", RM__T_STRING, 1}};
static const rm__field auth_bearer[] = {{"type", RM__T_STRING, 1}, {"token", RM__T_STRING, 1}};
static const rm__field auth_api_key[] = {{"type", RM__T_STRING, 1},
                                         {"value", RM__T_STRING, 1},
                                         {"header", RM__T_STRING, 0},
                                         {"query", RM__T_STRING, 0}};
static const rm__field auth_hmac[] = {{"type", RM__T_STRING, 1},
                                      {"secret", RM__T_STRING, 1},
                                      {"header", RM__T_STRING, 0},
                                      {"prefix", RM__T_STRING, 0}};
static const struct {
  const char *type;
  const rm__field *fields;
  size_t n;
} auth_types[] = {
    {"basic", auth_basic, RM__NFIELDS(auth_basic)},
    {"bearer", auth_bearer, RM__NFIELDS(auth_bearer)},
    {"api_key", auth_api_key, RM__NFIELDS(auth_api_key)},
    {"hmac_sha256", auth_hmac, RM__NFIELDS(auth_hmac)},
};

static const char *const http_bodies[] = {"body", "json", "form"};

static const int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

/* YYYY-MM-DD with a day that exists. Returns the length parsed or 0. */
static size_t parse_date(const char *s) {
  int y = rm__digits(s, 4, 0, 9999);
  int m = y < 0 || s[4] != '-' ? -1 : rm__digits(s + 5, 2, 1, 12);
  int d = m < 0 || s[7] != '-' ? -1 : rm__digits(s + 8, 2, 1, month_days[m - 1]);
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d < 0 || (m == 2 && d == 29 && !leap)) return 0;
  return 10;
}

/* HH:MM[:SS[.fraction]]. Returns the length parsed or 0. */
static size_t parse_time(const char *s) {
  if (rm__digits(s, 2, 0, 23) < 0 || s[2] != ':' || rm__digits(s + 3, 2, 0, 59) < 0) return 0;
  if (s[5] != ':') return 5;
  if (rm__digits(s + 6, 2, 0, 60) < 0) return 0;
  size_t n = 8;
  if (s[n] == '.') {
    size_t start = ++n;
    while (isdigit((unsigned char)s[n])) n++;
    if (n == start) return 0;
  }
  return n;
}

/* Date "T" time, then optionally "Z" or +HH:MM / -HH:MM. */
static int datetime_ok(const char *s) {
  size_t n = parse_date(s);
  if (!n || (s[n] != 'T' && s[n] != 't')) return 0;
  size_t t = parse_time(s + n + 1);
  if (!t) return 0;
  s += n + 1 + t;
  if (*s == 'Z' || *s == 'z') return s[1] == '\0';
  if (*s == '+' || *s == '-')
    return rm__digits(s + 1, 2, 0, 23) >= 0 && s[3] == ':' && rm__digits(s + 4, 2, 0, 59) >= 0 &&
           !s[6];
  return *s == '\0';
}

static int header_name_ok(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s)) return 0;
  return 1;
}

/* The value of one request field against its manifest type and options. */
static void check_value(rm__vctx *c, const char *p, const json_t *v, int mt,
                        const json_t *options) {
  char q[RM__PATH_MAX];
  const char *s = json_string_value(v);
  int placeholder = s && rm__is_placeholder(s);
  const char *key;
  json_t *member;
  switch (mt) {
  case MT_TEXT:
  case MT_PASSWORD:
  case MT_DATE:
  case MT_TIME:
  case MT_DATETIME:
    if (!s)
      rm__problem(c, p, "must be a string, not %s", rm__a_type(v));
    else if (rm__is_templated(s))
      break;
    else if (mt == MT_DATE && (parse_date(s) != 10 || s[10]))
      rm__problem(c, p, "'%s' is not a date (YYYY-MM-DD)", s);
    else if (mt == MT_TIME && (!parse_time(s) || s[parse_time(s)]))
      rm__problem(c, p, "'%s' is not a time (HH:MM or HH:MM:SS)", s);
    else if (mt == MT_DATETIME && !datetime_ok(s))
      rm__problem(c, p, "'%s' is not a date and time (YYYY-MM-DDTHH:MM:SSZ)", s);
    break;
  case MT_NUMBER:
    if (!json_is_number(v) && !placeholder)
      rm__problem(c, p, "must be a number or a {{...}} placeholder, not %s", rm__a_type(v));
    break;
  case MT_BOOLEAN:
    if (!json_is_boolean(v) && !placeholder)
      rm__problem(c, p, "must be a boolean or a {{...}} placeholder, not %s", rm__a_type(v));
    break;
  case MT_LIST:
    if (!json_is_array(v) && !placeholder)
      rm__problem(c, p, "must be an array or a {{...}} placeholder, not %s", rm__a_type(v));
    break;
  case MT_MAP:
  case MT_OBJECT:
    if (!json_is_object(v) && !placeholder)
      rm__problem(c, p, "must be an object or a {{...}} placeholder, not %s", rm__a_type(v));
    if (mt == MT_MAP && json_is_object(v)) {
      json_object_foreach((json_t *)v, key, member) {
        if (!json_is_string(member))
          rm__problem(c, rm__path(q, p, key), "must be a string, not %s", rm__a_type(member));
      }
    }
    break;
  default: break;
  }
  if (!json_is_array(options) || json_array_size(options) == 0 || (s && rm__is_templated(s)))
    return;
  size_t i;
  json_t *o;
  json_array_foreach(options, i, o) if (json_equal(o, v)) return;
  rm_buf list = RM_BUF_INIT;
  json_array_foreach(options, i, o) {
    char *text = json_is_string(o) ? NULL : json_dumps(o, JSON_ENCODE_ANY | JSON_COMPACT);
    rm_buf_printf(&list, "%s%s", i ? ", " : "",
                  json_is_string(o) ? json_string_value(o)
                  : text            ? text
                                    : "?");
    free(text);
  }
  char *shown = s ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
  if (!list.data)
    c->oom = 1;
  else if (s)
    rm__problem(c, p, "must be one of: %s (not '%s')", list.data, s);
  else
    rm__problem(c, p, "must be one of: %s (not %s)", list.data, shown ? shown : "?");
  free(shown);
  rm_buf_free(&list);
}

static void check_auth(rm__vctx *c, const char *rpath, const json_t *auth) {
  char path[RM__PATH_MAX], p[RM__PATH_MAX];
  rm__path(path, rpath, "auth");
  const json_t *t = json_object_get(auth, "type");
  const char *type = json_string_value(t);
  const char *names = "basic, bearer, api_key, hmac_sha256";
  if (!t) {
    rm__problem(c, path, "missing required field 'type' (one of: %s)", names);
    return;
  }
  size_t i = 0;
  while (type && i < RM__NFIELDS(auth_types) && strcmp(auth_types[i].type, type) != 0) i++;
  if (!type) {
    rm__problem(c, rm__path(p, path, "type"), "must be a string, not %s", rm__a_type(t));
    return;
  }
  if (i == RM__NFIELDS(auth_types)) {
    rm__problem(c, rm__path(p, path, "type"), "must be one of: %s (not '%s')", names, type);
    return;
  }
  rm__check_fields(c, path, auth, auth_types[i].fields, auth_types[i].n);
  if (json_object_get(auth, "header") && json_object_get(auth, "query"))
    rm__problem(c, path, "use either 'header' or 'query', not both");
  const char *header = json_string_value(json_object_get(auth, "header"));
  if (header && !rm__is_templated(header) && !header_name_ok(header))
    rm__problem(c, rm__path(p, path, "header"), "'%s' is not a valid header name", header);
  const char *query = json_string_value(json_object_get(auth, "query"));
  if (query && !*query) rm__problem(c, rm__path(p, path, "query"), "must not be empty");
}

/* An optional "number" field of http that must be a whole number. */
static void check_count(rm__vctx *c, const char *rpath, const json_t *req, const char *key,
                        json_int_t min, json_int_t max) {
  char p[RM__PATH_MAX];
  const json_t *v = json_object_get(req, key);
  if (json_is_real(v))
    rm__problem(c, rm__path(p, rpath, key), "must be a whole number");
  else
    rm__check_int_range(c, rpath, req, key, min, max);
}

static void check_http(rm__vctx *c, const char *rpath, const json_t *req) {
  char p[RM__PATH_MAX];
  rm_buf found = RM_BUF_INIT;
  size_t n = 0;
  for (size_t i = 0; i < RM__NFIELDS(http_bodies); i++)
    if (json_object_get(req, http_bodies[i]))
      rm_buf_printf(&found, "%s%s", n++ ? ", " : "", http_bodies[i]);
  if (n > 1)
    rm__problem(c, rpath, "use at most one of body, json and form (found: %s)",
                found.data ? found.data : "");
  rm_buf_free(&found);
  const char *url = json_string_value(json_object_get(req, "url"));
  if (url && !*url)
    rm__problem(c, rm__path(p, rpath, "url"), "must not be empty");
  else if (url && strncmp(url, "{{", 2) != 0 && strncasecmp(url, "http://", 7) != 0 &&
           strncasecmp(url, "https://", 8) != 0)
    rm__problem(c, rm__path(p, rpath, "url"), "'%s' must start with http:// or https://", url);
  const json_t *headers = json_object_get(req, "headers"), *v;
  const char *key;
  if (json_is_object(headers)) {
    json_object_foreach((json_t *)headers, key, v) {
      if (!rm__is_templated(key) && !header_name_ok(key))
        rm__problem(c, rm__path(p, rpath, "headers"), "'%s' is not a valid header name", key);
    }
  }
  check_count(c, rpath, req, "max_redirects", 0, 100);
  check_count(c, rpath, req, "max_response_bytes", 1, (json_int_t)1 << 40);
  const json_t *auth = json_object_get(req, "auth");
  if (json_is_object(auth)) check_auth(c, rpath, auth);
}

static const json_t *manifest_field(const json_t *fields, const char *name) {
  size_t i;
  json_t *f;
  json_array_foreach(fields, i, f) {
    const char *n = json_string_value(json_object_get(f, "name"));
    if (n && strcmp(n, name) == 0) return f;
  }
  return NULL;
}

static int manifest_type(const json_t *f) {
  const char *t = json_string_value(json_object_get(f, "type"));
  for (int i = 0; t && mtypes[i]; i++)
    if (strcmp(mtypes[i], t) == 0) return i;
  return MT_JSON;
}

void rm__validate_request(rm__vctx *c, const char *name, const json_t *task) {
  char tpath[RM__PATH_MAX], rpath[RM__PATH_MAX], p[RM__PATH_MAX];
  const char *type = json_string_value(json_object_get(task, "type"));
  if (!type || !c->o->plugin) return;
  rm__path(tpath, "tasks", name);
  rm__path(rpath, tpath, "request");
  const json_t *m = c->o->plugin(c->o->plugin_ud, type);
  if (!m) {
    rm__problem(c, rm__path(p, tpath, "type"),
                "unknown task type '%s' (no plugin of that name is installed)", type);
    return;
  }
  const json_t *fields = json_object_get(m, "fields"), *req = json_object_get(task, "request");
  const json_t *f, *v;
  const char *key;
  size_t i;
  if (req && !json_is_object(req)) return;
  rm_buf allowed = RM_BUF_INIT, missing = RM_BUF_INIT;
  json_array_foreach(fields, i, f) {
    const char *n = json_string_value(json_object_get(f, "name"));
    if (!n) continue;
    rm_buf_printf(&allowed, "%s%s", allowed.len ? ", " : "", n);
    if (json_is_true(json_object_get(f, "required")) && !json_object_get(f, "default") &&
        !json_object_get(req, n)) {
      if (req) rm__problem(c, rpath, "missing required field '%s'", n);
      rm_buf_printf(&missing, "%s%s", missing.len ? ", " : "", n);
    }
  }
  if (!req && missing.len)
    rm__problem(c, tpath, "missing field 'request' (type '%s' requires: %s)", type, missing.data);
  json_object_foreach((json_t *)req, key, v) {
    if (!(f = manifest_field(fields, key)))
      rm__unknown_field(c, rpath, key, allowed.data ? allowed.data : "none");
    else
      check_value(c, rm__path(p, rpath, key), v, manifest_type(f), json_object_get(f, "options"));
  }
  rm_buf_free(&allowed);
  rm_buf_free(&missing);
  if (req && strcmp(type, "http") == 0) check_http(c, rpath, req);
}
