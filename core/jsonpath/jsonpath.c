/* The public face of the JSONPath subsystem: compile, query, free. */
#include "jsonpath/jsonpath.h"

#include <stdlib.h>
#include <string.h>

#include "jsonpath/internal.h"
#include "util/err.h"

/* PCRE2 limits for match() and search(): enough for any sensible pattern
 * on a sizeable string, while a pattern that backtracks exponentially
 * gives up (as "no match") within milliseconds. */
#define REGEX_MATCH_LIMIT 1000000
#define REGEX_DEPTH_LIMIT 10000
#define REGEX_HEAP_LIMIT_KIB 20480

struct rm_jsonpath {
  rm__jp_arena arena;
  struct rm__jp_query query;
  pcre2_match_context *mctx;
};

int rm_jsonpath_compile(const char *expr, rm_jsonpath **out, char *err, size_t errlen) {
  *out = NULL;
  if (err && errlen) err[0] = '\0';
  if (!expr) return RM_EINVAL;
  rm_jsonpath *q = calloc(1, sizeof *q);
  if (!q) return RM_ENOMEM;
  struct rm__jp_parser p = {expr, strlen(expr), 0, 0, &q->arena, err, errlen};
  int rc = rm__jp_parse(&p, &q->query);
  if (!rc && !(q->mctx = pcre2_match_context_create(NULL))) rc = rm__jp_oom(&p);
  if (rc) {
    rm_jsonpath_free(q);
    return rc;
  }
  pcre2_set_match_limit(q->mctx, REGEX_MATCH_LIMIT);
  pcre2_set_depth_limit(q->mctx, REGEX_DEPTH_LIMIT);
  pcre2_set_heap_limit(q->mctx, REGEX_HEAP_LIMIT_KIB);
  *out = q;
  return 0;
}

/* The results as JSON arrays: values always, normalized paths if asked. */
static int build(const struct rm__jp_nodelist *l, json_t **out, json_t **paths) {
  json_t *values = json_array(), *ps = paths ? json_array() : NULL;
  rm_buf b = RM_BUF_INIT;
  int rc = values && (!paths || ps) ? 0 : RM_ENOMEM;
  for (size_t i = 0; i < l->len && !rc; i++) {
    if (json_array_append(values, l->items[i].value)) rc = RM_ENOMEM;
    if (rc || !ps) continue;
    b.len = 0;
    if ((rc = rm__jp_path_render(l->items[i].path, &b))) break;
    if (json_array_append_new(ps, json_stringn(b.data, b.len))) rc = RM_ENOMEM;
  }
  rm_buf_free(&b);
  if (rc) {
    json_decref(values);
    json_decref(ps);
    return rc;
  }
  *out = values;
  if (paths) *paths = ps;
  return 0;
}

int rm_jsonpath_query(const rm_jsonpath *q, json_t *doc, json_t **out, json_t **paths) {
  *out = NULL;
  if (paths) *paths = NULL;
  if (!q || !doc) return RM_EINVAL;
  rm__jp_arena arena = RM__JP_ARENA_INIT;
  struct rm__jp_ctx ctx = {doc, paths != NULL, &arena, q->mctx};
  struct rm__jp_nodelist l;
  int rc = rm__jp_eval_query(&ctx, &q->query, doc, &l);
  if (!rc) {
    rc = build(&l, out, paths);
    rm__jp_nodelist_free(&l);
  }
  rm__jp_arena_free(&arena);
  return rc;
}

void rm_jsonpath_free(rm_jsonpath *q) {
  if (!q) return;
  pcre2_match_context_free(q->mctx);
  rm__jp_arena_free(&q->arena);
  free(q);
}
