/* Reading JSON fields of signal configs and stored machines, with a
 * "$.path: message" for every problem, so the API can answer a 422 that
 * names each bad field and a corrupt stored machine says where. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "signal/signal_internal.h"

void rm__sig_problems_init(rm__sig_problems *p, json_t *list, char *err, size_t errlen) {
  memset(p, 0, sizeof *p);
  p->list = json_is_array(list) ? list : NULL;
  p->err = errlen ? err : NULL;
  p->errlen = errlen;
  if (p->err) p->err[0] = '\0';
}

/* Appends "; path: msg" to err; a message that does not fit is cut. */
static void append_err(rm__sig_problems *p, const char *path, const char *msg) {
  if (!p->err || p->len + 1 >= p->errlen) return;
  int k = snprintf(p->err + p->len, p->errlen - p->len, "%s%s: %s", p->n ? "; " : "", path, msg);
  if (k < 0) return;
  p->len += (size_t)k < p->errlen - p->len ? (size_t)k : p->errlen - p->len - 1;
}

void rm__sig_problem(rm__sig_problems *p, const char *path, const char *key, const char *fmt, ...) {
  char full[256], msg[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (key)
    snprintf(full, sizeof full, "%s.%s", path, key);
  else
    snprintf(full, sizeof full, "%s", path);
  append_err(p, full, msg);
  if (p->list) json_array_append_new(p->list, json_pack("{s:s, s:s}", "path", full, "message", msg));
  p->n++;
}

/* obj[key], reporting it missing when required. */
static const json_t *field(rm__sig_problems *p, const json_t *obj, const char *path, const char *key, bool required,
                           const char *what) {
  const json_t *v = json_object_get(obj, key);
  if (!v && required) rm__sig_problem(p, path, key, "required: %s", what);
  return v;
}

/* The value v of field key was missing (NULL) or not what it must be:
 * reports it (what is only written out then: stored machines are read
 * on every observation, and describing each field cost more than
 * reading it). Returns false. */
static bool bad_field(rm__sig_problems *p, const json_t *v, const char *path, const char *key, bool required,
                      const char *what) {
  if (v) rm__sig_problem(p, path, key, "must be %s", what);
  else if (required) rm__sig_problem(p, path, key, "required: %s", what);
  return false;
}

bool rm__sig_int(rm__sig_problems *p, const json_t *obj, const char *path, const char *key, bool required, int64_t min,
                 int64_t max, int64_t *out) {
  const json_t *v = json_object_get(obj, key);
  if (json_is_integer(v) && json_integer_value(v) >= min && json_integer_value(v) <= max) {
    *out = (int64_t)json_integer_value(v);
    return true;
  }
  char what[96];
  snprintf(what, sizeof what, "an integer from %lld to %lld", (long long)min, (long long)max);
  return bad_field(p, v, path, key, required, what);
}

bool rm__sig_real(rm__sig_problems *p, const json_t *obj, const char *path, const char *key, bool required,
                  double *out) {
  const json_t *v = field(p, obj, path, key, required, "a number");
  if (!v) return false;
  if (!json_is_number(v) || !isfinite(json_number_value(v))) {
    rm__sig_problem(p, path, key, "must be a number");
    return false;
  }
  *out = json_number_value(v);
  return true;
}

bool rm__sig_bool(rm__sig_problems *p, const json_t *obj, const char *path, const char *key, bool required, bool *out) {
  const json_t *v = field(p, obj, path, key, required, "true or false");
  if (!v) return false;
  if (!json_is_boolean(v)) {
    rm__sig_problem(p, path, key, "must be true or false");
    return false;
  }
  *out = json_is_true(v);
  return true;
}

bool rm__sig_str(rm__sig_problems *p, const json_t *obj, const char *path, const char *key, bool required,
                 size_t maxlen, const char **out) {
  const json_t *v = json_object_get(obj, key);
  if (json_is_string(v) && json_string_length(v) >= 1 && json_string_length(v) <= maxlen &&
      strlen(json_string_value(v)) == json_string_length(v)) {
    *out = json_string_value(v);
    return true;
  }
  char what[64];
  snprintf(what, sizeof what, "a string of 1 to %zu bytes", maxlen);
  return bad_field(p, v, path, key, required, what);
}

bool rm__sig_enum(rm__sig_problems *p, const json_t *obj, const char *path, const char *key, bool required,
                  const char *const *names, int *out) {
  const json_t *v = json_object_get(obj, key);
  for (int i = 0; json_is_string(v) && names[i]; i++)
    if (strcmp(json_string_value(v), names[i]) == 0) {
      *out = i;
      return true;
    }
  char what[256] = "one of ";
  size_t len = strlen(what);
  for (int i = 0; names[i] && len < sizeof what; i++)
    len += (size_t)snprintf(what + len, sizeof what - len, "%s\"%s\"", i ? ", " : "", names[i]);
  return bad_field(p, v, path, key, required, what);
}

void rm__sig_only(rm__sig_problems *p, const json_t *obj, const char *path, const char *const *allowed) {
  const char *key;
  const json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    size_t i = 0;
    while (allowed[i] && strcmp(allowed[i], key) != 0) i++;
    if (!allowed[i]) rm__sig_problem(p, path, key, "unknown field");
  }
}
