/* Field checks of definition bodies: the toolkit every kind's rules use
 * (a detail per bad field, by JSON path), the fields all kinds share (and
 * no vault secret's value anywhere: the database never holds one), and
 * the table of kinds. The rules of each kind are in defs_kinds.c and
 * defs_channel.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/defs.h"

void rm_dc_init(rm_dcheck *k, rm_hctx *c) {
  memset(k, 0, sizeof *k);
  k->c = c;
  k->refs = json_array();
}

void rm_dc_free(rm_dcheck *k) {
  rm_api_details_free(&k->d);
  json_decref(k->refs);
  k->refs = NULL;
}

/* path + "." + key (our own field names: identifiers, no quoting). */
static const char *member(char out[256], const char *path, const char *key) {
  if (key) snprintf(out, 256, "%s.%s", path, key);
  else snprintf(out, 256, "%s", path);
  return out;
}

void rm_dc_add(rm_dcheck *k, const char *path, const char *key, const char *fmt, ...) {
  char p[256], msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rm_api_details_add(&k->d, member(p, path, key), "%s", msg);
}

void rm_dc_only(rm_dcheck *k, const json_t *obj, const char *path, const char *const *allowed) {
  int n = rm_api_details_unknown_fields(&k->d, obj, path, allowed);
  if (n > 0) k->unknown += (size_t)n;
}

static bool has_control(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
  return false;
}

const char *rm_dc_str(rm_dcheck *k, const json_t *obj, const char *path, const char *key, bool required) {
  const json_t *v = json_object_get(obj, key);
  if (!v) {
    if (required) rm_dc_add(k, path, key, "required: a non-empty string");
    return NULL;
  }
  if (!json_is_string(v) || !*json_string_value(v)) {
    rm_dc_add(k, path, key, "must be a non-empty string");
    return NULL;
  }
  return json_string_value(v);
}

json_t *rm_dc_obj(rm_dcheck *k, const json_t *obj, const char *path, const char *key, bool required) {
  json_t *v = json_object_get(obj, key);
  if (!v) {
    if (required) rm_dc_add(k, path, key, "required: an object");
    return NULL;
  }
  if (!json_is_object(v)) {
    rm_dc_add(k, path, key, "must be an object");
    return NULL;
  }
  return v;
}

bool rm_dc_bool(rm_dcheck *k, json_t *obj, const char *path, const char *key, bool dflt) {
  const json_t *v = json_object_get(obj, key);
  if (!v) {
    json_object_set_new(obj, key, json_boolean(dflt));
    return dflt;
  }
  if (!json_is_boolean(v)) rm_dc_add(k, path, key, "must be true or false");
  return json_is_true(v);
}

bool rm_dc_int(rm_dcheck *k, json_t *obj, const char *path, const char *key, bool required, json_int_t min,
               json_int_t max, bool has_dflt, json_int_t dflt) {
  const json_t *v = json_object_get(obj, key);
  if (!v) {
    if (has_dflt) json_object_set_new(obj, key, json_integer(dflt));
    else if (required)
      rm_dc_add(k, path, key, "required: an integer from %" JSON_INTEGER_FORMAT " to %" JSON_INTEGER_FORMAT, min,
                max);
    return false;
  }
  if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
    rm_dc_add(k, path, key, "must be an integer from %" JSON_INTEGER_FORMAT " to %" JSON_INTEGER_FORMAT, min, max);
    return false;
  }
  return true;
}

static void list_text(char *out, size_t n, const char *const *options) {
  size_t len = 0;
  out[0] = '\0';
  for (size_t i = 0; options[i] && len < n; i++)
    len += (size_t)snprintf(out + len, n - len, "%s\"%s\"", i ? ", " : "", options[i]);
}

int rm_dc_index(const char *const *options, const char *s) {
  for (int i = 0; s && options[i]; i++)
    if (strcmp(options[i], s) == 0) return i;
  return -1;
}

int rm_dc_enum(rm_dcheck *k, json_t *obj, const char *path, const char *key, const char *const *options,
               bool required, const char *dflt) {
  const json_t *v = json_object_get(obj, key);
  char list[300];
  list_text(list, sizeof list, options);
  if (!v && dflt) {
    json_object_set_new(obj, key, json_string(dflt));
    return rm_dc_index(options, dflt);
  }
  if (!v) {
    if (required) rm_dc_add(k, path, key, "required: one of %s", list);
    return -1;
  }
  int i = rm_dc_index(options, json_string_value(v));
  if (i < 0) rm_dc_add(k, path, key, "must be one of %s", list);
  return i;
}

const json_t *rm_dc_strs(rm_dcheck *k, const json_t *obj, const char *path, const char *key, bool required,
                         const char *const *options) {
  const json_t *v = json_object_get(obj, key), *e;
  char p[256], list[300];
  if (!v) {
    if (required) rm_dc_add(k, path, key, "required: a non-empty array of strings");
    return NULL;
  }
  if (!json_is_array(v) || (required && json_array_size(v) == 0)) {
    rm_dc_add(k, path, key, required ? "must be a non-empty array of strings" : "must be an array of strings");
    return NULL;
  }
  size_t i, bad = 0;
  member(p, path, key);
  json_array_foreach(v, i, e) {
    const char *s = json_string_value(e);
    char ip[300];
    snprintf(ip, sizeof ip, "%s[%zu]", p, i);
    bool again = false;
    for (size_t j = 0; s && j < i; j++) again |= json_equal(json_array_get(v, j), e);
    if (options) list_text(list, sizeof list, options);
    if (!s || !*s) rm_dc_add(k, ip, NULL, "must be a non-empty string");
    else if (options && rm_dc_index(options, s) < 0) rm_dc_add(k, ip, NULL, "must be one of %s", list);
    else if (again) rm_dc_add(k, ip, NULL, "'%s' is listed twice", s);
    else continue;
    bad++;
  }
  return bad ? NULL : v;
}

const char *rm_dc_ref(rm_dcheck *k, const json_t *obj, const char *path, const char *key, const char *kind,
                      bool required) {
  const char *id = rm_dc_str(k, obj, path, key, required);
  char p[256];
  if (id) json_array_append_new(k->refs, json_pack("{s:s, s:s, s:s}", "path", member(p, path, key), "kind", kind,
                                                   "id", id));
  return id;
}

/* A secret's name: letters, digits, '_', '.', '-' (secret/secret.h), at
 * most 64, starting with a letter or '_'. Anything else -- a URL, a bot
 * token with its ':', a long random string -- is a value pasted where
 * its name belongs. */
static bool looks_like_name(const char *s) {
  size_t n = strlen(s), upper = 0, lower = 0, digit = 0, sep = 0;
  if (n == 0 || n > 64 || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_')) return false;
  for (const char *p = s; *p; p++) {
    if (*p >= 'A' && *p <= 'Z') upper++;
    else if (*p >= 'a' && *p <= 'z') lower++;
    else if (*p >= '0' && *p <= '9') digit++;
    else if (*p == '_' || *p == '.' || *p == '-') sep++;
    else return false;
  }
  /* mixed case and digits without a word separator: a random token */
  return !(n >= 20 && upper && lower && digit && !sep);
}

void rm_dc_secret_name(rm_dcheck *k, const json_t *obj, const char *path, const char *key, bool required) {
  const char *s = rm_dc_str(k, obj, path, key, required);
  if (s && !looks_like_name(s))
    rm_dc_add(k, path, key,
              "must be the NAME of a secret in the vault (letters, digits, '_', '.', '-'), never the secret's "
              "value itself");
}

const char *rm_dc_one_of(rm_dcheck *k, const json_t *obj, const char *path, const char *const *keys,
                         bool required) {
  const char *first = NULL;
  char list[300];
  list_text(list, sizeof list, keys);
  for (size_t i = 0; keys[i]; i++) {
    if (!json_object_get(obj, keys[i])) continue;
    if (first) rm_dc_add(k, path, keys[i], "only one of %s may be given ('%s' is given too)", list, first);
    else first = keys[i];
  }
  if (!first && required) rm_dc_add(k, path, NULL, "exactly one of %s is required", list);
  return first;
}

/* ---- the kinds ---- */

extern const rm_defkind rm__kind_task, rm__kind_workflow, rm__kind_schedule, rm__kind_monitor,
    rm__kind_channel, rm__kind_mapping, rm__kind_maintenance;

static const rm_defkind *const all_kinds[] = {&rm__kind_task,    &rm__kind_workflow, &rm__kind_schedule,
                                              &rm__kind_monitor, &rm__kind_channel,  &rm__kind_mapping,
                                              &rm__kind_maintenance};

const rm_defkind *rm_defs_kind(const char *plural) {
  for (size_t i = 0; i < sizeof all_kinds / sizeof all_kinds[0]; i++)
    if (strcmp(all_kinds[i]->plural, plural) == 0) return all_kinds[i];
  return NULL;
}

const rm_defkind *rm_defs_kind_of(const rm_hctx *c) {
  static const char prefix[] = "/api/v1/";
  const char *p = c->route->pattern;
  if (strncmp(p, prefix, sizeof prefix - 1) != 0) return NULL;
  p += sizeof prefix - 1;
  char plural[32];
  size_t n = strcspn(p, "/");
  if (n >= sizeof plural) return NULL;
  memcpy(plural, p, n);
  plural[n] = '\0';
  return rm_defs_kind(plural);
}

/* ---- the fields every kind shares ---- */

static const char *const server_owned[] = {"id", "kind", "version", "created_at", "updated_at", "deleted_at",
                                           "owner", NULL};

static void check_server_owned(rm_dcheck *k, json_t *body, bool update) {
  for (size_t i = 0; server_owned[i]; i++) {
    const char *f = server_owned[i];
    if (!json_object_get(body, f)) continue;
    if (update && strcmp(f, "version") == 0) continue;
    if (update && strcmp(f, "owner") == 0 && k->c->role == RM_ROLE_ADMIN) continue;
    rm_dc_add(k, "$", f, "set by the server; leave it out%s",
              strcmp(f, "version") == 0 ? " (it is needed only to update)"
              : strcmp(f, "owner") == 0 ? " (only an admin may change an object's owner, on update)"
                                        : "");
    k->unknown++;
  }
  if (!update) return;
  const json_t *v = json_object_get(body, "version");
  if (!v) rm_dc_add(k, "$", "version", "required: the version you read (optimistic locking)");
  else if (!json_is_integer(v) || json_integer_value(v) < 1) rm_dc_add(k, "$", "version", "must be an integer >= 1");
  if (json_object_get(body, "owner")) rm_dc_ref(k, body, "$", "owner", "user", true);
}

static void check_tags(rm_dcheck *k, const json_t *body) {
  const json_t *tags = rm_dc_strs(k, body, "$", "tags", false, NULL), *t;
  size_t i;
  json_array_foreach(tags, i, t) if (strlen(json_string_value(t)) > 100) {
    rm_dc_add(k, "$", "tags", "tag %zu is longer than 100 characters", i);
    break;
  }
  if (json_array_size(tags) > 50) rm_dc_add(k, "$", "tags", "at most 50 tags");
}

/* The paths where scrubbed (body with every vault secret value masked)
 * differs from body: a secret's value pasted where its reference belongs.
 * At most *budget of them. */
static void pasted_secrets(rm_dcheck *k, const json_t *body, const json_t *scrubbed, const char *path, int *budget) {
  if (*budget <= 0 || json_equal(body, scrubbed)) return;
  const char *key;
  json_t *v;
  size_t i;
  if (json_is_object(body) && json_is_object(scrubbed)) {
    json_object_foreach((json_t *)body, key, v) {
      char *p = rm_api_json_path_member(path, key);
      const json_t *w = json_object_get(scrubbed, key);
      if (p && w) pasted_secrets(k, v, w, p, budget);
      else if (p && (*budget)-- > 0) rm_dc_add(k, p, NULL, "this key holds the value of a vault secret");
      free(p);
    }
  } else if (json_is_array(body) && json_is_array(scrubbed)) {
    json_array_foreach(body, i, v) {
      char *p = rm_api_json_path_index(path, i);
      if (p) pasted_secrets(k, v, json_array_get(scrubbed, i), p, budget);
      free(p);
    }
  } else {
    (*budget)--;
    rm_dc_add(k, path, NULL, "holds the value of a vault secret: reference it as {{secrets.NAME}} instead");
  }
}

void rm_defs_check_body(rm_dcheck *k, const rm_defkind *dk, json_t *body, bool update) {
  const char *allowed[40];
  size_t n = 0;
  static const char *const common[] = {"name", "description", "tags", NULL};
  for (size_t i = 0; common[i]; i++) allowed[n++] = common[i];
  if (dk->scoped) allowed[n++] = "scope";
  for (size_t i = 0; dk->fields[i] && n < 39; i++) allowed[n++] = dk->fields[i];
  allowed[n] = NULL;
  check_server_owned(k, body, update);
  json_t *rest = json_copy(body); /* the server-owned fields are reported above */
  for (size_t i = 0; server_owned[i]; i++) json_object_del(rest, server_owned[i]);
  rm_dc_only(k, rest, "$", allowed);
  json_decref(rest);
  const char *name = rm_dc_str(k, body, "$", "name", true);
  if (name && (strlen(name) > 200 || has_control(name)))
    rm_dc_add(k, "$", "name", "at most 200 characters, no control characters");
  const json_t *desc = json_object_get(body, "description");
  if (desc && !json_is_string(desc)) rm_dc_add(k, "$", "description", "must be a string");
  static const char *const scopes[] = {"global", "private", NULL};
  if (dk->scoped) rm_dc_enum(k, body, "$", "scope", scopes, false, NULL);
  check_tags(k, body);
  dk->check(k, body);
  const rm_secrets *vault = k->c->s->secrets;
  if (vault && rm_secrets_count(vault)) {
    json_t *scrubbed = json_deep_copy(body);
    int budget = 10;
    if (scrubbed && rm_secrets_scrub_json(vault, scrubbed) == 0) pasted_secrets(k, body, scrubbed, "$", &budget);
    json_decref(scrubbed);
  }
}
