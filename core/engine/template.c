/* Templates: splitting strings into text and "{{ expr }}" placeholders,
 * parsing expressions, and rendering or scanning JSON values. */
#include "engine/template.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"
#include "util/json_str.h"
#include "util/iso_time.h"

enum helper {
  H_INPUTS,
  H_VARS,
  H_SECRETS,
  H_UUID,
  H_NOW,
  H_NOW_UNIX,
  H_NOW_UNIX_MS,
  H_IDEMPOTENCY_KEY,
  H_RUN_ID,
  H_TASK,
  H_ATTEMPT,
};

/* Root names, in the order of enum helper. */
static const char *const helpers[] = {"inputs", "vars",     "secrets",     "uuid",
                                      "now",    "now_unix", "now_unix_ms", "idempotency_key",
                                      "run_id", "task",     "attempt"};

#define KNOWN_HELPERS                                                                              \
  "inputs.NAME, vars.NAME, secrets.NAME, uuid, now, now_unix, now_unix_ms, "                       \
  "idempotency_key, run_id, task, attempt"

/* Namespace of idempotency keys: they are name-based UUIDs (version 5) of
 * "<run id>\0<task>" in this namespace, so every attempt of one task in one
 * run gets the same key and nothing else does. */
static const unsigned char idempotency_ns[16] = {0x2c, 0x87, 0x16, 0x68, 0xbc, 0x9a, 0x43, 0x98,
                                                 0x8e, 0x20, 0x28, 0xc5, 0xe9, 0x49, 0x9b, 0x07};

/* A parsed expression. All pointers are into the template string. */
typedef struct expr {
  enum helper h;
  const char *text; /* the trimmed expression */
  size_t len;
  const char *name; /* inputs/vars/secrets: NAME */
  size_t name_len;
  size_t rest; /* offset in text of the first .key / [N] step */
} expr;

typedef struct step {
  size_t start; /* offset of the step in the expression */
  int is_index;
  size_t index;
  const char *key;
  size_t key_len;
} step;

enum piece_kind { P_TEXT, P_EXPR, P_UNTERMINATED };

/* A run of literal text, a placeholder's trimmed expression, or an
 * unterminated placeholder (from its "{{" to the end of the string). */
typedef struct piece {
  enum piece_kind kind;
  const char *p;
  size_t n;
} piece;

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int is_ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

static int is_name_char(char c) { return is_ident_char(c) || c == '-'; }

static int is_key_char(char c) {
  return (unsigned char)c > ' ' && c != 0x7f && !strchr(".[]{}'\"", c);
}

static int starts_placeholder(const char *s, size_t len, size_t i) {
  return i + 1 < len && s[i] == '{' && s[i + 1] == '{';
}

static int starts_escape(const char *s, size_t len, size_t i) {
  return s[i] == '\\' && starts_placeholder(s, len, i + 1);
}

/* Splits s into pieces: call with *pos = 0 until it returns 0. */
static int next_piece(const char *s, size_t len, size_t *pos, piece *out) {
  size_t i = *pos;
  if (i >= len) return 0;
  if (starts_escape(s, len, i)) {
    *out = (piece){P_TEXT, s + i + 1, 2};
    *pos = i + 3;
    return 1;
  }
  if (starts_placeholder(s, len, i)) {
    size_t j = i + 2;
    while (j + 1 < len && !(s[j] == '}' && s[j + 1] == '}')) j++;
    if (j + 1 >= len) {
      *out = (piece){P_UNTERMINATED, s + i, len - i};
      *pos = len;
      return 1;
    }
    size_t a = i + 2, b = j;
    while (a < b && is_space(s[a])) a++;
    while (b > a && is_space(s[b - 1])) b--;
    *out = (piece){P_EXPR, s + a, b - a};
    *pos = j + 2;
    return 1;
  }
  size_t j = i + 1;
  while (j < len && !starts_placeholder(s, len, j) && !starts_escape(s, len, j)) j++;
  *out = (piece){P_TEXT, s + i, j - i};
  *pos = j;
  return 1;
}

static int why_set(rm_buf *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int why_set(rm_buf *why, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  rm_buf_reset(why);
  rm_buf_vprintf(why, fmt, ap);
  va_end(ap);
  return -1;
}

/* Parses the step at *pos of an expression. 1 with *st filled, 0 at the
 * end, -1 with the reason in why. */
static int next_step(const char *s, size_t n, size_t *pos, step *st, rm_buf *why) {
  size_t i = *pos;
  if (i >= n) return 0;
  memset(st, 0, sizeof *st);
  st->start = i;
  if (s[i] == '.') {
    size_t j = i + 1;
    while (j < n && is_key_char(s[j])) j++;
    if (j == i + 1) return why_set(why, "expected a key after '.' at offset %zu", i);
    st->key = s + i + 1;
    st->key_len = j - i - 1;
    *pos = j;
    return 1;
  }
  if (s[i] == '[' && i + 1 < n && (s[i + 1] == '"' || s[i + 1] == '\'')) {
    const char *close = memchr(s + i + 2, s[i + 1], n - i - 2);
    if (!close || (size_t)(close - s) + 1 >= n || close[1] != ']')
      return why_set(why, "unterminated quoted key at offset %zu", i);
    st->key = s + i + 2;
    st->key_len = (size_t)(close - st->key);
    *pos = (size_t)(close - s) + 2;
    return 1;
  }
  if (s[i] == '[') {
    size_t j = i + 1, index = 0;
    while (j < n && isdigit((unsigned char)s[j]) && j - i <= 9)
      index = index * 10 + (size_t)(s[j++] - '0');
    if (j == i + 1 || j >= n || s[j] != ']')
      return why_set(why,
                     "expected an index (at most 9 digits) or a quoted key in [] at offset %zu", i);
    st->is_index = 1;
    st->index = index;
    *pos = j + 1;
    return 1;
  }
  return why_set(why, "unexpected '%c' at offset %zu", s[i], i);
}

/* Parses a trimmed expression. 0, or -1 with the reason in why. */
static int parse_expr(const char *s, size_t n, expr *e, rm_buf *why) {
  memset(e, 0, sizeof *e);
  e->text = s;
  e->len = n;
  if (n == 0) return why_set(why, "empty placeholder");
  size_t i = 0;
  while (i < n && is_ident_char(s[i])) i++;
  if (i == 0)
    return why_set(why, "unexpected '%c' at offset 0 (expected one of: " KNOWN_HELPERS ")", s[0]);
  size_t k = 0, nh = sizeof helpers / sizeof helpers[0];
  while (k < nh && !(strlen(helpers[k]) == i && memcmp(helpers[k], s, i) == 0)) k++;
  if (k == nh) return why_set(why, "unknown helper '%.*s' (known: " KNOWN_HELPERS ")", (int)i, s);
  e->h = (enum helper)k;
  if (e->h > H_SECRETS) {
    if (i < n)
      return why_set(why, "unexpected '%.*s' after '%.*s'", (int)(n - i), s + i, (int)i, s);
    return 0;
  }
  if (i == n || s[i] != '.')
    return why_set(why, "'%.*s' needs a name: {{%.*s.NAME}}", (int)i, s, (int)i, s);
  size_t start = ++i;
  while (i < n && (is_name_char(s[i]) || (e->h == H_SECRETS && s[i] == '.'))) i++;
  if (i == start) return why_set(why, "expected a name after '%.*s'", (int)start, s);
  e->name = s + start;
  e->name_len = i - start;
  e->rest = i;
  if (e->h == H_SECRETS && i < n)
    return why_set(why, "a secret has no fields: unexpected '%.*s'", (int)(n - i), s + i);
  size_t pos = i;
  step st;
  int rc;
  do rc = next_step(s, n, &pos, &st, why);
  while (rc > 0);
  return rc;
}

/* Appends the placeholder as the user wrote it, shortened when long. */
static void show_piece(rm_buf *b, const piece *pc) {
  if (pc->kind == P_EXPR) {
    rm_buf_printf(b, "{{%.*s}}", (int)pc->n, pc->p);
    return;
  }
  if (pc->n <= 40)
    rm_buf_printf(b, "%.*s", (int)pc->n, pc->p);
  else
    rm_buf_printf(b, "%.*s...", 37, pc->p);
}

static void fmt_real(double d, char *out, size_t n) {
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(out, n, "%.*g", prec, d);
    if (strtod(out, NULL) == d) return;
  }
}

static int append_scalar(rm_buf *b, const json_t *v) {
  char num[40];
  switch (json_typeof(v)) {
  case JSON_INTEGER: return rm_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
  case JSON_REAL: fmt_real(json_real_value(v), num, sizeof num); return rm_buf_puts(b, num);
  case JSON_TRUE: return rm_buf_puts(b, "true");
  case JSON_FALSE: return rm_buf_puts(b, "false");
  default: return rm_buf_puts(b, "null");
  }
}

/* Compact JSON, with numbers written like text interpolation writes them. */
static int append_json(rm_buf *b, const json_t *v) {
  json_t *m = (json_t *)v; /* iteration API is not const-qualified */
  const char *key;
  size_t klen, i;
  json_t *child;
  int rc = 0, first = 1;
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    rc = rm_buf_putc(b, '{');
    json_object_keylen_foreach(m, key, klen, child) {
      if (!first && !rc) rc = rm_buf_putc(b, ',');
      first = 0;
      if (!rc) rc = rm_json_strn_append(b, key, klen);
      if (!rc) rc = rm_buf_putc(b, ':');
      if (!rc) rc = append_json(b, child);
    }
    return rc ? rc : rm_buf_putc(b, '}');
  case JSON_ARRAY:
    rc = rm_buf_putc(b, '[');
    json_array_foreach(m, i, child) {
      if (i && !rc) rc = rm_buf_putc(b, ',');
      if (!rc) rc = append_json(b, child);
    }
    return rc ? rc : rm_buf_putc(b, ']');
  case JSON_STRING: return rm_json_strn_append(b, json_string_value(v), json_string_length(v));
  default: return append_scalar(b, v);
  }
}

/* The text form of a value inside a longer string. */
static int append_text(rm_buf *b, const json_t *v) {
  if (json_is_string(v)) return rm_buf_append(b, json_string_value(v), json_string_length(v));
  if (json_is_object(v) || json_is_array(v)) return append_json(b, v);
  return append_scalar(b, v);
}


static int idempotency_key(const char *run_id, const char *task, char out[37]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  int ok = m && EVP_DigestInit_ex(m, EVP_sha1(), NULL) &&
           EVP_DigestUpdate(m, idempotency_ns, sizeof idempotency_ns) &&
           EVP_DigestUpdate(m, run_id, strlen(run_id) + 1) &&
           EVP_DigestUpdate(m, task, strlen(task)) && EVP_DigestFinal_ex(m, md, &mdlen);
  EVP_MD_CTX_free(m);
  if (!ok || mdlen < 16) return RM_ENOMEM;
  md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
  md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
  rm_uuid_format(md, out);
  return 0;
}

/* State of one render: the location of the string being rendered and
 * where the first error goes. */
typedef struct rctx {
  const rm_template_ctx *c;
  rm_buf loc;
  char *err;
  size_t errlen;
  int failed;
} rctx;

static void fail(rctx *r, const piece *pc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(rctx *r, const piece *pc, const char *fmt, ...) {
  if (r->failed) return;
  r->failed = 1;
  if (!r->err || !r->errlen) return;
  rm_buf m = RM_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  if (r->loc.len) rm_buf_printf(&m, "%s: ", r->loc.data);
  if (pc) {
    show_piece(&m, pc);
    rm_buf_puts(&m, ": ");
  }
  rm_buf_vprintf(&m, fmt, ap);
  va_end(ap);
  snprintf(r->err, r->errlen, "%s", m.data ? m.data : "out of memory");
  rm_buf_free(&m);
}

/* inputs.NAME... / vars.NAME...: a copy of the value (caller decrefs). */
static json_t *lookup(rctx *r, const piece *pc, const expr *e) {
  const json_t *root = e->h == H_INPUTS ? r->c->inputs : r->c->vars;
  const json_t *v = json_is_object(root) ? json_object_getn(root, e->name, e->name_len) : NULL;
  if (!v) {
    fail(r, pc, "no %s '%.*s'", e->h == H_INPUTS ? "input" : "variable", (int)e->name_len, e->name);
    return NULL;
  }
  rm_buf why = RM_BUF_INIT;
  size_t pos = e->rest;
  step st;
  while (v && next_step(e->text, e->len, &pos, &st, &why) > 0) {
    int at = (int)st.start;
    if (st.is_index && !json_is_array(v))
      fail(r, pc, "%.*s is not an array", at, e->text);
    else if (st.is_index && st.index >= json_array_size(v))
      fail(r, pc, "%.*s has no index %zu (length %zu)", at, e->text, st.index, json_array_size(v));
    else if (!st.is_index && !json_is_object(v))
      fail(r, pc, "%.*s is not an object", at, e->text);
    else if (!st.is_index && !json_object_getn(v, st.key, st.key_len))
      fail(r, pc, "%.*s has no key '%.*s'", at, e->text, (int)st.key_len, st.key);
    v = r->failed     ? NULL
        : st.is_index ? json_array_get(v, st.index)
                      : json_object_getn(v, st.key, st.key_len);
  }
  rm_buf_free(&why);
  if (!v) return NULL;
  json_t *copy = json_deep_copy(v);
  if (!copy) fail(r, pc, "out of memory");
  return copy;
}

static json_t *secret(rctx *r, const piece *pc, const expr *e) {
  char *name = strndup(e->name, e->name_len);
  char *tok = name && r->c->secret_token ? r->c->secret_token(r->c->ud, name) : NULL;
  json_t *v = tok ? json_string(tok) : NULL;
  if (!v) fail(r, pc, "no secret '%.*s'", (int)e->name_len, e->name);
  free(tok);
  free(name);
  return v;
}

static json_t *string_or_fail(rctx *r, const piece *pc, const char *s, const char *what) {
  if (!s) {
    fail(r, pc, "no %s is known here", what);
    return NULL;
  }
  json_t *v = json_string(s);
  if (!v) fail(r, pc, "%s is not valid UTF-8", what);
  return v;
}

/* The value of one placeholder as a new reference, or NULL after fail(). */
static json_t *eval(rctx *r, const piece *pc, const expr *e) {
  char id[37], stamp[40];
  struct timespec ts;
  json_t *v = NULL;
  switch (e->h) {
  case H_INPUTS:
  case H_VARS: return lookup(r, pc, e);
  case H_SECRETS: return secret(r, pc, e);
  case H_UUID:
    if (rm_uuid_v4(id)) {
      fail(r, pc, "no random bytes available");
      return NULL;
    }
    v = json_string(id);
    break;
  case H_NOW:
  case H_NOW_UNIX:
  case H_NOW_UNIX_MS:
    clock_gettime(CLOCK_REALTIME, &ts);
    if (e->h == H_NOW_UNIX) {
      v = json_integer((json_int_t)ts.tv_sec);
    } else if (e->h == H_NOW_UNIX_MS) {
      v = json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    } else {
      rm_iso_now(stamp);
      v = json_string(stamp);
    }
    break;
  case H_IDEMPOTENCY_KEY:
    if (!r->c->run_id || !r->c->task) {
      fail(r, pc, "needs a run id and a task");
      return NULL;
    }
    if (idempotency_key(r->c->run_id, r->c->task, id)) {
      fail(r, pc, "could not compute the digest");
      return NULL;
    }
    v = json_string(id);
    break;
  case H_RUN_ID: return string_or_fail(r, pc, r->c->run_id, "run id");
  case H_TASK: return string_or_fail(r, pc, r->c->task, "task name");
  case H_ATTEMPT: v = json_integer(r->c->attempt); break;
  }
  if (!v) fail(r, pc, "out of memory");
  return v;
}

static json_t *eval_piece(rctx *r, const piece *pc) {
  if (pc->kind == P_UNTERMINATED) {
    fail(r, pc, "unterminated placeholder (no closing '}}')");
    return NULL;
  }
  rm_buf why = RM_BUF_INIT;
  expr e;
  json_t *v = NULL;
  if (parse_expr(pc->p, pc->n, &e, &why))
    fail(r, pc, "%s", why.data ? why.data : "out of memory");
  else
    v = eval(r, pc, &e);
  rm_buf_free(&why);
  return v;
}

static json_t *render_string(rctx *r, const char *s, size_t len) {
  if (!memmem(s, len, "{{", 2)) return json_stringn(s, len);
  size_t pos = 0;
  piece pc;
  next_piece(s, len, &pos, &pc);
  if (pc.kind == P_EXPR && pos == len && s[0] == '{') return eval_piece(r, &pc);
  rm_buf out = RM_BUF_INIT;
  int rc = 0;
  pos = 0;
  while (!rc && !r->failed && next_piece(s, len, &pos, &pc)) {
    if (pc.kind == P_TEXT) {
      rc = rm_buf_append(&out, pc.p, pc.n);
      continue;
    }
    json_t *v = eval_piece(r, &pc);
    if (v) rc = append_text(&out, v);
    json_decref(v);
  }
  json_t *res = NULL;
  if (rc)
    fail(r, NULL, "out of memory");
  else if (!r->failed && !(res = json_stringn(out.data ? out.data : "", out.len)))
    fail(r, NULL, "the rendered string is not valid UTF-8");
  rm_buf_free(&out);
  return res;
}

/* Appends ".key" or "[i]" (key NULL) to a location; returns the length to
 * restore, or (size_t)-1 when out of memory. */
static size_t loc_push(rm_buf *loc, const char *key, size_t klen, size_t i) {
  size_t mark = loc->len;
  int rc;
  if (key) {
    rc = loc->len ? rm_buf_putc(loc, '.') : 0;
    if (!rc) rc = rm_buf_append(loc, key, klen);
  } else {
    rc = rm_buf_printf(loc, "[%zu]", i);
  }
  return rc ? (size_t)-1 : mark;
}

static void loc_pop(rm_buf *loc, size_t mark) {
  loc->len = mark;
  if (loc->data) loc->data[mark] = '\0';
}

static json_t *render_value(rctx *r, const json_t *v) {
  json_t *m = (json_t *)v, *child, *out = NULL, *sub;
  const char *key;
  size_t klen, i, mark;
  switch (json_typeof(v)) {
  case JSON_STRING: return render_string(r, json_string_value(v), json_string_length(v));
  case JSON_OBJECT:
    out = json_object();
    json_object_keylen_foreach(m, key, klen, child) {
      if (!out || (mark = loc_push(&r->loc, key, klen, 0)) == (size_t)-1) break;
      sub = render_value(r, child);
      loc_pop(&r->loc, mark);
      if (!sub || json_object_setn_new_nocheck(out, key, klen, sub)) break;
    }
    break;
  case JSON_ARRAY:
    out = json_array();
    json_array_foreach(m, i, child) {
      if (!out || (mark = loc_push(&r->loc, NULL, 0, i)) == (size_t)-1) break;
      sub = render_value(r, child);
      loc_pop(&r->loc, mark);
      if (!sub || json_array_append_new(out, sub)) break;
    }
    break;
  default:
    if (!(out = json_deep_copy(v))) fail(r, NULL, "out of memory");
    return out;
  }
  if (!r->failed && (!out || json_object_size(out) + json_array_size(out) !=
                                 json_object_size(v) + json_array_size(v)))
    fail(r, NULL, "out of memory");
  if (r->failed) {
    json_decref(out);
    return NULL;
  }
  return out;
}

json_t *rm_template_render(const json_t *v, const char *path, const rm_template_ctx *c, char *err,
                           size_t errlen) {
  const rm_template_ctx none = {0};
  rctx r = {c ? c : &none, RM_BUF_INIT, err, errlen, 0};
  if (err && errlen) err[0] = '\0';
  if (rm_buf_puts(&r.loc, path ? path : "")) {
    fail(&r, NULL, "out of memory");
    return NULL;
  }
  json_t *out = v ? render_value(&r, v) : NULL;
  if (!v) fail(&r, NULL, "nothing to render");
  rm_buf_free(&r.loc);
  return out;
}

typedef struct sctx {
  rm_template_ref_cb cb;
  void *ud;
  rm_buf loc;
  rm_buf expr;
  rm_buf why;
} sctx;

static int scan_string(sctx *s, const char *str, size_t len) {
  size_t pos = 0;
  piece pc;
  expr e;
  while (next_piece(str, len, &pos, &pc)) {
    if (pc.kind == P_TEXT) continue;
    rm_buf_reset(&s->expr);
    int bad = pc.kind == P_UNTERMINATED
                  ? why_set(&s->why, "unterminated placeholder (no closing '}}')")
                  : parse_expr(pc.p, pc.n, &e, &s->why);
    int rc;
    if (bad) {
      show_piece(&s->expr, &pc);
      rm_buf_printf(&s->expr, ": %s", s->why.data ? s->why.data : "");
      if (!s->expr.data || !s->why.data) return RM_ENOMEM;
      rc = s->cb(s->ud, s->loc.data, NULL, s->expr.data);
    } else {
      if (rm_buf_append(&s->expr, pc.p, pc.n)) return RM_ENOMEM;
      rc = s->cb(s->ud, s->loc.data, s->expr.data, NULL);
    }
    if (rc) return rc;
  }
  return 0;
}

static int scan_value(sctx *s, const json_t *v) {
  json_t *m = (json_t *)v, *child;
  const char *key;
  size_t klen, i, mark;
  int rc = 0;
  if (json_is_string(v)) return scan_string(s, json_string_value(v), json_string_length(v));
  if (json_is_object(v)) {
    json_object_keylen_foreach(m, key, klen, child) {
      if ((mark = loc_push(&s->loc, key, klen, 0)) == (size_t)-1) return RM_ENOMEM;
      rc = scan_value(s, child);
      loc_pop(&s->loc, mark);
      if (rc) return rc;
    }
  } else if (json_is_array(v)) {
    json_array_foreach(m, i, child) {
      if ((mark = loc_push(&s->loc, NULL, 0, i)) == (size_t)-1) return RM_ENOMEM;
      rc = scan_value(s, child);
      loc_pop(&s->loc, mark);
      if (rc) return rc;
    }
  }
  return 0;
}

int rm_template_scan(const json_t *v, const char *path, rm_template_ref_cb cb, void *ud) {
  sctx s = {cb, ud, RM_BUF_INIT, RM_BUF_INIT, RM_BUF_INIT};
  int rc = rm_buf_puts(&s.loc, path ? path : "");
  if (!rc && v) rc = scan_value(&s, v);
  rm_buf_free(&s.loc);
  rm_buf_free(&s.expr);
  rm_buf_free(&s.why);
  return rc;
}
