/* The lexical layer of RFC 9535: blank space, string literals and their
 * escapes, integers, numbers and member-name shorthands, plus the error
 * reporting and nesting bookkeeping the parsers share. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jsonpath/internal.h"
#include "util/err.h"

int rm__jp_fail(struct rm__jp_parser *p, size_t at, const char *fmt, ...) {
  if (p->err && p->errlen && !p->err[0]) {
    int n = snprintf(p->err, p->errlen, "at offset %zu: ", at);
    if (n >= 0 && (size_t)n < p->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  return RM_EPARSE;
}

int rm__jp_oom(struct rm__jp_parser *p) {
  if (p->err && p->errlen) snprintf(p->err, p->errlen, "out of memory");
  return RM_ENOMEM;
}

int rm__jp_enter(struct rm__jp_parser *p) {
  if (p->depth >= RM__JP_MAX_NESTING)
    return rm__jp_fail(p, p->pos, "nesting deeper than %d levels", RM__JP_MAX_NESTING);
  p->depth++;
  return 0;
}

void rm__jp_leave(struct rm__jp_parser *p) { p->depth--; }

int rm__jp_peek(const struct rm__jp_parser *p) { return rm__jp_peek_at(p, 0); }

int rm__jp_peek_at(const struct rm__jp_parser *p, size_t ahead) {
  return p->pos + ahead < p->len ? (unsigned char)p->src[p->pos + ahead] : -1;
}

int rm__jp_is_blank(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void rm__jp_skip_blank(struct rm__jp_parser *p) {
  while (rm__jp_is_blank(rm__jp_peek(p))) p->pos++;
}

size_t rm__jp_utf8_decode(const char *str, size_t n, uint32_t *cp) {
  const unsigned char *s = (const unsigned char *)str;
  if (n == 0) return 0;
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  size_t len;
  uint32_t c, min;
  if (s[0] >= 0xC2 && s[0] <= 0xDF) {
    len = 2, c = s[0] & 0x1F, min = 0x80;
  } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
    len = 3, c = s[0] & 0x0F, min = 0x800;
  } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
    len = 4, c = s[0] & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    c = c << 6 | (s[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  *cp = c;
  return len;
}

static size_t utf8_encode(uint32_t c, char *out) {
  if (c < 0x80) {
    out[0] = (char)c;
    return 1;
  }
  if (c < 0x800) {
    out[0] = (char)(0xC0 | c >> 6);
    out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = (char)(0xE0 | c >> 12);
    out[1] = (char)(0x80 | (c >> 6 & 0x3F));
    out[2] = (char)(0x80 | (c & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | c >> 18);
  out[1] = (char)(0x80 | (c >> 12 & 0x3F));
  out[2] = (char)(0x80 | (c >> 6 & 0x3F));
  out[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

static int hex_value(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Four hex digits at the current position (after "\u"). */
static int lex_hex4(struct rm__jp_parser *p, uint32_t *out) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; i++) {
    int h = hex_value(rm__jp_peek_at(p, i));
    if (h < 0) return rm__jp_fail(p, p->pos + i, "expected 4 hex digits after '\\u'");
    v = v << 4 | (uint32_t)h;
  }
  p->pos += 4;
  *out = v;
  return 0;
}

/* The escape after a backslash; *cp receives the character it stands for.
 * Surrogates must come as a high/low pair of \u escapes. */
static int lex_escape(struct rm__jp_parser *p, int quote, uint32_t *cp) {
  size_t at = p->pos - 1;
  int c = rm__jp_peek(p);
  static const char simple[] = "b\bf\fn\nr\rt\t//\\\\";
  for (size_t i = 0; i + 1 < sizeof simple; i += 2) {
    if (c == simple[i]) {
      p->pos++;
      *cp = (unsigned char)simple[i + 1];
      return 0;
    }
  }
  if (c == quote) {
    p->pos++;
    *cp = (uint32_t)quote;
    return 0;
  }
  if (c != 'u') return rm__jp_fail(p, at, "invalid escape sequence in string literal");
  p->pos++;
  uint32_t hi;
  int rc = lex_hex4(p, &hi);
  if (rc) return rc;
  if (hi >= 0xDC00 && hi <= 0xDFFF)
    return rm__jp_fail(p, at, "unpaired low surrogate in string literal");
  if (hi < 0xD800 || hi > 0xDBFF) {
    *cp = hi;
    return 0;
  }
  if (rm__jp_peek(p) != '\\' || rm__jp_peek_at(p, 1) != 'u')
    return rm__jp_fail(p, at, "unpaired high surrogate in string literal");
  p->pos += 2;
  uint32_t lo;
  if ((rc = lex_hex4(p, &lo))) return rc;
  if (lo < 0xDC00 || lo > 0xDFFF)
    return rm__jp_fail(p, at, "unpaired high surrogate in string literal");
  *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
  return 0;
}

/* The body of a string literal, decoded into b. */
static int lex_string_body(struct rm__jp_parser *p, int quote, size_t start, rm_buf *b) {
  for (;;) {
    int c = rm__jp_peek(p);
    if (c < 0) return rm__jp_fail(p, start, "unterminated string literal");
    if (c == quote) {
      p->pos++;
      return 0;
    }
    uint32_t cp;
    char tmp[4];
    size_t k;
    if (c == '\\') {
      p->pos++;
      int rc = lex_escape(p, quote, &cp);
      if (rc) return rc;
      k = utf8_encode(cp, tmp);
      if (rm_buf_append(b, tmp, k)) return rm__jp_oom(p);
    } else if (c < 0x20) {
      return rm__jp_fail(p, p->pos, "control character U+%04X must be escaped in string literal",
                         (unsigned)c);
    } else {
      if (!(k = rm__jp_utf8_decode(p->src + p->pos, p->len - p->pos, &cp)))
        return rm__jp_fail(p, p->pos, "invalid UTF-8 in string literal");
      if (rm_buf_append(b, p->src + p->pos, k)) return rm__jp_oom(p);
      p->pos += k;
    }
  }
}

int rm__jp_lex_string(struct rm__jp_parser *p, const char **s, size_t *len) {
  size_t start = p->pos;
  int quote = rm__jp_peek(p);
  p->pos++;
  rm_buf b = RM_BUF_INIT;
  int rc = lex_string_body(p, quote, start, &b);
  char *out = rc ? NULL : rm__jp_alloc(p->arena, b.len + 1);
  if (!rc && !out) rc = rm__jp_oom(p);
  if (!rc) {
    if (b.len) memcpy(out, b.data, b.len);
    *s = out;
    *len = b.len;
  }
  rm_buf_free(&b);
  return rc;
}

int rm__jp_lex_int(struct rm__jp_parser *p, int64_t *out) {
  size_t start = p->pos;
  int neg = rm__jp_peek(p) == '-';
  if (neg) p->pos++;
  int c = rm__jp_peek(p);
  if (c < '0' || c > '9') return rm__jp_fail(p, p->pos, "expected a digit");
  if (c == '0') {
    p->pos++;
    c = rm__jp_peek(p);
    if (neg) return rm__jp_fail(p, start, "'-0' is not a valid integer here");
    if (c >= '0' && c <= '9') return rm__jp_fail(p, start, "integer with a leading zero");
    *out = 0;
    return 0;
  }
  int64_t v = 0;
  int overflow = 0;
  while ((c = rm__jp_peek(p)) >= '0' && c <= '9') {
    if (!overflow) {
      v = v * 10 + (c - '0');
      if (v > RM__JP_MAX_INT) overflow = 1;
    }
    p->pos++;
  }
  if (overflow) return rm__jp_fail(p, start, "integer out of range (magnitude above 2^53-1)");
  *out = neg ? -v : v;
  return 0;
}

static void free_json(void *v) { json_decref(v); }

static int is_digit(int c) { return c >= '0' && c <= '9'; }

int rm__jp_lex_number(struct rm__jp_parser *p, json_t **out) {
  size_t start = p->pos;
  int is_int = 1;
  if (rm__jp_peek(p) == '-') p->pos++;
  if (!is_digit(rm__jp_peek(p))) return rm__jp_fail(p, p->pos, "expected a digit");
  if (rm__jp_peek(p) == '0') {
    p->pos++;
    if (is_digit(rm__jp_peek(p))) return rm__jp_fail(p, start, "number with a leading zero");
  } else {
    while (is_digit(rm__jp_peek(p))) p->pos++;
  }
  if (rm__jp_peek(p) == '.') {
    p->pos++;
    is_int = 0;
    if (!is_digit(rm__jp_peek(p))) return rm__jp_fail(p, p->pos, "expected a digit after '.'");
    while (is_digit(rm__jp_peek(p))) p->pos++;
  }
  if (rm__jp_peek(p) == 'e' || rm__jp_peek(p) == 'E') {
    p->pos++;
    is_int = 0;
    if (rm__jp_peek(p) == '+' || rm__jp_peek(p) == '-') p->pos++;
    if (!is_digit(rm__jp_peek(p))) return rm__jp_fail(p, p->pos, "expected a digit in exponent");
    while (is_digit(rm__jp_peek(p))) p->pos++;
  }
  /* The literal is valid JSON, so jansson converts it (independently of
   * the C locale). An integer too large for json_int_t becomes a real. */
  json_t *v = json_loadb(p->src + start, p->pos - start, JSON_DECODE_ANY, NULL);
  if (!v && is_int) {
    rm_buf b = RM_BUF_INIT;
    if (rm_buf_append(&b, p->src + start, p->pos - start) || rm_buf_puts(&b, "e0")) {
      rm_buf_free(&b);
      return rm__jp_oom(p);
    }
    v = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    rm_buf_free(&b);
  }
  if (!v) return rm__jp_fail(p, start, "number out of range");
  if (rm__jp_defer(p->arena, free_json, v)) return rm__jp_oom(p);
  *out = v;
  return 0;
}

/* name-first: ALPHA / "_" / %x80-D7FF / %xE000-10FFFF; name-char adds
 * DIGIT. Returns the length of the character at pos, 0 if it is not one. */
static size_t name_char(const struct rm__jp_parser *p, size_t pos, int first) {
  if (pos >= p->len) return 0;
  unsigned char c = (unsigned char)p->src[pos];
  if (c < 0x80) {
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
             (!first && c >= '0' && c <= '9');
    return ok ? 1 : 0;
  }
  uint32_t cp;
  return rm__jp_utf8_decode(p->src + pos, p->len - pos, &cp);
}

int rm__jp_lex_member_name(struct rm__jp_parser *p, const char **s, size_t *len) {
  size_t start = p->pos, k = name_char(p, p->pos, 1);
  if (!k) {
    if (rm__jp_peek(p) >= 0x80) return rm__jp_fail(p, p->pos, "invalid UTF-8");
    return rm__jp_fail(p, p->pos, "expected a member name or '*'");
  }
  do p->pos += k;
  while ((k = name_char(p, p->pos, 0)) > 0);
  *s = p->src + start;
  *len = p->pos - start;
  return 0;
}
