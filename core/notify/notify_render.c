/* Templates, the default layout of a message and the escapes of the chat
 * markups (notify/render.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "notify/render.h"
#include "util/err.h"
#include "util/text.h"

#define MAX_EXPR 200
#define ELLIPSIS "\xe2\x80\xa6"

/* ---- escapes ------------------------------------------------------------ */

int rm_notify_escape_parse(const char *name) {
  static const char *const names[] = {"none", "html", "markdownv2", "markdown", "slack", NULL};
  for (int i = 0; name && names[i]; i++)
    if (strcmp(name, names[i]) == 0) return i;
  return -1;
}

static const char *entity(char c) {
  switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    default: return NULL;
  }
}

int rm_notify_escape_text(rm_buf *b, const char *s, enum rm_notify_escape esc) {
  if (esc == RM_NOTIFY_ESC_NONE) return rm_buf_puts(b, s);
  int rc = 0;
  for (; *s && !rc; s++) {
    const char *e = esc == RM_NOTIFY_ESC_HTML || esc == RM_NOTIFY_ESC_SLACK ? entity(*s) : NULL;
    if (esc == RM_NOTIFY_ESC_HTML && *s == '"') e = "&quot;";
    if (e) {
      rc = rm_buf_puts(b, e);
      continue;
    }
    if ((esc == RM_NOTIFY_ESC_MARKDOWNV2 && strchr("_*[]()~`>#+-=|{}.!\\", *s)) ||
        (esc == RM_NOTIFY_ESC_MARKDOWN && strchr("_*`[", *s)))
      rc = rm_buf_putc(b, '\\');
    if (!rc) rc = rm_buf_putc(b, *s);
  }
  return rc;
}

int rm_notify_value_text(rm_buf *b, const json_t *v, enum rm_notify_escape esc) {
  if (!v || json_is_null(v)) return 0;
  if (json_is_string(v)) return rm_notify_escape_text(b, json_string_value(v), esc);
  char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!s) return RM_ENOMEM;
  int rc = rm_notify_escape_text(b, s, esc);
  free(s);
  return rc;
}

/* ---- placeholders ------------------------------------------------------- */

/* The value at path ("event.run.tags[0]") under ctx, or NULL. */
static const json_t *lookup(const json_t *ctx, const char *path, size_t n) {
  const json_t *v = ctx;
  size_t i = 0;
  while (v && i < n) {
    size_t start = i;
    while (i < n && (isalnum((unsigned char)path[i]) || path[i] == '_' || path[i] == '-')) i++;
    if (i == start) return NULL;
    char key[MAX_EXPR + 1];
    memcpy(key, path + start, i - start);
    key[i - start] = '\0';
    v = json_object_get(v, key);
    while (v && i < n && path[i] == '[') {
      char *end;
      unsigned long idx = strtoul(path + i + 1, &end, 10);
      if (end == path + i + 1 || *end != ']') return NULL;
      v = json_array_get(v, idx);
      i = (size_t)(end - path) + 1;
    }
    if (i < n && path[i] != '.') return NULL;
    if (i < n) i++;
  }
  return i == n ? v : NULL;
}

/* Finds the next placeholder at or after s: sets *open to its "{{" and
 * *expr, *elen to the trimmed expression, returns the byte after "}}";
 * NULL when there is none. An escaped "\{{" is skipped (*open set to the
 * backslash, *expr NULL). */
static const char *next_placeholder(const char *s, const char **open, const char **expr, size_t *elen) {
  const char *o = strstr(s, "{{");
  if (!o) return NULL;
  if (o > s && o[-1] == '\\') {
    *open = o - 1;
    *expr = NULL;
    return o + 2;
  }
  const char *c = strstr(o + 2, "}}");
  if (!c || c - o - 2 > MAX_EXPR) return NULL;
  const char *a = o + 2, *z = c;
  while (a < z && isspace((unsigned char)*a)) a++;
  while (z > a && isspace((unsigned char)z[-1])) z--;
  *open = o;
  *expr = a;
  *elen = (size_t)(z - a);
  return c + 2;
}

char *rm_notify_render_text(const char *tmpl, const json_t *ctx, enum rm_notify_escape esc) {
  rm_buf b = RM_BUF_INIT;
  int rc = 0;
  const char *p = tmpl, *open, *expr, *after;
  size_t elen = 0;
  while (!rc && (after = next_placeholder(p, &open, &expr, &elen)) != NULL) {
    rc = rm_buf_append(&b, p, (size_t)(open - p));
    if (!rc && !expr) rc = rm_buf_puts(&b, "{{");
    else if (!rc) rc = rm_notify_value_text(&b, lookup(ctx, expr, elen), esc);
    p = after;
  }
  if (!rc) rc = rm_buf_puts(&b, p);
  if (rc) {
    rm_buf_free(&b);
    return NULL;
  }
  return rm_buf_steal(&b);
}

json_t *rm_notify_render_json(const json_t *tmpl, const json_t *ctx) {
  if (json_is_string(tmpl)) {
    const char *s = json_string_value(tmpl), *open, *expr;
    size_t elen = 0;
    const char *after = next_placeholder(s, &open, &expr, &elen);
    if (after && open == s && expr && !*after) {
      const json_t *v = lookup(ctx, expr, elen);
      return v ? json_deep_copy(v) : json_null();
    }
    char *t = rm_notify_render_text(s, ctx, RM_NOTIFY_ESC_NONE);
    json_t *r = t ? json_string(t) : NULL;
    free(t);
    return r;
  }
  json_t *out = NULL, *v;
  if (json_is_object(tmpl)) {
    out = json_object();
    const char *k;
    json_object_foreach((json_t *)tmpl, k, v) {
      if (out && json_object_set_new(out, k, rm_notify_render_json(v, ctx))) {
        json_decref(out);
        out = NULL;
      }
    }
  } else if (json_is_array(tmpl)) {
    out = json_array();
    size_t i;
    json_array_foreach(tmpl, i, v) {
      if (out && json_array_append_new(out, rm_notify_render_json(v, ctx))) {
        json_decref(out);
        out = NULL;
      }
    }
  } else {
    out = json_deep_copy(tmpl);
  }
  return out;
}

/* ---- the default layout -------------------------------------------------- */

char *rm_notify_default_title(const json_t *msg, enum rm_notify_escape esc) {
  const char *sev = json_string_value(json_object_get(msg, "severity"));
  const char *title = json_string_value(json_object_get(msg, "title"));
  rm_buf b = RM_BUF_INIT;
  int rc = 0;
  if (sev && *sev) {
    rc = rm_buf_putc(&b, '[');
    if (!rc) rc = rm_notify_escape_text(&b, sev, esc);
    if (!rc) rc = rm_buf_puts(&b, "] ");
  }
  if (!rc) rc = rm_notify_escape_text(&b, title && *title ? title : "RestMon notification", esc);
  if (rc) {
    rm_buf_free(&b);
    return NULL;
  }
  return rm_buf_steal(&b);
}

char *rm_notify_default_body(const json_t *msg, enum rm_notify_escape esc) {
  const char *text = json_string_value(json_object_get(msg, "text"));
  const json_t *fields = json_object_get(msg, "fields"), *v;
  rm_buf b = RM_BUF_INIT;
  int rc = text ? rm_notify_escape_text(&b, text, esc) : 0;
  const char *k;
  bool first = true;
  json_object_foreach((json_t *)fields, k, v) {
    if (!rc && first && b.len) rc = rm_buf_puts(&b, "\n");
    first = false;
    if (!rc && b.len) rc = rm_buf_putc(&b, '\n');
    if (!rc) rc = rm_notify_escape_text(&b, k, esc);
    if (!rc) rc = rm_buf_puts(&b, ": ");
    if (!rc) rc = rm_notify_value_text(&b, v, esc);
  }
  if (rc) {
    rm_buf_free(&b);
    return NULL;
  }
  return rm_buf_steal(&b);
}

char *rm_notify_cut(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n <= max) return strdup(s);
  if (max < 4) return strdup("");
  n = rm_utf8_valid_prefix(s, max - 3);
  /* do not leave half an entity ("&am") of an escaped text */
  for (size_t i = n > 8 ? n - 8 : 0; i < n; i++)
    if (s[i] == '&' && !memchr(s + i, ';', n - i)) {
      n = i;
      break;
    }
  char *c = malloc(n + 4);
  if (!c) return NULL;
  memcpy(c, s, n);
  memcpy(c + n, ELLIPSIS, 4);
  return c;
}
