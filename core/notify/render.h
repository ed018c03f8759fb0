/* rm_notify render: the text of notifications -- templates of channel
 * settings ("{{ event.run.status }}"), the default layout of a message and
 * the escapes of the chat markups. Used by the built-in channel types
 * (notify_http.c, notify_email.c) and, through the Lua module `notify`
 * (lua/mod_notify.c), by channel plugins, so every type renders alike.
 *
 * Placeholders are resolved against a JSON object (notify.h says what a
 * channel's templates see): "{{event.run.tags[0]}}", "{{fields.host}}".
 * A missing value renders as "" (a notification must not fail on an
 * absent optional field); objects and arrays as compact JSON; "\{{"
 * writes "{{". Values are escaped for the markup they land in, the
 * template's own text is markup. Deliberately smaller than the workflow
 * templates (engine/template.h): no secrets, no helpers.
 *
 * Every function returning memory returns a malloc'ed string or a new
 * reference (caller frees / decrefs), NULL when out of memory. */
#ifndef RM_NOTIFY_RENDER_H
#define RM_NOTIFY_RENDER_H

#include <jansson.h>
#include <stddef.h>

#include "util/buf.h"

/* Stored nowhere; the names are what Lua code passes. */
enum rm_notify_escape {
  RM_NOTIFY_ESC_NONE = 0,       /* "none" */
  RM_NOTIFY_ESC_HTML = 1,       /* "html": & < > " (Telegram HTML) */
  RM_NOTIFY_ESC_MARKDOWNV2 = 2, /* "markdownv2": Telegram MarkdownV2 */
  RM_NOTIFY_ESC_MARKDOWN = 3,   /* "markdown": Telegram's legacy Markdown */
  RM_NOTIFY_ESC_SLACK = 4,      /* "slack": & < > as entities (Slack mrkdwn) */
};

/* The escape called name ("html"), or -1. */
int rm_notify_escape_parse(const char *name);

/* Appends s escaped for esc. 0 or RM_ENOMEM. */
int rm_notify_escape_text(rm_buf *b, const char *s, enum rm_notify_escape esc);
/* Appends the text form of v escaped for esc: strings as they are, null
 * (or NULL) as nothing, other values as compact JSON. 0 or RM_ENOMEM. */
int rm_notify_value_text(rm_buf *b, const json_t *v, enum rm_notify_escape esc);

/* tmpl with its placeholders resolved against ctx, values escaped. */
char *rm_notify_render_text(const char *tmpl, const json_t *ctx, enum rm_notify_escape esc);
/* Every string inside tmpl rendered (no escape); a string that is exactly
 * one placeholder becomes the value itself, keeping its JSON type. */
json_t *rm_notify_render_json(const json_t *tmpl, const json_t *ctx);

/* The default subject of a message: "[severity] title" (the title
 * "RestMon notification" when it has none). */
char *rm_notify_default_title(const json_t *msg, enum rm_notify_escape esc);
/* The default body: the text, then a blank line and one "key: value" line
 * per field, in the order of msg.fields. */
char *rm_notify_default_body(const json_t *msg, enum rm_notify_escape esc);

/* A copy of s cut to at most max bytes on a UTF-8 boundary (and never in
 * the middle of an "&entity;"), "…" marking a cut. s must be UTF-8. */
char *rm_notify_cut(const char *s, size_t max);

#endif
