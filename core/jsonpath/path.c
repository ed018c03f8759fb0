/* Normalized paths (RFC 9535 2.7): "$" followed by one bracket per step,
 * names in single quotes with the minimal escaping the RFC prescribes
 * (\b \f \n \r \t \' \\ and \u00xx, lowercase, for other controls). */
#include <stdio.h>
#include <stdlib.h>

#include "jsonpath/internal.h"
#include "util/err.h"

/* The escape for byte c inside a quoted name, or NULL if c stands for
 * itself (every byte of a multi-byte character does). */
static const char *escape_for(unsigned char c, char tmp[8]) {
  static const char pairs[] = "\bb\ff\nn\rr\tt''\\\\";
  for (size_t i = 0; i + 1 < sizeof pairs; i += 2) {
    if ((unsigned char)pairs[i] == c) {
      snprintf(tmp, 8, "\\%c", pairs[i + 1]);
      return tmp;
    }
  }
  if (c >= 0x20) return NULL;
  snprintf(tmp, 8, "\\u%04x", c);
  return tmp;
}

static int render_name(rm_buf *out, const char *s, size_t len) {
  int rc = rm_buf_puts(out, "['");
  size_t run = 0; /* start of the pending unescaped bytes */
  for (size_t i = 0; i < len && !rc; i++) {
    char tmp[8];
    const char *esc = escape_for((unsigned char)s[i], tmp);
    if (!esc) continue;
    rc = rm_buf_append(out, s + run, i - run);
    if (!rc) rc = rm_buf_puts(out, esc);
    run = i + 1;
  }
  if (!rc) rc = rm_buf_append(out, s + run, len - run);
  if (!rc) rc = rm_buf_puts(out, "']");
  return rc;
}

int rm__jp_path_render(const struct rm__jp_path *p, rm_buf *out) {
  /* The chain runs leaf to root; render it root first without recursion. */
  size_t n = 0;
  for (const struct rm__jp_path *q = p; q; q = q->up) n++;
  const struct rm__jp_path **steps = malloc((n ? n : 1) * sizeof *steps);
  if (!steps) return RM_ENOMEM;
  size_t i = n;
  for (const struct rm__jp_path *q = p; q; q = q->up) steps[--i] = q;
  int rc = rm_buf_putc(out, '$');
  for (i = 0; i < n && !rc; i++) {
    if (steps[i]->key)
      rc = render_name(out, steps[i]->key, steps[i]->keylen);
    else
      rc = rm_buf_printf(out, "[%zu]", steps[i]->index);
  }
  free(steps);
  return rc;
}
