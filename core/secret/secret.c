#include "secret/secret.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"

#define TOKEN_PREFIX "@@rmsecret-"
#define TOKEN_SUFFIX "@@"
#define MASK "***"

typedef struct secret {
  char *name;
  char *value;
  bool retired; /* removed: no longer injected or named, still masked */
} secret;

/* Retired values kept for masking, at most; the oldest goes first. */
#define MAX_RETIRED 256

/* One form of a secret value to mask when it appears in output. */
typedef struct pattern {
  char *text;
  size_t len;
} pattern;

struct rm_secrets {
  char nonce[17];
  secret *items;
  size_t n, cap;
  pattern *patterns; /* rebuilt when the set changes; longest first */
  size_t npatterns;
};

rm_secrets *rm_secrets_new(void) {
  rm_secrets *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  unsigned char rnd[8];
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
    free(s);
    return NULL;
  }
  for (int i = 0; i < 8; i++) snprintf(s->nonce + 2 * i, 3, "%02x", rnd[i]);
  return s;
}

static void free_patterns(rm_secrets *s) {
  for (size_t i = 0; i < s->npatterns; i++) free(s->patterns[i].text);
  free(s->patterns);
  s->patterns = NULL;
  s->npatterns = 0;
}

void rm_secrets_free(rm_secrets *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n; i++) {
    free(s->items[i].name);
    /* Values do not outlive the set in freed heap memory. */
    explicit_bzero(s->items[i].value, strlen(s->items[i].value));
    free(s->items[i].value);
  }
  free(s->items);
  free_patterns(s);
  free(s);
}

static int valid_name(const char *n) {
  if (!*n) return 0;
  for (const char *p = n; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-') return 0;
  return 1;
}

/* Base64 of data without padding (caller frees). */
static char *base64(const unsigned char *d, size_t n, bool url_safe) {
  char *out = rm_base64_encode(d, n, url_safe);
  if (out) {
    size_t k = strlen(out);
    while (k && out[k - 1] == '=') out[--k] = '\0';
  }
  return out;
}

static int url_unreserved(unsigned char c) {
  return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Percent-encoding; forms (the way servers echo them) may use lowercase
 * hex and '+' for a space. */
enum { URL_LOWER_HEX = 1, URL_PLUS_SPACE = 2 };

static int url_encode_as(rm_buf *b, const char *v, size_t n, int style) {
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    unsigned char c = (unsigned char)v[i];
    if (url_unreserved(c)) rc = rm_buf_putc(b, (char)c);
    else if (c == ' ' && (style & URL_PLUS_SPACE)) rc = rm_buf_putc(b, '+');
    else rc = rm_buf_printf(b, (style & URL_LOWER_HEX) ? "%%%02x" : "%%%02X", c);
  }
  return rc;
}

static int url_encode(rm_buf *b, const char *v, size_t n) { return url_encode_as(b, v, n, 0); }

static int add_pattern(rm_secrets *s, char *text, size_t min_len) {
  if (!text) return RM_ENOMEM;
  size_t len = strlen(text);
  if (len < min_len) {
    free(text);
    return 0;
  }
  for (size_t i = 0; i < s->npatterns; i++)
    if (s->patterns[i].len == len && memcmp(s->patterns[i].text, text, len) == 0) {
      free(text);
      return 0;
    }
  pattern *p = realloc(s->patterns, (s->npatterns + 1) * sizeof *p);
  if (!p) {
    free(text);
    return RM_ENOMEM;
  }
  s->patterns = p;
  s->patterns[s->npatterns++] = (pattern){text, len};
  return 0;
}

/* Base64 of the value as it would appear inside a longer encoded string
 * ("user:password" in Basic auth): encode it at each of the three byte
 * alignments and keep the characters that depend on the value alone. */
static int add_base64_forms(rm_secrets *s, const char *v, bool url_safe) {
  size_t n = strlen(v);
  int rc = add_pattern(s, base64((const unsigned char *)v, n, url_safe), 4);
  for (size_t shift = 1; rc == 0 && shift < 3; shift++) {
    unsigned char *buf = calloc(n + shift, 1);
    if (!buf) return RM_ENOMEM;
    memcpy(buf + shift, v, n);
    char *enc = base64(buf, n + shift, url_safe);
    free(buf);
    if (!enc) return RM_ENOMEM;
    /* The first 4 chars mix in the prefix bytes; the last 3 may mix in
     * whatever follows. The middle is the value's alone. */
    size_t elen = strlen(enc);
    if (elen > 7) {
      enc[elen - 3] = '\0';
      rc = add_pattern(s, strdup(enc + 4), 6);
    }
    free(enc);
  }
  return rc;
}

static int cmp_len_desc(const void *a, const void *b) {
  const pattern *x = a, *y = b;
  return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

static int rebuild_patterns(rm_secrets *s) {
  free_patterns(s);
  int rc = 0;
  for (size_t i = 0; i < s->n && rc == 0; i++) {
    const char *v = s->items[i].value;
    rc = add_pattern(s, strdup(v), 1);
    for (int style = 0; style < 4 && rc == 0; style++) {
      rm_buf enc = RM_BUF_INIT;
      if (url_encode_as(&enc, v, strlen(v), style) == 0) rc = add_pattern(s, rm_buf_steal(&enc), 1);
      rm_buf_free(&enc);
    }
    /* JSON-escaped forms, as they appear in a JSON body ('/' may be
     * escaped or not). */
    for (int slash = 0; slash < 2 && rc == 0; slash++) {
      rm_buf js = RM_BUF_INIT;
      for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\' || (slash && *p == '/')) rm_buf_putc(&js, '\\');
        rm_buf_putc(&js, *p);
      }
      if (js.len) rc = add_pattern(s, rm_buf_steal(&js), 1);
      rm_buf_free(&js);
    }
    if (rc == 0) rc = add_base64_forms(s, v, false);
    if (rc == 0) rc = add_base64_forms(s, v, true);
  }
  if (s->npatterns) qsort(s->patterns, s->npatterns, sizeof *s->patterns, cmp_len_desc);
  return rc;
}

int rm_secrets_set(rm_secrets *s, const char *name, const char *value, char *err, size_t errlen) {
  if (!valid_name(name)) {
    snprintf(err, errlen, "secret name '%s' is invalid (use letters, digits, '_', '.', '-')", name);
    return RM_EINVAL;
  }
  if (strlen(value) < 3) {
    snprintf(err, errlen,
             "secret '%s' is shorter than 3 characters: it could not be masked reliably", name);
    return RM_EINVAL;
  }
  char *lname = strdup(name);
  char *val = strdup(value);
  if (!lname || !val) {
    free(lname);
    free(val);
    return RM_ENOMEM;
  }
  for (char *p = lname; *p; p++) *p = (char)tolower((unsigned char)*p);
  for (size_t i = 0; i < s->n; i++)
    if (!s->items[i].retired && strcmp(s->items[i].name, lname) == 0) {
      free(lname);
      explicit_bzero(s->items[i].value, strlen(s->items[i].value));
      free(s->items[i].value);
      s->items[i].value = val;
      return rebuild_patterns(s);
    }
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 8;
    secret *items = realloc(s->items, cap * sizeof *items);
    if (!items) {
      free(lname);
      free(val);
      return RM_ENOMEM;
    }
    s->items = items;
    s->cap = cap;
  }
  s->items[s->n++] = (secret){lname, val, false};
  return rebuild_patterns(s);
}

static char *trim(char *p) {
  while (isspace((unsigned char)*p)) p++;
  char *e = p + strlen(p);
  while (e > p && isspace((unsigned char)e[-1])) *--e = '\0';
  return p;
}

int rm_secrets_load_file(rm_secrets *s, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return RM_EIO;
  }
  char *line = NULL;
  size_t cap = 0;
  int lineno = 0, rc = 0;
  while (rc == 0 && getline(&line, &cap, f) >= 0) {
    lineno++;
    char *p = trim(line);
    if (!*p || *p == '#') continue;
    if (strncmp(p, "export ", 7) == 0) p = trim(p + 7);
    char *eq = strchr(p, '=');
    if (!eq) {
      snprintf(err, errlen, "%s:%d: expected NAME=value", path, lineno);
      rc = RM_EPARSE;
      break;
    }
    *eq = '\0';
    char *name = trim(p), *val = trim(eq + 1);
    size_t vl = strlen(val);
    if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
      val[vl - 1] = '\0';
      val++;
    }
    char msg[256];
    rc = rm_secrets_set(s, name, val, msg, sizeof msg);
    if (rc) snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
  }
  if (line) explicit_bzero(line, cap);
  free(line);
  fclose(f);
  return rc;
}

size_t rm_secrets_count(const rm_secrets *s) {
  size_t n = 0;
  for (size_t i = 0; s && i < s->n; i++) n += !s->items[i].retired;
  return n;
}

json_t *rm_secrets_names(const rm_secrets *s) {
  json_t *a = json_array();
  for (size_t i = 0; s && a && i < s->n; i++)
    if (!s->items[i].retired) json_array_append_new(a, json_string(s->items[i].name));
  return a;
}

static const secret *find(const rm_secrets *s, const char *name, size_t n) {
  for (size_t i = 0; i < s->n; i++)
    if (!s->items[i].retired && strlen(s->items[i].name) == n && strncasecmp(s->items[i].name, name, n) == 0)
      return &s->items[i];
  return NULL;
}

static void drop_item(rm_secrets *s, size_t i) {
  free(s->items[i].name);
  explicit_bzero(s->items[i].value, strlen(s->items[i].value));
  free(s->items[i].value);
  memmove(&s->items[i], &s->items[i + 1], (s->n - i - 1) * sizeof *s->items);
  s->n--;
}

int rm_secrets_remove(rm_secrets *s, const char *name) {
  secret *sec = (secret *)find(s, name, strlen(name));
  if (!sec) return RM_ENOTFOUND;
  sec->retired = true;
  /* one retired copy of a value is enough to mask it: a value set and
   * retired again and again (the same secret re-applied) takes no room */
  size_t at = (size_t)(sec - s->items);
  for (size_t i = 0; i < s->n; i++)
    if (i != at && s->items[i].retired && strcmp(s->items[i].value, sec->value) == 0) {
      drop_item(s, at);
      break;
    }
  size_t retired = 0, oldest = s->n;
  for (size_t i = 0; i < s->n; i++)
    if (s->items[i].retired && retired++ == 0) oldest = i;
  if (retired > MAX_RETIRED) drop_item(s, oldest);
  return rebuild_patterns(s);
}

char *rm_secrets_token(const rm_secrets *s, const char *name) {
  const secret *sec = find(s, name, strlen(name));
  if (!sec) return NULL;
  rm_buf b = RM_BUF_INIT;
  rm_buf_printf(&b, TOKEN_PREFIX "%s-%s" TOKEN_SUFFIX, s->nonce, sec->name);
  return rm_buf_steal(&b);
}

/* Finds the next token at or after p; sets *sec and *tok_len. */
static const char *next_token(const rm_secrets *s, const char *p, const char *end,
                              const secret **sec, size_t *tok_len) {
  size_t plen = strlen(TOKEN_PREFIX);
  while (p < end) {
    const char *t = memmem(p, (size_t)(end - p), TOKEN_PREFIX, plen);
    if (!t) return NULL;
    const char *q = t + plen;
    if ((size_t)(end - q) > 17 && memcmp(q, s->nonce, 16) == 0 && q[16] == '-') {
      const char *name = q + 17;
      const char *stop = memmem(name, (size_t)(end - name), TOKEN_SUFFIX, 2);
      if (stop && (*sec = find(s, name, (size_t)(stop - name)))) {
        *tok_len = (size_t)(stop + 2 - t);
        return t;
      }
    }
    p = t + 1;
  }
  return NULL;
}

int rm_secrets_has_token(const rm_secrets *s, const char *str, size_t len) {
  const secret *sec;
  size_t tl;
  return s && s->n && next_token(s, str, str + len, &sec, &tl) != NULL;
}

/* Rewrites tokens: with their values (inject) or their template form. */
static char *replace_tokens(const rm_secrets *s, const char *str, size_t len, int inject,
                            enum rm_secret_encoding enc, size_t *outlen) {
  rm_buf b = RM_BUF_INIT;
  const char *p = str, *end = str + len;
  const secret *sec;
  size_t tl;
  int rc = rm_buf_reserve(&b, len);
  while (rc == 0 && s && s->n) {
    const char *t = next_token(s, p, end, &sec, &tl);
    if (!t) break;
    rc = rm_buf_append(&b, p, (size_t)(t - p));
    if (rc) break;
    if (!inject)
      rc = rm_buf_printf(&b, "{{secrets.%s}}", sec->name);
    else if (enc == RM_SECRET_URL)
      rc = url_encode(&b, sec->value, strlen(sec->value));
    else
      rc = rm_buf_puts(&b, sec->value);
    p = t + tl;
  }
  if (rc == 0) rc = rm_buf_append(&b, p, (size_t)(end - p));
  if (rc) {
    rm_buf_free(&b);
    return NULL;
  }
  if (outlen) *outlen = b.len;
  return rm_buf_steal(&b);
}

char *rm_secrets_inject(const rm_secrets *s, const char *str, size_t len,
                        enum rm_secret_encoding enc, size_t *outlen) {
  return replace_tokens(s, str, len, 1, enc, outlen);
}

char *rm_secrets_scrub(const rm_secrets *s, const char *str, size_t len, size_t *outlen) {
  size_t n = 0;
  char *out = replace_tokens(s, str, len, 0, RM_SECRET_RAW, &n);
  for (size_t i = 0; out && s && i < s->npatterns; i++) {
    const pattern *pat = &s->patterns[i];
    if (!memmem(out, n, pat->text, pat->len)) continue;
    rm_buf b = RM_BUF_INIT;
    const char *p = out, *end = out + n;
    const char *hit;
    int rc = 0;
    while (rc == 0 && (hit = memmem(p, (size_t)(end - p), pat->text, pat->len))) {
      rc = rm_buf_append(&b, p, (size_t)(hit - p));
      if (rc == 0) rc = rm_buf_puts(&b, MASK);
      p = hit + pat->len;
    }
    if (rc == 0) rc = rm_buf_append(&b, p, (size_t)(end - p));
    free(out);
    if (rc) {
      rm_buf_free(&b);
      return NULL;
    }
    n = b.len;
    out = rm_buf_steal(&b);
  }
  if (out && outlen) *outlen = n;
  return out;
}

static int scrub_string(const rm_secrets *s, json_t *v) {
  size_t n;
  char *clean = rm_secrets_scrub(s, json_string_value(v), json_string_length(v), &n);
  if (!clean) return RM_ENOMEM;
  int rc = json_string_setn_nocheck(v, clean, n) ? RM_ENOMEM : 0;
  free(clean);
  return rc;
}

int rm_secrets_scrub_json(const rm_secrets *s, json_t *v) {
  if (!s || !v || s->n == 0) return 0;
  int rc = 0;
  if (json_is_string(v)) return scrub_string(s, v);
  if (json_is_array(v)) {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if ((rc = rm_secrets_scrub_json(s, x))) return rc;
    return 0;
  }
  if (!json_is_object(v)) return 0;
  /* Keys may carry secrets too (a header named after one): rebuild the
   * object when a key changes. */
  const char *key;
  json_t *x;
  void *tmp;
  json_object_foreach_safe(v, tmp, key, x) {
    if ((rc = rm_secrets_scrub_json(s, x))) return rc;
    char *ck = rm_secrets_scrub(s, key, strlen(key), NULL);
    if (!ck) return RM_ENOMEM;
    if (strcmp(ck, key) != 0) {
      json_object_set(v, ck, x);
      json_object_del(v, key);
    }
    free(ck);
  }
  return 0;
}

char *rm_secrets_log_scrub(void *ud, const char *msg) {
  const rm_secrets *s = ud;
  if (!s || s->n == 0) return NULL;
  size_t n = strlen(msg);
  char *clean = rm_secrets_scrub(s, msg, n, NULL);
  if (clean && strcmp(clean, msg) == 0) {
    free(clean);
    return NULL;
  }
  return clean;
}
