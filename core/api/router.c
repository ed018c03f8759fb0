#include "api/router.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

void rm_api_router_init(rm_api_router *r) { memset(r, 0, sizeof *r); }

static void route_free(rm_api_route *rt) {
  if (!rt) return;
  for (size_t i = 0; i < rt->nseg; i++) free(rt->seg[i].text);
  free((char *)rt->method);
  free((char *)rt->pattern);
  free(rt);
}

void rm_api_router_free(rm_api_router *r) {
  for (size_t i = 0; i < r->n; i++) route_free(r->routes[i]);
  free(r->routes);
  memset(r, 0, sizeof *r);
}

static bool is_name(const char *s, size_t n) {
  if (n == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
    return false;
  for (size_t i = 1; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  }
  return true;
}

/* Literal segments may hold what a path segment holds unencoded (RFC 3986
 * pchar without '%'), so they compare byte for byte with raw request
 * segments. */
static bool is_literal(const char *s, size_t n) {
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c >= 0x7f || strchr("{}%?#/\"<>\\^`|", c)) return false;
  }
  return true;
}

/* Splits pattern into rt->seg. 0 or RM_EINVAL / RM_ENOMEM. */
static int parse_pattern(rm_api_route *rt, const char *pattern) {
  if (pattern[0] != '/') return RM_EINVAL;
  if (pattern[1] == '\0') return 0; /* "/" has no segments */
  const char *p = pattern + 1;
  for (;;) {
    const char *end = strchr(p, '/');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (rt->nseg == RM_API_MAX_SEGMENTS) return RM_EINVAL;
    struct rm__segment *sg = &rt->seg[rt->nseg];
    if (n >= 2 && p[0] == '{' && p[n - 1] == '}') {
      if (!is_name(p + 1, n - 2)) return RM_EINVAL;
      sg->is_param = 1;
      sg->text = strndup(p + 1, n - 2);
    } else {
      if (!is_literal(p, n)) return RM_EINVAL;
      sg->text = strndup(p, n);
    }
    if (!sg->text) return RM_ENOMEM;
    rt->nseg++;
    if (!end) break;
    p = end + 1;
  }
  size_t nparams = 0;
  for (size_t i = 0; i < rt->nseg; i++) {
    if (!rt->seg[i].is_param) continue;
    if (++nparams > RM_API_MAX_PARAMS) return RM_EINVAL;
    for (size_t j = 0; j < i; j++)
      if (rt->seg[j].is_param && strcmp(rt->seg[j].text, rt->seg[i].text) == 0) return RM_EINVAL;
  }
  return 0;
}

/* Same shape: the same literals with parameters in the same places. */
static bool same_shape(const rm_api_route *a, const rm_api_route *b) {
  if (a->nseg != b->nseg) return false;
  for (size_t i = 0; i < a->nseg; i++) {
    if (a->seg[i].is_param != b->seg[i].is_param) return false;
    if (!a->seg[i].is_param && strcmp(a->seg[i].text, b->seg[i].text) != 0) return false;
  }
  return true;
}

int rm_api_router_add(rm_api_router *r, const char *method, const char *pattern,
                      rm_api_handler_fn fn, void *ud) {
  if (!method || !pattern || !fn || !*method || strlen(method) > 16) return RM_EINVAL;
  for (const char *m = method; *m; m++)
    if (*m < 'A' || *m > 'Z') return RM_EINVAL;
  rm_api_route *rt = calloc(1, sizeof *rt);
  if (!rt) return RM_ENOMEM;
  int rc = parse_pattern(rt, pattern);
  if (rc == 0) {
    rt->method = strdup(method);
    rt->pattern = strdup(pattern);
    if (!rt->method || !rt->pattern) rc = RM_ENOMEM;
  }
  for (size_t i = 0; rc == 0 && i < r->n; i++)
    if (strcmp(r->routes[i]->method, method) == 0 && same_shape(r->routes[i], rt)) rc = RM_EEXIST;
  if (rc == 0 && r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    rm_api_route **nr = realloc(r->routes, cap * sizeof *nr);
    if (!nr) rc = RM_ENOMEM;
    else {
      r->routes = nr;
      r->cap = cap;
    }
  }
  if (rc) {
    route_free(rt);
    return rc;
  }
  rt->fn = fn;
  rt->ud = ud;
  r->routes[r->n++] = rt;
  return 0;
}

size_t rm_api_router_count(const rm_api_router *r) { return r->n; }

const rm_api_route *rm_api_router_at(const rm_api_router *r, size_t i) {
  return i < r->n ? r->routes[i] : NULL;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char *rm_api_pct_decode(const char *s, size_t n, int plus_is_space, int *oom) {
  *oom = 0;
  char *out = malloc(n + 1), *o = out;
  if (!out) {
    *oom = 1;
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
      int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) goto bad;
      c = (char)(hi * 16 + lo);
      i += 2;
    } else if (c == '\0') {
      goto bad;
    } else if (plus_is_space && c == '+') {
      c = ' ';
    }
    *o++ = c;
  }
  *o = '\0';
  return out;
bad:
  free(out);
  return NULL;
}

/* The request path split at '/' into raw (still encoded) segments. */
typedef struct segs {
  size_t n;
  const char *p[RM_API_MAX_SEGMENTS];
  size_t len[RM_API_MAX_SEGMENTS];
} segs;

/* false when the path has more segments than any pattern may have. */
static bool split_path(const char *path, size_t len, segs *s) {
  s->n = 0;
  if (len <= 1) return true; /* "/" (or empty) */
  size_t start = 1;
  for (size_t i = 1; i <= len; i++) {
    if (i == len || path[i] == '/') {
      if (s->n == RM_API_MAX_SEGMENTS) return false;
      s->p[s->n] = path + start;
      s->len[s->n] = i - start;
      s->n++;
      start = i + 1;
    }
  }
  return true;
}

static bool shape_matches(const rm_api_route *rt, const segs *s) {
  if (rt->nseg != s->n) return false;
  for (size_t i = 0; i < s->n; i++) {
    if (rt->seg[i].is_param) {
      if (s->len[i] == 0) return false; /* "/runs//x" gives no empty id */
    } else if (strlen(rt->seg[i].text) != s->len[i] || memcmp(rt->seg[i].text, s->p[i], s->len[i]) != 0) {
      return false;
    }
  }
  return true;
}

/* > 0 when a is more specific than b: a literal at the first place where
 * one has a literal and the other a parameter. */
static int specificity(const rm_api_route *a, const rm_api_route *b) {
  for (size_t i = 0; i < a->nseg; i++)
    if (a->seg[i].is_param != b->seg[i].is_param) return a->seg[i].is_param ? -1 : 1;
  return 0;
}

static void allow_add(char *allow, size_t cap, const char *method) {
  size_t ml = strlen(method), al = strlen(allow);
  for (const char *p = allow; *p;) { /* already listed? */
    const char *e = strstr(p, ", ");
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == ml && memcmp(p, method, n) == 0) return;
    p += n + (e ? 2 : 0);
  }
  if (al + ml + 3 > cap) return;
  if (al) {
    memcpy(allow + al, ", ", 2);
    al += 2;
  }
  memcpy(allow + al, method, ml + 1);
}

int rm_api_router_match(const rm_api_router *r, const char *method, const char *path,
                        size_t len, rm_api_match *m) {
  memset(m, 0, sizeof *m);
  segs s;
  if (!split_path(path, len, &s)) return RM_API_NO_MATCH;
  bool head = strcmp(method, "HEAD") == 0;
  const rm_api_route *best = NULL, *best_get = NULL;
  bool any = false;
  for (size_t i = 0; i < r->n; i++) {
    const rm_api_route *rt = r->routes[i];
    if (!shape_matches(rt, &s)) continue;
    any = true;
    if (strcmp(rt->method, method) == 0) {
      if (!best || specificity(rt, best) > 0) best = rt;
    } else if (head && strcmp(rt->method, "GET") == 0) {
      if (!best_get || specificity(rt, best_get) > 0) best_get = rt;
    }
  }
  if (!best) best = best_get;
  if (!best) {
    if (!any) return RM_API_NO_MATCH;
    for (size_t i = 0; i < r->n; i++) {
      if (!shape_matches(r->routes[i], &s)) continue;
      allow_add(m->allow, sizeof m->allow, r->routes[i]->method);
      if (strcmp(r->routes[i]->method, "GET") == 0) allow_add(m->allow, sizeof m->allow, "HEAD");
    }
    return RM_API_WRONG_METHOD;
  }
  m->route = best;
  for (size_t i = 0; i < best->nseg; i++) {
    if (!best->seg[i].is_param) continue;
    int oom;
    char *v = rm_api_pct_decode(s.p[i], s.len[i], 0, &oom);
    if (!v) {
      rm_api_match_free(m);
      return oom ? RM_ENOMEM : RM_API_BAD_PATH;
    }
    m->params[m->nparams].name = best->seg[i].text;
    m->params[m->nparams].value = v;
    m->nparams++;
  }
  return RM_API_MATCHED;
}

void rm_api_match_free(rm_api_match *m) {
  for (size_t i = 0; i < m->nparams; i++) free(m->params[i].value);
  m->nparams = 0;
  m->route = NULL;
}
