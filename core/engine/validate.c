/* Workflow validation: the entry point, problem reporting, generic field
 * checks and the top level (name, inputs, defaults). Tasks are checked in
 * validate_task.c and validate_request.c, the graph and template
 * references in validate_graph.c, expression syntax in validate_syntax.c. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/validate_internal.h"
#include "util/buf.h"

void rm__problem(rm__vctx *c, const char *path, const char *fmt, ...) {
  rm_buf m = RM_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  int rc = rm_buf_vprintf(&m, fmt, ap);
  va_end(ap);
  json_t *check = rc ? NULL : json_stringn(m.data, m.len);
  if (!rc && !check) {
    /* Only a cut user string can be invalid UTF-8 here. */
    for (size_t i = 0; i < m.len; i++)
      if ((unsigned char)m.data[i] >= 0x80) m.data[i] = '?';
  }
  json_decref(check);
  json_t *p =
      rc ? NULL : json_pack("{s:s,s:s%}", "path", path ? path : "", "message", m.data, m.len);
  if (!p || json_array_append_new(c->problems, p)) c->oom = 1;
  rm_buf_free(&m);
}

/* Copies s into out[0..n) and cuts at a UTF-8 character boundary. */
static const char *copy_cut(char *out, size_t n, const char *s) {
  size_t len = strlen(s);
  if (len < n) {
    memcpy(out, s, len + 1);
    return out;
  }
  len = n - 1;
  while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80) len--;
  memcpy(out, s, len);
  out[len] = '\0';
  return out;
}

const char *rm__path(char *out, const char *base, const char *key) {
  char tmp[RM__PATH_MAX * 2];
  snprintf(tmp, sizeof tmp, "%s%s%s", base, *base ? "." : "", key);
  return copy_cut(out, RM__PATH_MAX, tmp);
}

const char *rm__path_idx(char *out, const char *base, size_t i) {
  char tmp[RM__PATH_MAX + 32];
  snprintf(tmp, sizeof tmp, "%s[%zu]", base, i);
  return copy_cut(out, RM__PATH_MAX, tmp);
}

const char *rm__a_type(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a number";
  case JSON_NULL: return "null";
  default: return "a boolean";
  }
}

int rm__has_type(const json_t *v, unsigned types) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return !!(types & RM__T_OBJECT);
  case JSON_ARRAY: return !!(types & RM__T_ARRAY);
  case JSON_STRING: return !!(types & RM__T_STRING);
  case JSON_INTEGER: return !!(types & RM__T_INTEGER);
  case JSON_REAL: return !!(types & RM__T_REAL);
  case JSON_NULL: return !!(types & RM__T_NULL);
  default: return !!(types & RM__T_BOOLEAN);
  }
}

static const struct {
  unsigned mask;
  const char *text;
} type_names[] = {
    {RM__T_STRING, "a string"},   {RM__T_NUMBER, "a number"},  {RM__T_INTEGER, "an integer"},
    {RM__T_BOOLEAN, "a boolean"}, {RM__T_OBJECT, "an object"}, {RM__T_ARRAY, "an array"},
    {RM__T_NULL, "null"},
};

const char *rm__types_text(unsigned types, char *out, size_t n) {
  size_t len = 0;
  out[0] = '\0';
  for (size_t i = 0; i < RM__NFIELDS(type_names); i++) {
    if ((types & type_names[i].mask) != type_names[i].mask) continue;
    types &= ~type_names[i].mask;
    int w = snprintf(out + len, n - len, "%s%s", len ? " or " : "", type_names[i].text);
    if (w < 0 || (size_t)w >= n - len) break;
    len += (size_t)w;
  }
  return out;
}

void rm__unknown_field(rm__vctx *c, const char *path, const char *key, const char *allowed) {
  char p[RM__PATH_MAX];
  rm__problem(c, rm__path(p, path, key), "unknown field '%s' (allowed: %s)", key, allowed);
}

int rm__check_fields(rm__vctx *c, const char *path, const json_t *v, const rm__field *f,
                     size_t nf) {
  char p[RM__PATH_MAX], want[128];
  if (!json_is_object(v)) {
    rm__problem(c, path, "must be an object, not %s", rm__a_type(v));
    return 0;
  }
  const char *key;
  json_t *member;
  json_object_foreach((json_t *)v, key, member) {
    size_t i = 0;
    while (i < nf && strcmp(f[i].name, key) != 0) i++;
    if (i == nf) {
      rm_buf allowed = RM_BUF_INIT;
      for (size_t j = 0; j < nf; j++) rm_buf_printf(&allowed, "%s%s", j ? ", " : "", f[j].name);
      if (!allowed.data)
        c->oom = 1;
      else
        rm__unknown_field(c, path, key, allowed.data);
      rm_buf_free(&allowed);
    } else if (!rm__has_type(member, f[i].types)) {
      rm__problem(c, rm__path(p, path, key), "must be %s, not %s",
                  rm__types_text(f[i].types, want, sizeof want), rm__a_type(member));
    }
  }
  for (size_t i = 0; i < nf; i++)
    if (f[i].required && !json_object_get(v, f[i].name))
      rm__problem(c, path, "missing required field '%s'", f[i].name);
  return 1;
}

void rm__check_int_range(rm__vctx *c, const char *path, const json_t *obj, const char *key,
                         json_int_t min, json_int_t max) {
  char p[RM__PATH_MAX];
  const json_t *v = json_object_get(obj, key);
  if (!json_is_integer(v)) return;
  json_int_t x = json_integer_value(v);
  if (x < min || x > max)
    rm__problem(c, rm__path(p, path, key),
                "must be between %" JSON_INTEGER_FORMAT " and %" JSON_INTEGER_FORMAT
                ", not %" JSON_INTEGER_FORMAT,
                min, max, x);
}

void rm__check_num_range(rm__vctx *c, const char *path, const json_t *obj, const char *key,
                         double min, double max) {
  char p[RM__PATH_MAX];
  const json_t *v = json_object_get(obj, key);
  if (!json_is_number(v)) return;
  double x = json_number_value(v);
  if (x < min || x > max)
    rm__problem(c, rm__path(p, path, key), "must be between %g and %g, not %g", min, max, x);
}

int rm__check_enum(rm__vctx *c, const char *path, const json_t *obj, const char *key,
                   const char *const *options) {
  char p[RM__PATH_MAX];
  const char *s = json_string_value(json_object_get(obj, key));
  int found = rm__find(options, s);
  if (!s || found >= 0) return found;
  rm_buf list = RM_BUF_INIT;
  for (int i = 0; options[i]; i++) rm_buf_printf(&list, "%s%s", i ? ", " : "", options[i]);
  if (!list.data)
    c->oom = 1;
  else
    rm__problem(c, rm__path(p, path, key), "must be one of: %s (not '%s')", list.data, s);
  rm_buf_free(&list);
  return -1;
}

int rm__find(const char *const *list, const char *s) {
  for (int i = 0; s && list[i]; i++)
    if (strcmp(list[i], s) == 0) return i;
  return -1;
}

int rm__listed_before(const json_t *array, size_t j) {
  for (size_t i = 0; i < j; i++)
    if (json_equal(json_array_get(array, i), json_array_get(array, j))) return 1;
  return 0;
}

int rm__digits(const char *s, int n, int lo, int hi) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v >= lo && v <= hi ? v : -1;
}

int rm__is_name(const char *s) {
  if (!(isalpha((unsigned char)*s) || *s == '_')) return 0;
  for (s++; *s; s++)
    if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-')) return 0;
  return 1;
}

int rm__is_templated(const char *s) { return strstr(s, "{{") != NULL; }

int rm__is_placeholder(const char *s) {
  size_t n = strlen(s);
  const char *close = strstr(s, "}}");
  return n >= 4 && strncmp(s, "{{", 2) == 0 && close == s + n - 2;
}

static int workflow_name_ok(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!(isalnum((unsigned char)*s) || strchr("-_.", *s))) return 0;
  return 1;
}

static const char *const input_types[] = {"string", "number", "integer", "boolean",
                                          "object", "array",  NULL};

/* Whether v fits an input type; a string input also takes a number or a
 * boolean, which --var gives for text like "12345". */
static int input_value_fits(int type, const json_t *v, int lenient) {
  switch (type) {
  case 0: return json_is_string(v) || (lenient && (json_is_number(v) || json_is_boolean(v)));
  case 1: return json_is_number(v);
  case 2: return json_is_integer(v);
  case 3: return json_is_boolean(v);
  case 4: return json_is_object(v);
  default: return json_is_array(v);
  }
}

static const rm__field input_fields[] = {
    {"type", RM__T_STRING, 0},
    {"default", RM__T_ANY, 0},
    {"required", RM__T_BOOLEAN, 0},
    {"description", RM__T_STRING, 0},
};

static void validate_input(rm__vctx *c, const char *name, const json_t *in) {
  char path[RM__PATH_MAX], p[RM__PATH_MAX];
  rm__path(path, "inputs", name);
  if (!rm__is_name(name))
    rm__problem(c, path, "input name '%s' must match [A-Za-z_][A-Za-z0-9_-]*", name);
  if (!rm__check_fields(c, path, in, input_fields, RM__NFIELDS(input_fields))) return;
  int t = rm__check_enum(c, path, in, "type", input_types);
  const json_t *def = json_object_get(in, "default");
  if (t >= 0 && def && !input_value_fits(t, def, 0))
    rm__problem(c, rm__path(p, path, "default"), "must be of type '%s', not %s", input_types[t],
                rm__a_type(def));
  const json_t *given = c->o ? c->o->given_inputs : NULL;
  if (!json_is_object(given)) return;
  const json_t *v = json_object_get(given, name);
  if (!v && !def && json_is_true(json_object_get(in, "required")))
    rm__problem(c, path, "required input '%s' is not given (pass it with --var %s=value)", name,
                name);
  if (v && t >= 0 && !input_value_fits(t, v, 1))
    rm__problem(c, path, "the given value is %s, but input '%s' has type '%s'", rm__a_type(v), name,
                input_types[t]);
}

static const rm__field defaults_fields[] = {
    {"timeout_ms", RM__T_INTEGER, 0},
    {"retry", RM__T_OBJECT, 0},
    {"continue_on_failure", RM__T_BOOLEAN, 0},
    {"tls_verify", RM__T_BOOLEAN, 0},
};

static void validate_defaults(rm__vctx *c, const json_t *d) {
  if (!rm__check_fields(c, "defaults", d, defaults_fields, RM__NFIELDS(defaults_fields))) return;
  rm__check_int_range(c, "defaults", d, "timeout_ms", 1, 3600000);
  const json_t *retry = json_object_get(d, "retry");
  if (json_is_object(retry)) rm__validate_retry(c, "defaults.retry", retry);
}

static const rm__field top_fields[] = {
    {"$schema", RM__T_STRING, 0},     {"name", RM__T_STRING, 1},
    {"description", RM__T_STRING, 0}, {"version", RM__T_STRING | RM__T_INTEGER, 0},
    {"inputs", RM__T_OBJECT, 0},      {"defaults", RM__T_OBJECT, 0},
    {"tasks", RM__T_OBJECT, 1},
};

static void validate_top(rm__vctx *c, const json_t *wf) {
  if (!rm__check_fields(c, "", wf, top_fields, RM__NFIELDS(top_fields))) return;
  const char *name = json_string_value(json_object_get(wf, "name"));
  if (name && !workflow_name_ok(name))
    rm__problem(c, "name", "'%s' must be non-empty and use only letters, digits, '-', '_' and '.'",
                name);
  const json_t *inputs = json_object_get(wf, "inputs"), *v;
  const char *key;
  if (json_is_object(inputs)) {
    c->inputs = inputs;
    json_object_foreach((json_t *)inputs, key, v) validate_input(c, key, v);
  }
  const json_t *d = json_object_get(wf, "defaults");
  if (d) validate_defaults(c, d);
  const json_t *tasks = json_object_get(wf, "tasks");
  if (!json_is_object(tasks)) return;
  c->tasks = tasks;
  if (json_object_size(tasks) == 0) rm__problem(c, "tasks", "must hold at least one task");
  json_object_foreach((json_t *)tasks, key, v) rm__validate_task(c, key, v);
  rm__validate_graph(c);
}

json_t *rm_workflow_validate(const json_t *wf, const rm_validate_opts *o) {
  rm_validate_opts none = {0};
  rm__vctx c = {o ? o : &none, json_array(), 0, NULL, NULL, NULL};
  if (!c.problems) return NULL;
  if (!json_is_object(wf))
    rm__problem(&c, "", "a workflow must be a JSON object, not %s",
                wf ? rm__a_type(wf) : "nothing");
  else
    validate_top(&c, wf);
  rm__syntax_free(&c);
  if (c.oom) {
    json_decref(c.problems);
    return NULL;
  }
  return c.problems;
}
