/* Notification channels: a type and its settings. Settings name secrets
 * (vault secrets, by NAME) and never hold a credential: a URL with a
 * password, a token pasted where a secret's name belongs, or an
 * Authorization header with a literal value is refused. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve/defs.h"

static const char *const types[] = {"webhook", "email", "telegram", "discord", "slack", NULL};
/* template, subject, body, text: message templates (notify/notify.h) */
static const char *const webhook_f[] = {"url", "headers", "hmac_secret", "events", "workflows", "template", NULL};
static const char *const email_f[] = {"smtp_url", "from", "to", "username", "password_secret", "starttls",
                                      "subject", "body", NULL};
static const char *const telegram_f[] = {"bot_token_secret", "chat_id", "api_url", "parse_mode", "text", NULL};
static const char *const hook_f[] = {"webhook_url_secret", "text", NULL};
static const char *const *const settings_f[] = {webhook_f, email_f, telegram_f, hook_f, hook_f};

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

static void check_telegram(rm_dcheck *k, const json_t *s) {
  rm_dc_secret_name(k, s, "$.settings", "bot_token_secret", true);
  const json_t *chat = json_object_get(s, "chat_id");
  if (!chat) rm_dc_add(k, "$.settings", "chat_id", "required: the chat's id (an integer or \"@channelname\")");
  else if (!json_is_integer(chat) && !(json_is_string(chat) && *json_string_value(chat)))
    rm_dc_add(k, "$.settings", "chat_id", "must be an integer or a non-empty string");
  static const char *const http[] = {"https://", "http://", NULL};
  static const char *const modes[] = {"HTML", "MarkdownV2", "Markdown", NULL};
  if (json_object_get(s, "api_url")) check_url(k, s, "$.settings", "api_url", http);
  rm_dc_enum(k, (json_t *)s, "$.settings", "parse_mode", modes, false, NULL);
}

void rm_defs_check_channel(rm_dcheck *k, json_t *b) {
  rm_dc_bool(k, b, "$", "enabled", true);
  int t = rm_dc_enum(k, b, "$", "type", types, true, NULL);
  const json_t *s = rm_dc_obj(k, b, "$", "settings", true);
  if (t < 0 || !s) return;
  rm_dc_only(k, s, "$.settings", settings_f[t]);
  if (t == 0) check_webhook(k, s);
  else if (t == 1) check_email(k, s);
  else if (t == 2) check_telegram(k, s);
  else rm_dc_secret_name(k, s, "$.settings", "webhook_url_secret", true);
  if (t >= 2) rm_dc_str(k, s, "$.settings", "text", false);
}

static const char *const channel_f[] = {"type", "enabled", "settings", NULL};
const rm_defkind rm__kind_channel = {"channel", "channels", RM_MOD_CHANNELS, true, channel_f, rm_defs_check_channel,
                                     NULL};
