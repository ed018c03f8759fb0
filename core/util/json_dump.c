#include "util/json_dump.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* jansson writes values nested this deep; deeper means a cycle. */
#define DEPTH_MAX 2048

/* One byte; the common case without a call. */
static inline int put_byte(rm_buf *b, char c) {
  if (b->len + 2 > b->cap) return rm_buf_putc(b, c);
  b->data[b->len++] = c;
  b->data[b->len] = '\0';
  return 0;
}

static int put_string(rm_buf *b, const char *s, size_t n) {
  /* the worst case, every byte as \u00XX, reserved once */
  if (rm_buf_reserve(b, n * 6 + 2)) return RM_ENOMEM;
  char *o = b->data + b->len;
  *o++ = '"';
  const unsigned char *p = (const unsigned char *)s, *end = p + n;
  while (p < end) {
    const unsigned char *run = p;
    while (p < end && *p >= 0x20 && *p != '"' && *p != '\\') p++;
    memcpy(o, run, (size_t)(p - run));
    o += p - run;
    if (p == end) break;
    unsigned char c = *p++;
    *o++ = '\\';
    switch (c) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '\b': *o++ = 'b'; break;
    case '\f': *o++ = 'f'; break;
    case '\n': *o++ = 'n'; break;
    case '\r': *o++ = 'r'; break;
    case '\t': *o++ = 't'; break;
    default:
      *o++ = 'u';
      *o++ = '0';
      *o++ = '0';
      *o++ = "0123456789ABCDEF"[c >> 4];
      *o++ = "0123456789ABCDEF"[c & 15];
    }
  }
  *o++ = '"';
  b->len = (size_t)(o - b->data);
  b->data[b->len] = '\0';
  return 0;
}

static int put_integer(rm_buf *b, json_int_t v) {
  char tmp[24], *e = tmp + sizeof tmp, *p = e;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--p = '-';
  return rm_buf_append(b, p, (size_t)(e - p));
}

/* As jansson's jsonp_dtostr: "%.<p>g", then ".0" when it would read back
 * as an integer, and an exponent without '+' or leading zeros. */
static int put_real(rm_buf *b, double v, int precision) {
  char tmp[48];
  int n = snprintf(tmp, sizeof tmp - 3, "%.*g", precision, v);
  if (n < 0 || (size_t)n >= sizeof tmp - 3) return RM_EINVAL;
  char *e = strchr(tmp, 'e');
  if (!e && !strchr(tmp, '.')) {
    memcpy(tmp + n, ".0", 3);
    n += 2;
  }
  if (e) {
    char *start = e + 1, *end = start + 1;
    if (*start == '-') start++;
    while (*end == '0') end++;
    if (end != start) {
      memmove(start, end, (size_t)(tmp + n - end) + 1);
      n -= (int)(end - start);
    }
  }
  return rm_buf_append(b, tmp, (size_t)n);
}

static int dump(rm_buf *b, const json_t *v, int precision, int depth) {
  if (depth > DEPTH_MAX) return RM_EINVAL;
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    if (put_byte(b, '{')) return RM_ENOMEM;
    const char *k;
    const json_t *m;
    bool first = true;
    int rc;
    json_object_foreach((json_t *)v, k, m) {
      if (!first && put_byte(b, ',')) return RM_ENOMEM;
      first = false;
      if (put_string(b, k, strlen(k)) || put_byte(b, ':')) return RM_ENOMEM;
      if ((rc = dump(b, m, precision, depth + 1)) != 0) return rc;
    }
    return put_byte(b, '}');
  }
  case JSON_ARRAY: {
    if (put_byte(b, '[')) return RM_ENOMEM;
    size_t n = json_array_size(v);
    for (size_t i = 0; i < n; i++) {
      int rc;
      if (i && put_byte(b, ',')) return RM_ENOMEM;
      if ((rc = dump(b, json_array_get(v, i), precision, depth + 1)) != 0) return rc;
    }
    return put_byte(b, ']');
  }
  case JSON_STRING: return put_string(b, json_string_value(v), json_string_length(v));
  case JSON_INTEGER: return put_integer(b, json_integer_value(v));
  case JSON_REAL: return put_real(b, json_real_value(v), precision);
  case JSON_TRUE: return rm_buf_append(b, "true", 4);
  case JSON_FALSE: return rm_buf_append(b, "false", 5);
  case JSON_NULL: return rm_buf_append(b, "null", 4);
  }
  return RM_EINVAL;
}

int rm_json_dump(rm_buf *b, const json_t *v, int precision) {
  if (!v) return RM_EINVAL;
  return dump(b, v, precision < 1 || precision > 17 ? 17 : precision, 0);
}

char *rm_json_dumps(const json_t *v, int precision) {
  rm_buf b = RM_BUF_INIT;
  if (rm_buf_reserve(&b, 256) || rm_json_dump(&b, v, precision) != 0) {
    rm_buf_free(&b);
    return NULL;
  }
  return rm_buf_steal(&b);
}
