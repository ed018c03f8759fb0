#include "report/text.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

void rm__report_putn(rm__report_out *o, const char *s, size_t n) {
  if (!o->err) o->err = rm_buf_append(&o->buf, s, n);
}

void rm__report_puts(rm__report_out *o, const char *s) {
  rm__report_putn(o, s, strlen(s));
}

void rm__report_printf(rm__report_out *o, const char *fmt, ...) {
  if (o->err) return;
  va_list ap;
  va_start(ap, fmt);
  o->err = rm_buf_vprintf(&o->buf, fmt, ap);
  va_end(ap);
}

void rm__report_pad(rm__report_out *o, size_t n) {
  static const char spaces[] = "                                ";
  while (n > 0) {
    size_t k = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
    rm__report_putn(o, spaces, k);
    n -= k;
  }
}

void rm__report_sgr(rm__report_out *o, const char *code) {
  if (o->color) rm__report_printf(o, "\033[%sm", code);
}

void rm__report_newline(rm__report_out *o) {
  if (o->err) return;
  while (o->buf.len > 0 && o->buf.data[o->buf.len - 1] == ' ') o->buf.len--;
  rm__report_putn(o, "\n", 1);
}

int rm__report_flush(rm__report_out *o, FILE *f) {
  if (o->err) return o->err;
  if (o->buf.len && fwrite(o->buf.data, 1, o->buf.len, f) != o->buf.len) return RM_EIO;
  return ferror(f) ? RM_EIO : 0;
}

size_t rm__report_utf8(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned char c = s[0];
  size_t len;
  uint32_t v;
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07;
  else return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (s[i] & 0x3F);
  }
  if (len == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) return 0;
  if (len == 4 && (v < 0x10000 || v > 0x10FFFF)) return 0;
  *cp = v;
  return len;
}

/* Characters a terminal would act on rather than show: C0, DEL, C1, the
 * line/paragraph separators and the bidirectional overrides (which can make
 * a line read differently from what it holds). */
static bool invisible(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || cp == 0x2028 || cp == 0x2029 ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

size_t rm__report_text(rm__report_out *o, const char *s, size_t n, size_t max,
                       bool *cut) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, w = 0;
  if (cut) *cut = false;
  if (!s) return 0;
  while (i < n) {
    char esc[12];
    const char *unit;
    size_t unit_len, unit_w;
    uint32_t cp;
    size_t len = rm__report_utf8(p + i, n - i, &cp);
    if (len == 0) {
      unit = "\xEF\xBF\xBD";
      unit_len = 3, unit_w = 1, len = 1;
    } else if (invisible(cp)) {
      if (cp == '\n') snprintf(esc, sizeof esc, "\\n");
      else if (cp == '\t') snprintf(esc, sizeof esc, "\\t");
      else if (cp == '\r') snprintf(esc, sizeof esc, "\\r");
      else if (cp < 0x80) snprintf(esc, sizeof esc, "\\x%02x", (unsigned)cp);
      else snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
      unit = esc;
      unit_w = unit_len = strlen(esc);
    } else {
      unit = s + i;
      unit_len = len, unit_w = 1;
    }
    /* Past max-1 only the very end of the text may still fit. */
    if (max && w + unit_w > max - 1 && !(i + len == n && w + unit_w <= max)) {
      if (o) rm__report_puts(o, "…");
      if (cut) *cut = true;
      return w + 1;
    }
    if (o) rm__report_putn(o, unit, unit_len);
    w += unit_w;
    i += len;
  }
  return w;
}

size_t rm__report_textz(rm__report_out *o, const char *s, size_t max) {
  return s ? rm__report_text(o, s, strlen(s), max, NULL) : 0;
}

typedef struct capped {
  rm_buf buf;
  size_t cap;
  bool full;
  bool oom;
} capped;

/* Collects a dump up to cap bytes, then stops jansson. */
static int capped_put(const char *s, size_t n, void *data) {
  capped *c = data;
  if (c->buf.len + n > c->cap) {
    n = c->cap - c->buf.len;
    c->full = true;
  }
  if (rm_buf_append(&c->buf, s, n)) {
    c->oom = true;
    return -1;
  }
  return c->full ? -1 : 0;
}

void rm__report_value(rm__report_out *o, const json_t *v, size_t max) {
  if (o->err) return;
  if (!v) {
    rm__report_puts(o, "(none)");
    return;
  }
  /* A code point takes at most 4 bytes, so this is always enough to fill
   * max code points and see that more follow. */
  capped c = {RM_BUF_INIT, max ? max * 4 + 16 : (size_t)-1, false, false};
  int rc = json_dump_callback(v, capped_put, &c,
                              JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(12));
  if (c.oom) {
    o->err = RM_ENOMEM;
  } else if (rc == 0 || c.full) {
    rm__report_text(o, c.buf.data, c.buf.len, max, NULL);
  } else if (json_is_string(v)) {
    /* jansson refuses strings it did not validate; show them raw instead. */
    rm__report_puts(o, "\"");
    rm__report_text(o, json_string_value(v), json_string_length(v), max > 3 ? max - 2 : max,
                    NULL);
    rm__report_puts(o, "\"");
  } else {
    rm__report_puts(o, "(unprintable)");
  }
  rm_buf_free(&c.buf);
}

void rm__report_duration(rm__report_out *o, double ms) {
  if (!isfinite(ms) || ms < 0) rm__report_puts(o, "?");
  else if (ms < 100) rm__report_printf(o, "%.1f ms", ms);
  else if (ms < 1000) rm__report_printf(o, "%.0f ms", ms);
  else if (ms < 60000) rm__report_printf(o, "%.2f s", ms / 1000);
  else if (ms < 1e12) {
    long long s = (long long)(ms / 1000 + 0.5);
    rm__report_printf(o, "%lldm %02llds", s / 60, s % 60);
  } else rm__report_printf(o, "%.0f s", ms / 1000);
}

const char *rm__report_str(const json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

const json_t *rm__report_obj(const json_t *obj, const char *key) {
  const json_t *v = json_object_get(obj, key);
  return json_is_object(v) ? v : NULL;
}

const json_t *rm__report_arr(const json_t *obj, const char *key) {
  const json_t *v = json_object_get(obj, key);
  return json_is_array(v) ? v : NULL;
}

bool rm__report_num(const json_t *obj, const char *key, double *out) {
  const json_t *v = json_object_get(obj, key);
  if (!json_is_number(v)) return false;
  double d = json_number_value(v);
  if (!isfinite(d)) return false;
  *out = d;
  return true;
}

rm__report_status rm__report_status_of(const json_t *obj) {
  static const struct {
    const char *name;
    rm__report_status st;
  } names[] = {
      {"succeeded", RM__REPORT_SUCCEEDED}, {"degraded", RM__REPORT_DEGRADED},
      {"failed", RM__REPORT_FAILED},       {"skipped", RM__REPORT_SKIPPED},
      {"cancelled", RM__REPORT_CANCELLED},
  };
  const char *s = rm__report_str(obj, "status");
  if (s)
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
      if (strcmp(s, names[i].name) == 0) return names[i].st;
  return RM__REPORT_UNKNOWN;
}
