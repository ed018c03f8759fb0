/* The JSON bodies of the chat APIs. Each keeps under its API's limits
 * (texts are cut on a UTF-8 boundary with "…") and treats the message's
 * values as text, never as markup or mentions: Telegram values are
 * escaped for the parse_mode chosen, Slack's for mrkdwn, and Discord's
 * allowed_mentions is empty, so "@everyone" in an event pings nobody.
 *
 *   telegram  https://core.telegram.org/bots/api#sendmessage: text <= 4096
 *   discord   https://discord.com/developers/docs/resources/webhook: content
 *             <= 2000; embed title <= 256, description <= 4096, <= 25
 *             fields (name <= 256, value <= 1024, not empty), <= 6000 in all
 *   slack     https://api.slack.com/messaging/webhooks: header plain_text
 *             <= 150, section text <= 3000, <= 10 fields of <= 2000 */
#include <stdlib.h>
#include <string.h>

#include "notify/notify_internal.h"
#include "util/err.h"

#define TELEGRAM_TEXT_MAX 4096
#define DISCORD_CONTENT_MAX 2000
#define DISCORD_TITLE_MAX 256
#define DISCORD_DESCRIPTION_MAX 3000 /* with the fields below: under 6000 */
#define DISCORD_FIELDS_MAX 10
#define DISCORD_NAME_MAX 64
#define DISCORD_VALUE_MAX 200
#define SLACK_HEADER_MAX 150
#define SLACK_TEXT_MAX 3000
#define SLACK_FIELDS_MAX 10
#define SLACK_FIELD_MAX 600

/* obj[key] = s cut to max; false when out of memory. */
static bool set_cut(json_t *obj, const char *key, const char *s, size_t max) {
  char *c = s ? rm__notify_cut(s, max) : NULL;
  bool ok = c && json_object_set_new(obj, key, json_string(c)) == 0;
  free(c);
  return ok;
}

/* The text of v escaped for esc (caller frees), NULL when out of memory. */
static char *value_text(const json_t *v, enum rm__notify_escape esc) {
  rm_buf b = RM_BUF_INIT;
  if (rm__notify_value_text(&b, v, esc)) {
    rm_buf_free(&b);
    return NULL;
  }
  return rm_buf_steal(&b);
}

static json_t *oom(rm__notify_send *x, json_t *partial) {
  json_decref(partial);
  rm__notify_fail(x, RM_ENOMEM, "out of memory");
  return NULL;
}

/* ---- telegram ------------------------------------------------------------ */

static const char *const parse_modes[] = {"HTML", "MarkdownV2", "Markdown", NULL};
static const enum rm__notify_escape parse_escapes[] = {RM__ESC_HTML, RM__ESC_MARKDOWNV2, RM__ESC_MARKDOWN};
static const char *const bold[][2] = {{"<b>", "</b>"}, {"*", "*"}, {"*", "*"}};

/* The default text: the title (bold when there is markup), a blank line,
 * the body. */
static char *telegram_text(const json_t *ctx, int mode) {
  enum rm__notify_escape esc = mode >= 0 ? parse_escapes[mode] : RM__ESC_NONE;
  char *title = rm__notify_default_title(ctx, esc), *body = rm__notify_default_body(ctx, esc);
  rm_buf b = RM_BUF_INIT;
  int rc = title && body ? 0 : RM_ENOMEM;
  if (!rc) rc = rm_buf_printf(&b, "%s%s%s%s%s", mode >= 0 ? bold[mode][0] : "", title,
                              mode >= 0 ? bold[mode][1] : "", *body ? "\n\n" : "", body);
  free(title);
  free(body);
  if (rc) {
    rm_buf_free(&b);
    return NULL;
  }
  return rm_buf_steal(&b);
}

json_t *rm__notify_telegram_body(rm__notify_send *x, const json_t *settings, const json_t *ctx) {
  const json_t *chat = json_object_get(settings, "chat_id");
  if (!json_is_integer(chat) && !(json_is_string(chat) && *json_string_value(chat))) {
    rm__notify_fail(x, RM_EINVAL, "settings.chat_id: %s", chat ? "must be an integer or a string" : "missing");
    return NULL;
  }
  const json_t *pm = json_object_get(settings, "parse_mode");
  int mode = -1;
  for (int i = 0; pm && parse_modes[i]; i++)
    if (json_is_string(pm) && strcmp(json_string_value(pm), parse_modes[i]) == 0) mode = i;
  if (pm && mode < 0) {
    rm__notify_fail(x, RM_EINVAL, "settings.parse_mode: must be HTML, MarkdownV2 or Markdown");
    return NULL;
  }
  const char *tmpl = json_string_value(json_object_get(settings, "text"));
  char *text = tmpl ? rm__notify_render_text(tmpl, ctx, mode >= 0 ? parse_escapes[mode] : RM__ESC_NONE)
                    : telegram_text(ctx, mode);
  json_t *body = json_pack("{s:O, s:b}", "chat_id", chat, "disable_web_page_preview", 1);
  bool ok = text && body && set_cut(body, "text", text, TELEGRAM_TEXT_MAX) &&
            (mode < 0 || json_object_set_new(body, "parse_mode", json_string(parse_modes[mode])) == 0);
  free(text);
  return ok ? body : oom(x, body);
}

/* ---- discord -------------------------------------------------------------- */

/* The embed colour of a severity or signal state; -1 for none. */
static json_int_t severity_colour(const char *sev) {
  static const struct {
    const char *name;
    json_int_t rgb;
  } colours[] = {{"critical", 0xE74C3C}, {"error", 0xE74C3C},    {"failed", 0xE74C3C},
                 {"warning", 0xF39C12},  {"degraded", 0xF39C12}, {"info", 0x3498DB},
                 {"ok", 0x2ECC71},       {"healthy", 0x2ECC71},  {"resolved", 0x2ECC71},
                 {"succeeded", 0x2ECC71}};
  for (size_t i = 0; sev && i < sizeof colours / sizeof colours[0]; i++)
    if (strcmp(sev, colours[i].name) == 0) return colours[i].rgb;
  return -1;
}

static bool discord_fields(json_t *embed, const json_t *fields) {
  if (!json_object_size(fields)) return true;
  json_t *list = json_array();
  if (!list || json_object_set_new(embed, "fields", list)) return false;
  const char *k;
  const json_t *v;
  json_object_foreach((json_t *)fields, k, v) {
    if (json_array_size(list) == DISCORD_FIELDS_MAX) break;
    char *val = value_text(v, RM__ESC_NONE);
    json_t *f = json_pack("{s:b}", "inline", 1);
    bool ok = val && f && set_cut(f, "name", k, DISCORD_NAME_MAX) &&
              set_cut(f, "value", *val ? val : "-", DISCORD_VALUE_MAX) && json_array_append(list, f) == 0;
    free(val);
    json_decref(f);
    if (!ok) return false;
  }
  return true;
}

json_t *rm__notify_discord_body(rm__notify_send *x, const json_t *settings, const json_t *ctx) {
  json_t *body = json_pack("{s:{s:[]}}", "allowed_mentions", "parse");
  if (!body) return oom(x, NULL);
  const char *tmpl = json_string_value(json_object_get(settings, "text"));
  if (tmpl) {
    char *text = rm__notify_render_text(tmpl, ctx, RM__ESC_NONE);
    bool ok = text && set_cut(body, "content", *text ? text : "-", DISCORD_CONTENT_MAX);
    free(text);
    return ok ? body : oom(x, body);
  }
  const char *sev = json_string_value(json_object_get(ctx, "severity"));
  const char *text = json_string_value(json_object_get(ctx, "text"));
  char *title = rm__notify_default_title(ctx, RM__ESC_NONE);
  json_t *embed = json_object(), *embeds = json_array();
  json_int_t rgb = severity_colour(sev);
  bool ok = title && embed && embeds && json_object_set(body, "embeds", embeds) == 0 &&
            json_array_append(embeds, embed) == 0 && set_cut(embed, "title", title, DISCORD_TITLE_MAX) &&
            (!text || !*text || set_cut(embed, "description", text, DISCORD_DESCRIPTION_MAX)) &&
            (rgb < 0 || json_object_set_new(embed, "color", json_integer(rgb)) == 0) &&
            discord_fields(embed, json_object_get(ctx, "fields"));
  free(title);
  json_decref(embed);
  json_decref(embeds);
  return ok ? body : oom(x, body);
}

/* ---- slack ----------------------------------------------------------------- */

static json_t *slack_section_fields(const json_t *fields) {
  json_t *list = json_array();
  const char *k;
  const json_t *v;
  json_object_foreach((json_t *)fields, k, v) {
    if (!list || json_array_size(list) == SLACK_FIELDS_MAX) break;
    rm_buf b = RM_BUF_INIT;
    int rc = rm_buf_putc(&b, '*');
    if (!rc) rc = rm__notify_escape(&b, k, RM__ESC_SLACK);
    if (!rc) rc = rm_buf_puts(&b, "*\n");
    if (!rc) rc = rm__notify_value_text(&b, v, RM__ESC_SLACK);
    json_t *f = json_pack("{s:s}", "type", "mrkdwn");
    bool ok = !rc && f && set_cut(f, "text", b.data, SLACK_FIELD_MAX) && json_array_append(list, f) == 0;
    json_decref(f);
    rm_buf_free(&b);
    if (!ok) {
      json_decref(list);
      list = NULL;
    }
  }
  return list ? json_pack("{s:s, s:o}", "type", "section", "fields", list) : NULL;
}

json_t *rm__notify_slack_body(rm__notify_send *x, const json_t *settings, const json_t *ctx) {
  json_t *body = json_object();
  if (!body) return oom(x, NULL);
  const char *tmpl = json_string_value(json_object_get(settings, "text"));
  if (tmpl) {
    char *text = rm__notify_render_text(tmpl, ctx, RM__ESC_SLACK);
    bool ok = text && set_cut(body, "text", *text ? text : "-", SLACK_TEXT_MAX);
    free(text);
    return ok ? body : oom(x, body);
  }
  char *plain = rm__notify_default_title(ctx, RM__ESC_NONE), *title = rm__notify_default_title(ctx, RM__ESC_SLACK);
  const char *t = json_string_value(json_object_get(ctx, "text"));
  rm_buf text = RM_BUF_INIT;
  int rc = t ? rm__notify_escape(&text, t, RM__ESC_SLACK) : 0;
  json_t *blocks = json_array(), *header = json_pack("{s:s, s:{s:s, s:b}}", "type", "header", "text", "type",
                                                       "plain_text", "emoji", 1);
  bool ok = !rc && plain && title && blocks && header && set_cut(body, "text", title, SLACK_TEXT_MAX) &&
            json_object_set(body, "blocks", blocks) == 0 &&
            set_cut(json_object_get(header, "text"), "text", plain, SLACK_HEADER_MAX) &&
            json_array_append(blocks, header) == 0;
  if (ok && text.len) {
    json_t *sec = json_pack("{s:s, s:{s:s}}", "type", "section", "text", "type", "mrkdwn");
    ok = sec && set_cut(json_object_get(sec, "text"), "text", text.data, SLACK_TEXT_MAX) &&
         json_array_append(blocks, sec) == 0;
    json_decref(sec);
  }
  const json_t *fields = json_object_get(ctx, "fields");
  if (ok && json_object_size(fields)) ok = json_array_append_new(blocks, slack_section_fields(fields)) == 0;
  free(plain);
  free(title);
  rm_buf_free(&text);
  json_decref(blocks);
  json_decref(header);
  return ok ? body : oom(x, body);
}
