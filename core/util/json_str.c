#include "util/json_str.h"

#include <stdio.h>
#include <string.h>

#include "util/text.h"

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
      size_t len = rm_utf8_seq_len(p + i, n - i);
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
