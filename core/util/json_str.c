#include "util/json_str.h"

#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c >= 0xE0 && c <= 0xEF) len = 3;
  else if (c >= 0xF0 && c <= 0xF4) len = 4;
  else return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  if (c == 0xE0 && s[1] < 0xA0) return 0;               /* overlong */
  if (c == 0xED && s[1] >= 0xA0) return 0;              /* surrogate */
  if (c == 0xF0 && s[1] < 0x90) return 0;               /* overlong */
  if (c == 0xF4 && s[1] >= 0x90) return 0;              /* > U+10FFFF */
  return len;
}

int rm_json_strn_append(rm_buf *b, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  int rc = rm_buf_putc(b, '"');
  size_t i = 0;
  while (rc == 0 && i < n) {
    unsigned char c = p[i];
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      rc = rm_buf_append(b, esc, 2);
      i++;
    } else if (c < 0x20) {
      char esc[8];
      switch (c) {
        case '\n': rc = rm_buf_puts(b, "\\n"); break;
        case '\r': rc = rm_buf_puts(b, "\\r"); break;
        case '\t': rc = rm_buf_puts(b, "\\t"); break;
        default:
          snprintf(esc, sizeof esc, "\\u%04x", c);
          rc = rm_buf_puts(b, esc);
      }
      i++;
    } else {
      size_t len = utf8_len(p + i, n - i);
      if (len == 0) {
        rc = rm_buf_puts(b, "\xEF\xBF\xBD");
        i++;
      } else {
        rc = rm_buf_append(b, p + i, len);
        i += len;
      }
    }
  }
  if (rc == 0) rc = rm_buf_putc(b, '"');
  return rc;
}

int rm_json_str_append(rm_buf *b, const char *s) {
  return rm_json_strn_append(b, s, strlen(s));
}
