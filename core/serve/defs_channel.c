/* Notification channels: a type and its settings. The types are the two
 * built in (webhook, email: rules below) and the channel plugins loaded
 * (lua/channel.h), whose settings are checked against their manifest's
 * fields. Settings name secrets (vault secrets, by NAME) and never hold a
 * credential: a URL with a password, a token pasted where a secret's name
 * belongs, or an Authorization header with a literal value is refused.
 * The types and their fields are also what GET /channel-types shows
 * (channels_api.c). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lua/channel.h"
#include "serve/defs.h"

/* The built-in types as the channel-types route shows them; their fields
 * are also the settings they allow. template, subject, body: message
 * templates (notify/render.h). */
static const char builtin_types[] =
    "[{\"type\": \"webhook\", \"builtin\": true, \"label\": \"Webhook\", \"description\": \"A signed JSON POST of "
    "the event (or a template of it) to a URL; also the run webhooks (docs/webhooks.md).\", \"fields\": ["
    "{\"name\": \"url\", \"type\": \"text\", \"format\": \"url\", \"label\": \"URL\", \"required\": true},"
    "{\"name\": \"headers\", \"type\": \"map\", \"label\": \"Headers\", \"help\": \"A header that carries a "
    "credential must reference a secret: Bearer {{secrets.NAME}}\"},"
    "{\"name\": \"hmac_secret\", \"type\": \"password\", \"label\": \"Signing key (vault secret)\"},"
    "{\"name\": \"events\", \"type\": \"list\", \"label\": \"Run webhooks: events\", \"options\": "
    "[\"run.failed\", \"run.succeeded\", \"run.degraded\", \"run.cancelled\"]},"
    "{\"name\": \"workflows\", \"type\": \"list\", \"label\": \"Run webhooks: workflow ids\"},"
    "{\"name\": \"template\", \"type\": \"json\", \"label\": \"Body template\"}]},"
    "{\"type\": \"email\", \"builtin\": true, \"label\": \"E-mail\", \"description\": \"A text/plain UTF-8 "
    "message over SMTP (STARTTLS when offered or required, or SMTPS).\", \"fields\": ["
    "{\"name\": \"smtp_url\", \"type\": \"text\", \"label\": \"SMTP server\", \"required\": true, \"help\": "
    "\"smtp://host:587 or smtps://host:465, no password in it\"},"
    "{\"name\": \"from\", \"type\": \"text\", \"label\": \"From\", \"required\": true},"
    "{\"name\": \"to\", \"type\": \"list\", \"label\": \"To\", \"required\": true},"
    "{\"name\": \"username\", \"type\": \"text\", \"label\": \"User name\"},"
    "{\"name\": \"password_secret\", \"type\": \"password\", \"label\": \"Password (vault secret)\"},"
    "{\"name\": \"starttls\", \"type\": \"boolean\", \"label\": \"Require STARTTLS\"},"
    "{\"name\": \"subject\", \"type\": \"text\", \"label\": \"Subject template\"},"
    "{\"name\": \"body\", \"type\": \"text\", \"label\": \"Body template\"}]}]";

#define MAX_FIELDS 64

/* A URL of one of the schemes, with a host and no user:password. */
static void check_url(rm_dcheck *k, const json_t *obj, const char *path, const char *key,
                      const char *const *schemes) {
  const char *url = rm_dc_str(k, obj, path, key, true);
  if (!url) return;
  const char *rest = NULL;
  for (size_t i = 0; schemes[i] && !rest; i++)
    if (strncasecmp(url, schemes[i], strlen(schemes[i])) == 0) rest = url + strlen(schemes[i]);
  if (!rest || !*rest || *rest == '/') {
    rm_dc_add(k, path, key, "must be a %s URL with a host", schemes[0]);
    return;
  }
  size_t authority = strcspn(rest, "/?#");
  if (memchr(rest, '@', authority))
    rm_dc_add(k, path, key, "must not carry credentials (user:password@): put the password in the vault and name "
                            "it in the settings");
  for (const char *p = url; *p; p++)
    if ((unsigned char)*p <= ' ') {
      rm_dc_add(k, path, key, "must not contain spaces or control characters");
      break;
    }
}

static bool email_ok(const char *s) {
  const char *at = strchr(s, '@');
  if (!at || at == s || strchr(at + 1, '@') || !strchr(at + 1, '.') || strlen(s) > 254) return false;
  for (; *s; s++)
    if ((unsigned char)*s <= ' ' || strchr("<>,;\"", *s)) return false;
  return at[1] != '.';
}

/* Headers that carry credentials. */
static bool sensitive_header(const char *name) {
  static const char *const words[] = {"authorization", "cookie", "token", "secret", "key", "auth",
                                      "signature",     "password", "session", NULL};
  char low[128];
  size_t n = strlen(name) < sizeof low - 1 ? strlen(name) : sizeof low - 1;
  for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)name[i]);
  low[n] = '\0';
  for (size_t i = 0; words[i]; i++)
    if (strstr(low, words[i])) return true;
  return false;
}

/* "{{secrets.NAME}}", optionally after an auth scheme ("Bearer "). */
static bool secret_reference(const char *v) {
  const char *sp = strchr(v, ' ');
  if (sp && strncmp(v, "{{", 2) != 0) {
    for (const char *p = v; p < sp; p++)
      if (!isalpha((unsigned char)*p) && *p != '-') return false;
    v = sp + 1;
  }
  if (strncmp(v, "{{", 2) != 0) return false;
  v += 2;
  while (*v == ' ') v++;
  if (strncmp(v, "secrets.", 8) != 0) return false;
  v += 8;
  size_t n = 0;
  while (v[n] && (isalnum((unsigned char)v[n]) || strchr("_.-", v[n]))) n++;
  v += n;
  while (*v == ' ') v++;
  return n > 0 && strcmp(v, "}}") == 0;
}

static void check_headers(rm_dcheck *k, const json_t *s) {
  const json_t *h = rm_dc_obj(k, s, "$.settings", "headers", false), *v;
  const char *name;
  json_object_foreach((json_t *)h, name, v) {
    char *p = rm_api_json_path_member("$.settings.headers", name);
    const char *val = json_string_value(v);
    if (!val) rm_dc_add(k, p ? p : "$.settings.headers", NULL, "must be a string");
    else if (sensitive_header(name) && !secret_reference(val))
      rm_dc_add(k, p ? p : "$.settings.headers", NULL,
                "carries a credential: its value must reference a vault secret, e.g. \"Bearer "
                "{{secrets.NAME}}\", never hold it");
    free(p);
  }
}

static void check_webhook(rm_dcheck *k, const json_t *s) {
  static const char *const http[] = {"https://", "http://", NULL};
  static const char *const events[] = {"run.failed", "run.succeeded", "run.degraded", "run.cancelled", NULL};
  check_url(k, s, "$.settings", "url", http);
  check_headers(k, s);
  rm_dc_secret_name(k, s, "$.settings", "hmac_secret", false);
  static const char *const lists[] = {"events", "workflows", NULL};
  for (size_t i = 0; lists[i]; i++) {
    const json_t *l = json_object_get(s, lists[i]);
    if (json_is_array(l) && json_array_size(l) == 0)
      rm_dc_add(k, "$.settings", lists[i], "must not be empty: leave it out to mean all");
  }
  rm_dc_strs(k, s, "$.settings", "events", false, events);
  const json_t *wfs = rm_dc_strs(k, s, "$.settings", "workflows", false, NULL), *w;
  size_t i;
  json_array_foreach(wfs, i, w) {
    char p[64];
    snprintf(p, sizeof p, "$.settings.workflows[%zu]", i);
    json_array_append_new(k->refs, json_pack("{s:s, s:s, s:O}", "path", p, "kind", "workflow", "id", w));
  }
}

static void check_email(rm_dcheck *k, const json_t *s) {
  static const char *const smtp[] = {"smtps://", "smtp://", NULL};
  check_url(k, s, "$.settings", "smtp_url", smtp);
  const char *from = rm_dc_str(k, s, "$.settings", "from", true);
  if (from && !email_ok(from)) rm_dc_add(k, "$.settings", "from", "must be an e-mail address");
  const json_t *to = rm_dc_strs(k, s, "$.settings", "to", true, NULL), *v;
  size_t i;
  json_array_foreach(to, i, v) if (!email_ok(json_string_value(v))) {
    char p[64];
    snprintf(p, sizeof p, "$.settings.to[%zu]", i);
    rm_dc_add(k, p, NULL, "must be an e-mail address");
  }
  if (json_object_get(s, "username")) rm_dc_str(k, s, "$.settings", "username", false);
  rm_dc_secret_name(k, s, "$.settings", "password_secret", false);
  const json_t *tls = json_object_get(s, "starttls");
  if (tls && !json_is_boolean(tls)) rm_dc_add(k, "$.settings", "starttls", "must be a boolean");
  rm_dc_str(k, s, "$.settings", "subject", false);
  rm_dc_str(k, s, "$.settings", "body", false);
}

/* ---- channel plugins: settings against the manifest's fields ---- */

static bool string_map(const json_t *v) {
  const char *k;
  const json_t *m;
  json_object_foreach((json_t *)v, k, m) if (!json_is_string(m)) return false;
  return json_is_object(v);
}

/* Whether v has the field type t; why describes t for an error. */
static bool of_type(const char *t, const json_t *v, const char **why) {
  bool text = json_is_string(v) && *json_string_value(v);
  if (strcmp(t, "text") == 0) return *why = "a non-empty string", text;
  if (strcmp(t, "date") == 0) return *why = "a date (YYYY-MM-DD)", text;
  if (strcmp(t, "time") == 0) return *why = "a time (HH:MM[:SS])", text;
  if (strcmp(t, "datetime") == 0) return *why = "a date and time", text;
  if (strcmp(t, "number") == 0) return *why = "a number", json_is_number(v);
  if (strcmp(t, "boolean") == 0) return *why = "true or false", json_is_boolean(v);
  if (strcmp(t, "list") == 0) return *why = "a list", json_is_array(v);
  if (strcmp(t, "map") == 0) return *why = "an object of strings", string_map(v);
  if (strcmp(t, "object") == 0) return *why = "an object", json_is_object(v);
  *why = "any JSON value";
  return strcmp(t, "json") == 0;
}

/* Checks v (settings[name]) against the field's type(s), options and
 * format. */
static void check_setting(rm_dcheck *k, const json_t *s, const json_t *f, const char *name, const json_t *v) {
  const json_t *type = json_object_get(f, "type"), *t;
  if (json_is_string(type) && strcmp(json_string_value(type), "password") == 0) {
    rm_dc_secret_name(k, s, "$.settings", name, false);
    return;
  }
  char want[300] = "";
  bool ok = false;
  size_t i;
  json_t *one = json_is_string(type) ? json_pack("[O]", type) : json_incref((json_t *)type);
  json_array_foreach(one, i, t) {
    const char *why = NULL;
    if (json_is_string(t) && of_type(json_string_value(t), v, &why)) ok = true;
    else if (why) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", i ? " or " : "", why);
  }
  json_decref(one);
  if (!ok) {
    rm_dc_add(k, "$.settings", name, "must be %s", want);
    return;
  }
  const json_t *options = json_object_get(f, "options"), *o;
  if (json_array_size(options)) {
    bool listed = false;
    char list[300] = "";
    json_array_foreach(options, i, o) {
      listed = listed || json_equal(o, v);
      if (json_is_string(o))
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", json_string_value(o));
    }
    if (!listed) rm_dc_add(k, "$.settings", name, "must be one of %s", list);
  }
  static const char *const http[] = {"https://", "http://", NULL};
  if (json_is_string(v) && json_object_get(f, "format")) check_url(k, s, "$.settings", name, http);
}

/* The names of a type's fields (NULL-terminated, borrowed from it). */
static size_t field_names(const json_t *type, const char **names) {
  size_t i, n = 0;
  const json_t *f;
  json_array_foreach(json_object_get(type, "fields"), i, f) {
    const char *name = json_string_value(json_object_get(f, "name"));
    if (name && n < MAX_FIELDS) names[n++] = name;
  }
  names[n] = NULL;
  return n;
}

static void check_plugin(rm_dcheck *k, const json_t *manifest, const json_t *s) {
  const char *names[MAX_FIELDS + 1];
  field_names(manifest, names);
  rm_dc_only(k, s, "$.settings", names);
  size_t i;
  const json_t *f;
  json_array_foreach(json_object_get(manifest, "fields"), i, f) {
    const char *name = json_string_value(json_object_get(f, "name"));
    const json_t *v = json_object_get(s, name);
    if (v) check_setting(k, s, f, name, v);
    else if (json_is_true(json_object_get(f, "required")) && !json_object_get(f, "default"))
      rm_dc_add(k, "$.settings", name, "required%s%s", json_object_get(f, "label") ? ": " : "",
                json_object_get(f, "label") ? json_string_value(json_object_get(f, "label")) : "");
  }
}

/* ---- the types ---- */

json_t *rm_defs_channel_types(rm_serve *s) {
  json_t *all = json_loads(builtin_types, 0, NULL);
  json_t *plugins = rm_lua_host_channels(&s->host), *m;
  size_t i;
  json_array_foreach(plugins, i, m) {
    json_t *t = json_pack("{s:O, s:b, s:O?, s:O?, s:O?, s:O?}", "type", json_object_get(m, "name"), "builtin", 0,
                          "label", json_object_get(m, "label"), "description", json_object_get(m, "description"),
                          "version", json_object_get(m, "version"), "fields", json_object_get(m, "fields"));
    if (!t || json_array_append_new(all, t)) {
      json_decref(all);
      all = NULL;
      break;
    }
  }
  json_decref(plugins);
  return all;
}

/* The built-in type called name in the list types (borrowed), or NULL. */
static const json_t *builtin(const json_t *types, const char *name) {
  size_t i;
  const json_t *t;
  json_array_foreach(types, i, t) {
    if (name && strcmp(json_string_value(json_object_get(t, "type")), name) == 0) return t;
  }
  return NULL;
}

/* "$.type" names every type when it is missing or unknown. */
static void unknown_type(rm_dcheck *k, const json_t *t) {
  json_t *all = rm_defs_channel_types(k->c->s), *x;
  char list[600] = "";
  size_t i;
  json_array_foreach(all, i, x)
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
               json_string_value(json_object_get(x, "type")));
  json_decref(all);
  rm_dc_add(k, "$", "type", "%s one of %s", t ? "must be" : "required:", list);
}

void rm_defs_check_channel(rm_dcheck *k, json_t *b) {
  rm_dc_bool(k, b, "$", "enabled", true);
  const json_t *tv = json_object_get(b, "type");
  const char *t = json_string_value(tv);
  json_t *types = json_loads(builtin_types, 0, NULL);
  const json_t *bt = builtin(types, t);
  const json_t *manifest = bt || !t ? NULL : rm_lua_host_channel(&k->c->s->host, t);
  if (!bt && !manifest) unknown_type(k, tv);
  const json_t *s = rm_dc_obj(k, b, "$", "settings", true);
  if (s && manifest) check_plugin(k, manifest, s);
  if (s && bt) {
    const char *names[MAX_FIELDS + 1];
    field_names(bt, names);
    rm_dc_only(k, s, "$.settings", names);
    if (strcmp(t, "webhook") == 0) check_webhook(k, s);
    else check_email(k, s);
  }
  json_decref(types);
}

static const char *const channel_f[] = {"type", "enabled", "settings", NULL};
const rm_defkind rm__kind_channel = {"channel", "channels", RM_MOD_CHANNELS, true, channel_f, rm_defs_check_channel,
                                     NULL};
