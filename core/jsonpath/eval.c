/* Evaluation of queries (RFC 9535 2.5, 2.3): segments applied in turn to
 * a node list, each selector in document order, object members in
 * jansson's insertion order. The descendant segment walks the document
 * with an explicit stack, so a deep document costs heap, not C stack. */
#include <stdlib.h>

#include "jsonpath/internal.h"
#include "util/err.h"

int rm__jp_nodelist_push(struct rm__jp_nodelist *l, json_t *v, const struct rm__jp_path *path) {
  if (l->len == l->cap) {
    size_t ncap = l->cap ? l->cap * 2 : 8;
    struct rm__jp_node *n = realloc(l->items, ncap * sizeof *n);
    if (!n) return RM_ENOMEM;
    l->items = n;
    l->cap = ncap;
  }
  l->items[l->len++] = (struct rm__jp_node){v, path};
  return 0;
}

void rm__jp_nodelist_free(struct rm__jp_nodelist *l) {
  free(l->items);
  *l = (struct rm__jp_nodelist){NULL, 0, 0};
}

/* The path link of a child reached from up by key or index; left NULL
 * unless the caller asked for paths. */
static int child_path(const struct rm__jp_ctx *ctx, const struct rm__jp_path *up, const char *key,
                      size_t keylen, size_t index, const struct rm__jp_path **out) {
  *out = NULL;
  if (!ctx->want_paths) return 0;
  struct rm__jp_path *p = rm__jp_alloc(ctx->arena, sizeof *p);
  if (!p) return RM_ENOMEM;
  *p = (struct rm__jp_path){up, key, keylen, index};
  *out = p;
  return 0;
}

static int add(const struct rm__jp_ctx *ctx, struct rm__jp_nodelist *out, json_t *v,
               const struct rm__jp_path *up, const char *key, size_t keylen, size_t index) {
  const struct rm__jp_path *path;
  int rc = child_path(ctx, up, key, keylen, index, &path);
  return rc ? rc : rm__jp_nodelist_push(out, v, path);
}

static int64_t normalize(int64_t i, int64_t len) { return i >= 0 ? i : len + i; }

static int64_t clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The children of a node in document order; none for a scalar. */
struct children {
  json_t *v;
  size_t index; /* next array element */
  void *iter;   /* next object member */
};

static struct children children_of(json_t *v) {
  return (struct children){v, 0, json_is_object(v) ? json_object_iter(v) : NULL};
}

/* The next child (NULL when there is none left) and its key or index. */
static json_t *next_child(struct children *c, const char **key, size_t *keylen, size_t *index) {
  *key = NULL;
  *keylen = *index = 0;
  if (json_is_array(c->v)) {
    if (c->index >= json_array_size(c->v)) return NULL;
    *index = c->index++;
    return json_array_get(c->v, *index);
  }
  if (!c->iter) return NULL;
  *key = json_object_iter_key(c->iter);
  *keylen = json_object_iter_key_len(c->iter);
  json_t *child = json_object_iter_value(c->iter);
  c->iter = json_object_iter_next(c->v, c->iter);
  return child;
}

/* RFC 9535 2.3.4.2.2. */
static int select_slice(const struct rm__jp_ctx *ctx, const struct rm__jp_selector *sel,
                        json_t *arr, const struct rm__jp_path *up, struct rm__jp_nodelist *out) {
  int64_t len = (int64_t)json_array_size(arr), step = sel->u.slice.step;
  if (step == 0) return 0;
  int64_t start = sel->u.slice.has_start ? sel->u.slice.start : step > 0 ? 0 : len - 1;
  int64_t end = sel->u.slice.has_end ? sel->u.slice.end : step > 0 ? len : -len - 1;
  start = normalize(start, len);
  end = normalize(end, len);
  int rc = 0;
  if (step > 0) {
    int64_t lower = clamp(start, 0, len), upper = clamp(end, 0, len);
    for (int64_t i = lower; i < upper && !rc; i += step)
      rc = add(ctx, out, json_array_get(arr, (size_t)i), up, NULL, 0, (size_t)i);
  } else {
    int64_t upper = clamp(start, -1, len - 1), lower = clamp(end, -1, len - 1);
    for (int64_t i = upper; lower < i && !rc; i += step)
      rc = add(ctx, out, json_array_get(arr, (size_t)i), up, NULL, 0, (size_t)i);
  }
  return rc;
}

/* Children of v that pass the filter; sub-queries never need paths. */
static int select_filter(const struct rm__jp_ctx *ctx, const struct rm__jp_expr *filter, json_t *v,
                         const struct rm__jp_path *up, struct rm__jp_nodelist *out) {
  struct rm__jp_ctx sub = *ctx;
  sub.want_paths = 0;
  struct children it = children_of(v);
  const char *key;
  size_t keylen, index;
  json_t *child;
  int rc = 0, keep;
  while (!rc && (child = next_child(&it, &key, &keylen, &index)))
    if (!(rc = rm__jp_eval_logical(&sub, filter, child, &keep)) && keep)
      rc = add(ctx, out, child, up, key, keylen, index);
  return rc;
}

static int select_one(const struct rm__jp_ctx *ctx, const struct rm__jp_selector *sel, json_t *v,
                      const struct rm__jp_path *up, struct rm__jp_nodelist *out) {
  switch (sel->kind) {
    case RM__JP_SEL_NAME: {
      json_t *child =
          json_is_object(v) ? json_object_getn(v, sel->u.name.s, sel->u.name.len) : NULL;
      return child ? add(ctx, out, child, up, sel->u.name.s, sel->u.name.len, 0) : 0;
    }
    case RM__JP_SEL_WILDCARD: {
      struct children it = children_of(v);
      const char *key;
      size_t keylen, index;
      json_t *child;
      int rc = 0;
      while (!rc && (child = next_child(&it, &key, &keylen, &index)))
        rc = add(ctx, out, child, up, key, keylen, index);
      return rc;
    }
    case RM__JP_SEL_INDEX: {
      if (!json_is_array(v)) return 0;
      int64_t len = (int64_t)json_array_size(v), i = normalize(sel->u.index, len);
      return i >= 0 && i < len ? add(ctx, out, json_array_get(v, (size_t)i), up, NULL, 0, (size_t)i)
                               : 0;
    }
    case RM__JP_SEL_SLICE:
      return json_is_array(v) ? select_slice(ctx, sel, v, up, out) : 0;
    case RM__JP_SEL_FILTER:
      return select_filter(ctx, sel->u.filter, v, up, out);
  }
  return 0;
}

static int select_all(const struct rm__jp_ctx *ctx, const struct rm__jp_segment *seg,
                      const struct rm__jp_node *n, struct rm__jp_nodelist *out) {
  int rc = 0;
  for (size_t i = 0; i < seg->nsel && !rc; i++)
    rc = select_one(ctx, &seg->sel[i], n->value, n->path, out);
  return rc;
}

struct frame {
  struct children it;
  const struct rm__jp_path *path;
};

static int push_frame(struct frame **stack, size_t *len, size_t *cap, json_t *v,
                      const struct rm__jp_path *path) {
  if (!json_is_array(v) && !json_is_object(v)) return 0;
  if (*len == *cap) {
    size_t ncap = *cap ? *cap * 2 : 16;
    struct frame *n = realloc(*stack, ncap * sizeof *n);
    if (!n) return RM_ENOMEM;
    *stack = n;
    *cap = ncap;
  }
  (*stack)[(*len)++] = (struct frame){children_of(v), path};
  return 0;
}

/* The descendant segment: the selectors applied to the input node and to
 * every node below it, each node before its descendants, array elements
 * in order. */
static int descend(const struct rm__jp_ctx *ctx, const struct rm__jp_segment *seg,
                   const struct rm__jp_node *start, struct rm__jp_nodelist *out) {
  struct frame *stack = NULL;
  size_t len = 0, cap = 0;
  int rc = select_all(ctx, seg, start, out);
  if (!rc) rc = push_frame(&stack, &len, &cap, start->value, start->path);
  while (!rc && len) {
    struct frame *f = &stack[len - 1];
    const char *key;
    size_t keylen, index;
    struct rm__jp_node child = {next_child(&f->it, &key, &keylen, &index), NULL};
    if (!child.value) {
      len--;
      continue;
    }
    rc = child_path(ctx, f->path, key, keylen, index, &child.path);
    if (!rc) rc = select_all(ctx, seg, &child, out);
    if (!rc) rc = push_frame(&stack, &len, &cap, child.value, child.path);
  }
  free(stack);
  return rc;
}

int rm__jp_eval_query(const struct rm__jp_ctx *ctx, const struct rm__jp_query *q, json_t *current,
                      struct rm__jp_nodelist *out) {
  struct rm__jp_nodelist in = {NULL, 0, 0}, next = {NULL, 0, 0};
  int rc = rm__jp_nodelist_push(&in, q->relative ? current : ctx->root, NULL);
  for (size_t s = 0; s < q->nseg && !rc; s++) {
    const struct rm__jp_segment *seg = &q->seg[s];
    for (size_t i = 0; i < in.len && !rc; i++)
      rc = seg->descendant ? descend(ctx, seg, &in.items[i], &next)
                           : select_all(ctx, seg, &in.items[i], &next);
    rm__jp_nodelist_free(&in);
    in = next;
    next = (struct rm__jp_nodelist){NULL, 0, 0};
    if (!in.len) break;
  }
  if (rc) {
    rm__jp_nodelist_free(&next);
    rm__jp_nodelist_free(&in);
    return rc;
  }
  *out = in;
  return 0;
}

json_t *rm__jp_eval_singular(const struct rm__jp_ctx *ctx, const struct rm__jp_query *q,
                             json_t *current) {
  json_t *v = q->relative ? current : ctx->root;
  for (size_t s = 0; s < q->nseg && v; s++) {
    const struct rm__jp_selector *sel = &q->seg[s].sel[0];
    if (sel->kind == RM__JP_SEL_NAME) {
      v = json_is_object(v) ? json_object_getn(v, sel->u.name.s, sel->u.name.len) : NULL;
    } else if (json_is_array(v)) {
      int64_t len = (int64_t)json_array_size(v), i = normalize(sel->u.index, len);
      v = i >= 0 && i < len ? json_array_get(v, (size_t)i) : NULL;
    } else {
      v = NULL;
    }
  }
  return v;
}
