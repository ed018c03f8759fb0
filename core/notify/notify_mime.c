/* The e-mail message of a notification (RFC 5322, MIME): CRLF lines, a
 * subject folded at 78 columns or, when it is not plain ASCII, made of
 * RFC 2047 encoded words, and a UTF-8 text/plain body in quoted-printable
 * so it passes 7-bit relays unchanged. Header values come from settings
 * the API checked (addresses) or are stripped of control characters here
 * (the subject), so no value can add a header. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notify/notify_internal.h"
#include "util/err.h"
#include "util/text.h"

#define FOLD_AT 78
#define QP_LINE 76
#define WORD_BYTES 39 /* "=?UTF-8?B?" + 52 + "?=" after "Subject: ": 73 columns */
#define SUBJECT_MAX 900

int rm__notify_qp_append(rm_buf *b, const char *s, size_t n) {
  size_t col = 0;
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    unsigned char c = (unsigned char)s[i];
    bool crlf = c == '\r' && i + 1 < n && s[i + 1] == '\n';
    if (c == '\n' || crlf) {
      i += crlf;
      rc = rm_buf_puts(b, "\r\n");
      col = 0;
      continue;
    }
    /* a space or tab ending a line would be lost in transport: encode it */
    bool eol = i + 1 == n || s[i + 1] == '\n' || (s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n');
    char tok[4];
    size_t tl = 1;
    if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !eol)) tok[0] = (char)c;
    else tl = (size_t)snprintf(tok, sizeof tok, "=%02X", c);
    if (col + tl > QP_LINE - 1) { /* room for the soft break's "=" */
      rc = rm_buf_puts(b, "=\r\n");
      col = 0;
    }
    if (!rc) rc = rm_buf_append(b, tok, tl);
    col += tl;
  }
  return rc;
}

static bool plain_ascii(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s >= 0x80 || (s[0] == '=' && s[1] == '?')) return false;
  return true;
}

/* RFC 2047 "B" words of at most WORD_BYTES bytes each, cut between UTF-8
 * characters, one per line. */
static int encoded_words(rm_buf *b, const char *s) {
  size_t n = strlen(s);
  int rc = 0;
  for (size_t i = 0; i < n && !rc;) {
    size_t k = n - i < WORD_BYTES ? n - i : WORD_BYTES;
    while (k > 1 && i + k < n && ((unsigned char)s[i + k] & 0xC0) == 0x80) k--;
    char *w = rm_base64_encode(s + i, k, false);
    rc = w ? rm_buf_printf(b, "%s=?UTF-8?B?%s?=", i ? "\r\n " : "", w) : RM_ENOMEM;
    free(w);
    i += k;
  }
  return rc;
}

/* ASCII folded before a space that would pass column 78. */
static int folded(rm_buf *b, const char *s, size_t col) {
  int rc = 0;
  for (; *s && !rc; s++) {
    if (*s == ' ' && col > 1 && col + 1 + strcspn(s + 1, " ") > FOLD_AT) {
      rc = rm_buf_puts(b, "\r\n");
      col = 0;
    }
    if (!rc) rc = rm_buf_putc(b, *s);
    col++;
  }
  return rc;
}

int rm__notify_subject_append(rm_buf *b, const char *s) {
  char *cut = rm_notify_cut(s, SUBJECT_MAX);
  if (!cut) return RM_ENOMEM;
  for (char *p = cut; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
  int rc = rm_buf_puts(b, "Subject: ");
  if (!rc) rc = plain_ascii(cut) ? folded(b, cut, 9) : encoded_words(b, cut);
  if (!rc) rc = rm_buf_puts(b, "\r\n");
  free(cut);
  return rc;
}

static int date_append(rm_buf *b, time_t t) {
  static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  struct tm tm;
  gmtime_r(&t, &tm);
  return rm_buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday], tm.tm_mday,
                       months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int to_append(rm_buf *b, const char *const *to, size_t nto) {
  int rc = rm_buf_puts(b, "To: ");
  size_t col = 4;
  for (size_t i = 0; i < nto && !rc; i++) {
    size_t len = strlen(to[i]);
    if (i) {
      bool wrap = col + 2 + len + 1 > FOLD_AT; /* room for the next "," */
      rc = rm_buf_puts(b, wrap ? ",\r\n " : ", ");
      col = wrap ? 1 : col + 2;
    }
    if (!rc) rc = rm_buf_puts(b, to[i]);
    col += len;
  }
  return rc ? rc : rm_buf_puts(b, "\r\n");
}

char *rm__notify_mime_build(const rm__mime_msg *m, size_t *len) {
  rm_buf b = RM_BUF_INIT;
  int rc = date_append(&b, m->date);
  if (!rc) rc = rm_buf_printf(&b, "From: %s\r\n", m->from);
  if (!rc) rc = to_append(&b, m->to, m->nto);
  if (!rc) rc = rm__notify_subject_append(&b, m->subject);
  if (!rc)
    rc = rm_buf_printf(&b,
                       "Message-ID: %s\r\n"
                       "MIME-Version: 1.0\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Transfer-Encoding: quoted-printable\r\n"
                       "Auto-Submitted: auto-generated\r\n"
                       "X-Mailer: RestMon\r\n"
                       "\r\n",
                       m->message_id);
  size_t blen = strlen(m->body);
  if (!rc) rc = rm__notify_qp_append(&b, m->body, blen);
  if (!rc && (blen == 0 || m->body[blen - 1] != '\n')) rc = rm_buf_puts(&b, "\r\n");
  if (rc) {
    rm_buf_free(&b);
    return NULL;
  }
  if (len) *len = b.len;
  return rm_buf_steal(&b);
}
