/* What a channel plugin's manifest may say (lua/channel.h), checked when
 * the plugins load so that a bad folder stops the server at start with
 * the plugin and field named, not a notification at 3 a.m.; and the
 * value patterns of its password fields. */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <ctype.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lua/channel.h"

#define MATCH_LIMIT 100000

static const char *const field_types[] = {"text", "number", "boolean", "date", "time", "datetime",
                                          "list", "map",    "object",  "json", "password", NULL};
static const char *const manifest_keys[] = {"name", "kind", "label", "description", "version", "fields", NULL};
static const char *const field_keys[] = {"name",    "type",   "label",         "help",       "description",
                                         "required", "default", "options", "format", "value_pattern",
                                         "value_hint", NULL};
static const char *const builtin_types[] = {"webhook", "email", NULL};

static bool listed(const char *const *list, const char *s) {
  for (size_t i = 0; s && list[i]; i++)
    if (strcmp(list[i], s) == 0) return true;
  return false;
}

static int problem(char *err, size_t errlen, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int problem(char *err, size_t errlen, const char *where, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(err, errlen, "%s: %s", where, msg);
  return -1;
}

static bool name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > RM_LUA_CHANNEL_NAME_MAX || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
    return false;
  for (; *s; s++)
    if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_' && *s != '-') return false;
  return true;
}

static bool key_ok(const char *s) {
  if (!*s || strlen(s) > 64 || !(isalpha((unsigned char)*s) || *s == '_')) return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_') return false;
  return true;
}

/* Whether the field's type is t, or a list holding t. */
static bool has_type(const json_t *field, const char *t) {
  const json_t *type = json_object_get(field, "type"), *v;
  if (json_is_string(type)) return strcmp(json_string_value(type), t) == 0;
  size_t i;
  json_array_foreach(type, i, v) if (json_is_string(v) && strcmp(json_string_value(v), t) == 0) return true;
  return false;
}

static pcre2_code *compile(const char *pattern, char *why, size_t cap) {
  int ec;
  PCRE2_SIZE off;
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off, NULL);
  if (!re && why) {
    PCRE2_UCHAR msg[160];
    if (pcre2_get_error_message(ec, msg, sizeof msg) < 0) snprintf((char *)msg, sizeof msg, "invalid");
    snprintf(why, cap, "%s at offset %zu", (const char *)msg, (size_t)off);
  }
  return re;
}

static int check_type(const json_t *f, const char *where, char *err, size_t errlen) {
  const json_t *type = json_object_get(f, "type"), *v;
  size_t i;
  if (json_is_string(type)) {
    if (listed(field_types, json_string_value(type))) return 0;
  } else if (json_is_array(type) && json_array_size(type) > 0) {
    bool ok = true;
    json_array_foreach(type, i, v) ok = ok && json_is_string(v) && listed(field_types, json_string_value(v)) &&
                                    strcmp(json_string_value(v), "password") != 0;
    if (ok) return 0;
  }
  return problem(err, errlen, where,
                 "\"type\" must be one of text, number, boolean, date, time, datetime, list, map, object, json, "
                 "password, or a list of them (password alone)");
}

static int check_field(const json_t *f, const char *where, char *err, size_t errlen) {
  const char *key;
  const json_t *v;
  json_object_foreach((json_t *)f, key, v) if (!listed(field_keys, key)) return problem(
      err, errlen, where, "unknown key \"%s\" (allowed: name, type, label, help, description, required, default, "
                          "options, format, value_pattern, value_hint)", key);
  const char *name = json_string_value(json_object_get(f, "name"));
  if (!name || !key_ok(name))
    return problem(err, errlen, where, "\"name\" must be a settings key: letters, digits and '_', not first a digit");
  if (check_type(f, where, err, errlen)) return -1;
  static const char *const bools[] = {"required", NULL};
  static const char *const strs[] = {"label", "help", "description", "value_hint", NULL};
  for (size_t i = 0; bools[i]; i++)
    if ((v = json_object_get(f, bools[i])) && !json_is_boolean(v))
      return problem(err, errlen, where, "\"%s\" must be true or false", bools[i]);
  for (size_t i = 0; strs[i]; i++)
    if ((v = json_object_get(f, strs[i])) && !json_is_string(v))
      return problem(err, errlen, where, "\"%s\" must be a string", strs[i]);
  v = json_object_get(f, "options");
  if (v && (!json_is_array(v) || json_array_size(v) == 0))
    return problem(err, errlen, where, "\"options\" must be a non-empty list of the values allowed");
  v = json_object_get(f, "format");
  if (v && !(json_is_string(v) && strcmp(json_string_value(v), "url") == 0 && has_type(f, "text")))
    return problem(err, errlen, where, "\"format\" can only be \"url\", on a text field");
  v = json_object_get(f, "value_pattern");
  if (v && !(json_is_string(v) && has_type(f, "password")))
    return problem(err, errlen, where, "\"value_pattern\" is a string, on a password field");
  char why[240];
  pcre2_code *re = v ? compile(json_string_value(v), why, sizeof why) : NULL;
  if (v && !re) return problem(err, errlen, where, "\"value_pattern\" does not compile: %s", why);
  pcre2_code_free(re);
  return 0;
}

int rm__lua_check_channel_manifest(const json_t *m, const char *name, const char *where, char *err, size_t errlen) {
  const char *key;
  const json_t *v;
  json_object_foreach((json_t *)m, key, v) if (!listed(manifest_keys, key)) return problem(
      err, errlen, where, "unknown key \"%s\" (a channel plugin's manifest has name, kind, label, description, "
                          "version, fields)", key);
  if (!name_ok(name) || listed(builtin_types, name))
    return problem(err, errlen, where,
                   "a channel type's name is 1-%d of a-z, 0-9, '_', '-' (first a letter or digit), and not "
                   "webhook or email", RM_LUA_CHANNEL_NAME_MAX);
  const json_t *fields = json_object_get(m, "fields");
  if (fields && !json_is_array(fields)) return problem(err, errlen, where, "\"fields\" must be a list");
  size_t i, j;
  json_t *f, *g;
  json_array_foreach(fields, i, f) {
    char fw[600];
    snprintf(fw, sizeof fw, "%s: fields[%zu]", where, i);
    if (!json_is_object(f)) return problem(err, errlen, fw, "must be an object");
    if (check_field(f, fw, err, errlen)) return -1;
    json_array_foreach(fields, j, g) if (j < i && json_equal(json_object_get(f, "name"), json_object_get(g, "name")))
        return problem(err, errlen, fw, "\"%s\" is named twice", json_string_value(json_object_get(f, "name")));
  }
  return 0;
}

const json_t *rm_lua_channel_field(const json_t *manifest, const char *name) {
  size_t i;
  const json_t *f;
  json_array_foreach(json_object_get(manifest, "fields"), i, f) {
    const char *n = json_string_value(json_object_get(f, "name"));
    if (n && strcmp(n, name) == 0) return f;
  }
  return NULL;
}

bool rm_lua_channel_value_ok(const json_t *field, const char *value, size_t len) {
  const char *pattern = json_string_value(json_object_get(field, "value_pattern"));
  if (!pattern) return true;
  pcre2_code *re = compile(pattern, NULL, 0);
  pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
  pcre2_match_context *mc = md ? pcre2_match_context_create(NULL) : NULL;
  if (mc) pcre2_set_match_limit(mc, MATCH_LIMIT);
  int rc = mc ? pcre2_match(re, (PCRE2_SPTR)value, len, 0, 0, md, mc) : -1;
  pcre2_match_context_free(mc);
  pcre2_match_data_free(md);
  pcre2_code_free(re);
  return rc >= 0;
}
