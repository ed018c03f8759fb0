/* rm_buf: a growable byte buffer, always NUL-terminated after len bytes.
 * The caller owns the struct; rm_buf_free releases its storage. */
#ifndef RM_UTIL_BUF_H
#define RM_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct rm_buf {
  char *data; /* NULL until the first append */
  size_t len;
  size_t cap;
} rm_buf;

#define RM_BUF_INIT {NULL, 0, 0}

/* Make room for n more bytes. 0 or RM_ENOMEM. */
int rm_buf_reserve(rm_buf *b, size_t n);
int rm_buf_append(rm_buf *b, const void *p, size_t n);
int rm_buf_puts(rm_buf *b, const char *s);
int rm_buf_putc(rm_buf *b, char c);
int rm_buf_printf(rm_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int rm_buf_vprintf(rm_buf *b, const char *fmt, va_list ap);
/* Detach the storage: caller frees the returned string (never NULL on
 * success; an empty buffer gives ""). The buffer is left empty. */
char *rm_buf_steal(rm_buf *b);
void rm_buf_reset(rm_buf *b);
void rm_buf_free(rm_buf *b);

#endif
