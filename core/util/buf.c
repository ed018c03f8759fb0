#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

int rm_buf_reserve(rm_buf *b, size_t n) {
  if (b->len + n + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + n + 1) cap *= 2;
  char *p = realloc(b->data, cap);
  if (!p) return RM_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int rm_buf_append(rm_buf *b, const void *p, size_t n) {
  if (rm_buf_reserve(b, n)) return RM_ENOMEM;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int rm_buf_puts(rm_buf *b, const char *s) { return rm_buf_append(b, s, strlen(s)); }

int rm_buf_putc(rm_buf *b, char c) { return rm_buf_append(b, &c, 1); }

int rm_buf_vprintf(rm_buf *b, const char *fmt, va_list ap) {
  va_list cp;
  va_copy(cp, ap);
  int n = vsnprintf(NULL, 0, fmt, cp);
  va_end(cp);
  if (n < 0) return RM_EINVAL;
  if (rm_buf_reserve(b, (size_t)n)) return RM_ENOMEM;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int rm_buf_printf(rm_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = rm_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

char *rm_buf_steal(rm_buf *b) {
  if (!b->data && rm_buf_reserve(b, 0)) return NULL;
  if (b->len == 0) b->data[0] = '\0';
  char *p = b->data;
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}

void rm_buf_reset(rm_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

void rm_buf_free(rm_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
