/* Validation of one task's own fields: retry, extraction rules,
 * assertions, status mapping, output mutation and the sample response.
 * The request is checked in validate_request.c, edges and references in
 * validate_graph.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/validate_internal.h"
#include "util/buf.h"

static const rm__field task_fields[] = {
    {"type", RM__T_STRING, 1},
    {"description", RM__T_STRING, 0},
    {"request", RM__T_OBJECT, 0},
    {"timeout_ms", RM__T_INTEGER, 0},
    {"retry", RM__T_OBJECT, 0},
    {"idempotent", RM__T_BOOLEAN, 0},
    {"extract", RM__T_OBJECT, 0},
    {"assert", RM__T_ARRAY, 0},
    {"status", RM__T_OBJECT, 0},
    {"output", RM__T_OBJECT, 0},
    {"on_success", RM__T_ARRAY, 0},
    {"on_failure", RM__T_ARRAY, 0},
    {"continue_on_failure", RM__T_BOOLEAN, 0},
    {"join", RM__T_STRING, 0},
    {"sample_response", RM__T_OBJECT, 0},
};

static const rm__field retry_fields[] = {
    {"max_attempts", RM__T_INTEGER, 0}, {"backoff_ms", RM__T_INTEGER, 0},
    {"multiplier", RM__T_NUMBER, 0},    {"max_backoff_ms", RM__T_INTEGER, 0},
    {"jitter", RM__T_NUMBER, 0},        {"retry_on", RM__T_ARRAY, 0},
};

static const char *const retry_on_names[] = {"error",  "timeout",  "5xx", "4xx",
                                             "failed", "degraded", NULL};

/* Extraction rules and assertions share their subject fields. */
static const rm__field extract_fields[] = {
    {"jsonpath", RM__T_STRING, 0},  {"xpath", RM__T_STRING, 0},
    {"regex", RM__T_STRING, 0},     {"group", RM__T_INTEGER | RM__T_STRING, 0},
    {"from", RM__T_STRING, 0},      {"name", RM__T_STRING, 0},
    {"lua", RM__T_STRING, 0},       {"all", RM__T_BOOLEAN, 0},
    {"type", RM__T_STRING, 0},      {"default", RM__T_ANY, 0},
    {"optional", RM__T_BOOLEAN, 0},
};

static const rm__field assert_fields[] = {
    {"jsonpath", RM__T_STRING, 0}, {"xpath", RM__T_STRING, 0},
    {"regex", RM__T_STRING, 0},    {"group", RM__T_INTEGER | RM__T_STRING, 0},
    {"from", RM__T_STRING, 0},     {"name", RM__T_STRING, 0},
    {"lua", RM__T_STRING, 0},      {"var", RM__T_STRING, 0},
    {"all", RM__T_BOOLEAN, 0},     {"op", RM__T_STRING, 1},
    {"value", RM__T_ANY, 0},       {"message", RM__T_STRING, 0},
    {"severity", RM__T_STRING, 0},
};

static const char *const from_names[] = {"header", "status", "duration_ms", NULL};
static const char *const convert_types[] = {"string", "number", "integer", "boolean", NULL};
static const char *const json_types[] = {"string", "number", "integer", "boolean",
                                         "array",  "object", "null",    NULL};
static const char *const severities[] = {"failed", "degraded", NULL};
static const char *const joins[] = {"any", "all", NULL};

enum op {
  OP_EQ,
  OP_NE,
  OP_LT,
  OP_LE,
  OP_GT,
  OP_GE,
  OP_CONTAINS,
  OP_MATCHES,
  OP_EXISTS,
  OP_NOT_EXISTS,
  OP_TYPE
};
static const char *const ops[] = {"eq",       "ne",      "lt",     "le",         "gt",   "ge",
                                  "contains", "matches", "exists", "not_exists", "type", NULL};

static const rm__field status_fields[] = {
    {"success_codes", RM__T_ARRAY, 0},
    {"degraded_codes", RM__T_ARRAY, 0},
    {"degraded_over_ms", RM__T_INTEGER, 0},
    {"failed_over_ms", RM__T_INTEGER, 0},
    {"lua", RM__T_STRING, 0},
};

static const rm__field output_fields[] = {
    {"format", RM__T_STRING, 1},
    {"from", RM__T_STRING, 0},
    {"fields", RM__T_ARRAY | RM__T_OBJECT, 0},
    {"root", RM__T_STRING, 0},
    {"item", RM__T_STRING, 0},
};
static const char *const output_formats[] = {"json", "csv", "xml", NULL};
static const char *const xml_keys[] = {"root", "item"};

static const rm__field sample_fields[] = {
    {"status", RM__T_INTEGER, 0},
    {"headers", RM__T_OBJECT, 0},
    {"body", RM__T_ANY, 0},
    {"duration_ms", RM__T_NUMBER, 0},
};

void rm__validate_retry(rm__vctx *c, const char *path, const json_t *r) {
  char p[RM__PATH_MAX], q[RM__PATH_MAX];
  if (!rm__check_fields(c, path, r, retry_fields, RM__NFIELDS(retry_fields))) return;
  rm__check_int_range(c, path, r, "max_attempts", 1, 100);
  rm__check_int_range(c, path, r, "backoff_ms", 0, 3600000);
  rm__check_num_range(c, path, r, "multiplier", 1, 10);
  rm__check_int_range(c, path, r, "max_backoff_ms", 0, 3600000);
  rm__check_num_range(c, path, r, "jitter", 0, 1);
  const json_t *lo = json_object_get(r, "backoff_ms"), *hi = json_object_get(r, "max_backoff_ms");
  if (json_is_integer(lo) && json_is_integer(hi) && json_integer_value(hi) < json_integer_value(lo))
    rm__problem(c, rm__path(p, path, "max_backoff_ms"),
                "%" JSON_INTEGER_FORMAT " is less than backoff_ms (%" JSON_INTEGER_FORMAT ")",
                json_integer_value(hi), json_integer_value(lo));
  const json_t *on = json_object_get(r, "retry_on"), *v;
  size_t i;
  rm__path(p, path, "retry_on");
  json_array_foreach(on, i, v) {
    rm__path_idx(q, p, i);
    const char *s = json_string_value(v);
    if (rm__find(retry_on_names, s) < 0)
      rm__problem(c, q, "must be one of: error, timeout, 5xx, 4xx, failed, degraded (not %s%s%s)",
                  s ? "'" : "", s ? s : rm__a_type(v), s ? "'" : "");
    else if (rm__listed_before(on, i))
      rm__problem(c, q, "'%s' is listed twice", s);
  }
}

static const char *const subject_names[] = {"jsonpath", "xpath", "from", "lua", "var", NULL};

/* The subject of an extraction rule or assertion: exactly one source,
 * and regex either alone or after {"from": "header"}. */
static void check_subject(rm__vctx *c, const char *path, const json_t *rule, int is_assert) {
  char p[RM__PATH_MAX], gp[RM__PATH_MAX];
  rm_buf found = RM_BUF_INIT;
  size_t n = 0;
  for (int i = 0; subject_names[i]; i++)
    if (json_object_get(rule, subject_names[i])) {
      rm_buf_printf(&found, "%s%s", n++ ? ", " : "", subject_names[i]);
    }
  const json_t *regex = json_object_get(rule, "regex"), *v;
  const char *from = json_string_value(json_object_get(rule, "from"));
  int header = from && strcmp(from, "header") == 0;
  const char *sources = is_assert ? "jsonpath, xpath, regex, from, lua or var"
                                  : "jsonpath, xpath, regex, from or lua";
  const char *listed = found.data ? found.data : "";
  if (n && !found.data) c->oom = 1;
  if (n == 0 && !regex)
    rm__problem(c, path, "needs a source: one of %s", sources);
  else if (n > 1)
    rm__problem(c, path, "has more than one source (%s): use one of %s", listed, sources);
  else if (n == 1 && regex && !header)
    rm__problem(c, path,
                "'regex' cannot be combined with '%s' (it may only follow {\"from\": \"header\"})",
                listed);
  rm_buf_free(&found);

  if ((v = json_object_get(rule, "jsonpath")) && json_is_string(v))
    rm__check_jsonpath(c, rm__path(p, path, "jsonpath"), json_string_value(v));
  if ((v = json_object_get(rule, "xpath")) && json_is_string(v))
    rm__check_xpath(c, rm__path(p, path, "xpath"), json_string_value(v));
  if ((v = json_object_get(rule, "lua")) && json_is_string(v))
    rm__check_lua(c, rm__path(p, path, "lua"), v);
  const json_t *group = json_object_get(rule, "group");
  if (json_is_string(regex))
    rm__check_regex(c, rm__path(p, path, "regex"), regex, group, rm__path(gp, path, "group"));
  else if (group)
    rm__problem(c, rm__path(p, path, "group"), "applies only with 'regex'");
  rm__check_enum(c, path, rule, "from", from_names);
  const json_t *name = json_object_get(rule, "name");
  if (header && !name) rm__problem(c, path, "{\"from\": \"header\"} needs 'name' (the header)");
  if (name && !header)
    rm__problem(c, rm__path(p, path, "name"), "applies only to {\"from\": \"header\"}");
  if (json_is_string(name) && !*json_string_value(name))
    rm__problem(c, rm__path(p, path, "name"), "must not be empty");
  const char *var = json_string_value(json_object_get(rule, "var"));
  if (var && !rm__is_name(var))
    rm__problem(c, rm__path(p, path, "var"), "'%s' is not a variable name", var);
}

static void check_extract(rm__vctx *c, const char *tpath, const json_t *ex) {
  char path[RM__PATH_MAX], p[RM__PATH_MAX];
  const char *key;
  json_t *rule;
  rm__path(path, tpath, "extract");
  json_object_foreach((json_t *)ex, key, rule) {
    rm__path(p, path, key);
    if (!rm__is_name(key))
      rm__problem(c, p, "variable name '%s' must match [A-Za-z_][A-Za-z0-9_-]*", key);
    if (json_is_string(rule)) {
      rm__check_jsonpath(c, p, json_string_value(rule));
    } else if (json_is_object(rule)) {
      rm__check_fields(c, p, rule, extract_fields, RM__NFIELDS(extract_fields));
      check_subject(c, p, rule, 0);
      rm__check_enum(c, p, rule, "type", convert_types);
    } else {
      rm__problem(c, p, "must be a JSONPath string or a rule object, not %s", rm__a_type(rule));
    }
  }
}

static void check_assertion(rm__vctx *c, const char *path, const json_t *a) {
  char p[RM__PATH_MAX];
  if (!rm__check_fields(c, path, a, assert_fields, RM__NFIELDS(assert_fields))) return;
  check_subject(c, path, a, 1);
  rm__check_enum(c, path, a, "severity", severities);
  int op = rm__check_enum(c, path, a, "op", ops);
  const json_t *value = json_object_get(a, "value");
  const char *s = json_string_value(value);
  rm__path(p, path, "value");
  switch (op) {
  case OP_EQ:
  case OP_NE:
  case OP_CONTAINS:
    if (!value) rm__problem(c, path, "op '%s' needs a 'value'", ops[op]);
    break;
  case OP_LT:
  case OP_LE:
  case OP_GT:
  case OP_GE:
    if (!value)
      rm__problem(c, path, "op '%s' needs a 'value'", ops[op]);
    else if (!json_is_number(value) && !(s && rm__is_placeholder(s)))
      rm__problem(c, p, "op '%s' compares numbers: must be a number, not %s", ops[op],
                  rm__a_type(value));
    break;
  case OP_MATCHES:
    if (!s)
      rm__problem(c, value ? p : path, "op 'matches' needs a 'value' that is a PCRE2 pattern");
    else if (!rm__is_templated(s))
      rm__check_regex(c, p, value, NULL, NULL);
    break;
  case OP_EXISTS:
  case OP_NOT_EXISTS:
    if (value) rm__problem(c, p, "op '%s' takes no 'value'", ops[op]);
    break;
  case OP_TYPE:
    if (!s)
      rm__problem(c, value ? p : path, "op 'type' needs a 'value' naming a JSON type");
    else
      rm__check_enum(c, path, a, "value", json_types);
    break;
  default: break;
  }
}

/* An integer 100-599, "Nxx" (N 1-5) or "A-B" with 100 <= A <= B <= 599. */
static int code_pattern_ok(const json_t *v) {
  if (json_is_integer(v)) return json_integer_value(v) >= 100 && json_integer_value(v) <= 599;
  const char *s = json_string_value(v);
  size_t n = s ? strlen(s) : 0;
  if (n == 3) return s[0] >= '1' && s[0] <= '5' && s[1] == 'x' && s[2] == 'x';
  if (n != 7 || s[3] != '-') return 0;
  int a = rm__digits(s, 3, 100, 599), b = rm__digits(s + 4, 3, 100, 599);
  return a >= 0 && b >= 0 && a <= b;
}

static void check_codes(rm__vctx *c, const char *spath, const json_t *status, const char *key) {
  char p[RM__PATH_MAX], q[RM__PATH_MAX];
  const json_t *codes = json_object_get(status, key), *v;
  size_t i;
  if (!json_is_array(codes)) return;
  rm__path(p, spath, key);
  if (json_array_size(codes) == 0 && strcmp(key, "success_codes") == 0)
    rm__problem(c, p, "must list at least one code (nothing would succeed)");
  json_array_foreach(codes, i, v) {
    if (code_pattern_ok(v)) continue;
    const char *s = json_string_value(v);
    rm__path_idx(q, p, i);
    if (s)
      rm__problem(
          c, q, "'%s' is not a status code pattern: use an integer 100-599, \"2xx\" or \"200-299\"",
          s);
    else if (json_is_integer(v))
      rm__problem(c, q, "%" JSON_INTEGER_FORMAT " is not an HTTP status code (100-599)",
                  json_integer_value(v));
    else
      rm__problem(c, q, "must be an integer 100-599, \"2xx\" or \"200-299\", not %s",
                  rm__a_type(v));
  }
}

static void check_status(rm__vctx *c, const char *tpath, const json_t *st) {
  char path[RM__PATH_MAX], p[RM__PATH_MAX];
  rm__path(path, tpath, "status");
  if (!rm__check_fields(c, path, st, status_fields, RM__NFIELDS(status_fields))) return;
  check_codes(c, path, st, "success_codes");
  check_codes(c, path, st, "degraded_codes");
  rm__check_int_range(c, path, st, "degraded_over_ms", 1, 3600000);
  rm__check_int_range(c, path, st, "failed_over_ms", 1, 3600000);
  const json_t *d = json_object_get(st, "degraded_over_ms"),
               *f = json_object_get(st, "failed_over_ms");
  if (json_is_integer(d) && json_is_integer(f) && json_integer_value(d) >= json_integer_value(f))
    rm__problem(c, rm__path(p, path, "degraded_over_ms"),
                "%" JSON_INTEGER_FORMAT " must be less than failed_over_ms (%" JSON_INTEGER_FORMAT
                ")",
                json_integer_value(d), json_integer_value(f));
  const json_t *lua = json_object_get(st, "lua");
  if (json_is_string(lua)) rm__check_lua(c, rm__path(p, path, "lua"), lua);
}

static int xml_name_ok(const char *s) {
  if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return 0;
  for (s++; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
          strchr("_-.", *s)))
      return 0;
  return 1;
}

static void check_output(rm__vctx *c, const char *tpath, const json_t *out) {
  char path[RM__PATH_MAX], p[RM__PATH_MAX], q[RM__PATH_MAX];
  rm__path(path, tpath, "output");
  if (!rm__check_fields(c, path, out, output_fields, RM__NFIELDS(output_fields))) return;
  int fmt = rm__check_enum(c, path, out, "format", output_formats);
  const char *from = json_string_value(json_object_get(out, "from"));
  if (from) rm__check_jsonpath(c, rm__path(p, path, "from"), from);
  const json_t *fields = json_object_get(out, "fields"), *v;
  rm__path(p, path, "fields");
  if ((json_is_array(fields) && json_array_size(fields) == 0) ||
      (json_is_object(fields) && json_object_size(fields) == 0))
    rm__problem(c, p, "must name at least one field");
  size_t i;
  json_array_foreach(fields, i, v) {
    rm__path_idx(q, p, i);
    if (!json_is_string(v) || !*json_string_value(v))
      rm__problem(c, q, "must be a non-empty field name, not %s", rm__a_type(v));
    else if (rm__listed_before(fields, i))
      rm__problem(c, q, "'%s' is listed twice", json_string_value(v));
  }
  const char *key;
  if (json_is_object(fields)) {
    json_object_foreach((json_t *)fields, key, v) {
      rm__path(q, p, key);
      if (!json_is_string(v))
        rm__problem(c, q, "must be a JSONPath string, not %s", rm__a_type(v));
      else
        rm__check_jsonpath(c, q, json_string_value(v));
    }
  }
  for (i = 0; i < 2; i++) {
    const char *name = json_string_value(json_object_get(out, xml_keys[i]));
    if (!name) continue;
    rm__path(q, path, xml_keys[i]);
    if (fmt >= 0 && strcmp(output_formats[fmt], "xml") != 0)
      rm__problem(c, q, "applies only to format 'xml'");
    else if (!xml_name_ok(name))
      rm__problem(c, q, "'%s' is not an XML element name", name);
  }
}

static void check_sample(rm__vctx *c, const char *tpath, const json_t *s) {
  char path[RM__PATH_MAX], p[RM__PATH_MAX], q[RM__PATH_MAX];
  rm__path(path, tpath, "sample_response");
  if (!rm__check_fields(c, path, s, sample_fields, RM__NFIELDS(sample_fields))) return;
  rm__check_int_range(c, path, s, "status", 100, 599);
  rm__check_num_range(c, path, s, "duration_ms", 0, 3600000);
  const json_t *headers = json_object_get(s, "headers"), *v;
  const char *key;
  rm__path(p, path, "headers");
  if (json_is_object(headers)) {
    json_object_foreach((json_t *)headers, key, v) {
      if (!json_is_string(v))
        rm__problem(c, rm__path(q, p, key), "must be a string, not %s", rm__a_type(v));
    }
  }
}

static void check_edges(rm__vctx *c, const char *tpath, const json_t *t, const char *key) {
  char p[RM__PATH_MAX], q[RM__PATH_MAX];
  const json_t *edges = json_object_get(t, key), *v;
  size_t i;
  rm__path(p, tpath, key);
  json_array_foreach(edges, i, v) {
    if (!json_is_string(v))
      rm__problem(c, rm__path_idx(q, p, i), "must be a task name, not %s", rm__a_type(v));
  }
}

void rm__validate_task(rm__vctx *c, const char *name, const json_t *t) {
  char path[RM__PATH_MAX], p[RM__PATH_MAX], q[RM__PATH_MAX];
  rm__path(path, "tasks", name);
  if (!rm__is_name(name))
    rm__problem(c, path, "task name '%s' must match [A-Za-z_][A-Za-z0-9_-]*", name);
  if (!rm__check_fields(c, path, t, task_fields, RM__NFIELDS(task_fields))) return;
  rm__check_int_range(c, path, t, "timeout_ms", 1, 3600000);
  rm__check_enum(c, path, t, "join", joins);
  check_edges(c, path, t, "on_success");
  check_edges(c, path, t, "on_failure");
  const json_t *v;
  if (json_is_object(v = json_object_get(t, "retry")))
    rm__validate_retry(c, rm__path(p, path, "retry"), v);
  if (json_is_object(v = json_object_get(t, "extract"))) check_extract(c, path, v);
  if (json_is_object(v = json_object_get(t, "status"))) check_status(c, path, v);
  if (json_is_object(v = json_object_get(t, "output"))) check_output(c, path, v);
  if (json_is_object(v = json_object_get(t, "sample_response"))) check_sample(c, path, v);
  const json_t *asserts = json_object_get(t, "assert");
  size_t i;
  rm__path(p, path, "assert");
  json_array_foreach(asserts, i, v) check_assertion(c, rm__path_idx(q, p, i), v);
  rm__validate_request(c, name, t);
}
