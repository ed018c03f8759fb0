/* Comparisons in filters (RFC 9535 2.3.5.2.2). Numbers compare by value
 * whatever their JSON form (1 == 1.0, and an integer beyond 2^53 against a
 * real is exact); strings by Unicode scalar values, which for UTF-8 is
 * byte order; arrays and objects only for (deep) equality. Anything else
 * of different types is unequal and unordered. */
#include <stdlib.h>
#include <string.h>

#include "jsonpath/internal.h"
#include "util/err.h"

struct num {
  int is_int;
  json_int_t i;
  double d;
};

static int as_num(const struct rm__jp_value *v, struct num *n) {
  if (v->kind == RM__JP_INT) {
    n->is_int = 1;
    n->i = v->i;
    return 1;
  }
  if (v->kind != RM__JP_JSON) return 0;
  if (json_is_integer(v->json)) {
    n->is_int = 1;
    n->i = json_integer_value(v->json);
    return 1;
  }
  if (json_is_real(v->json)) {
    n->is_int = 0;
    n->d = json_real_value(v->json);
    return 1;
  }
  return 0;
}

static int sign(int gt, int lt) { return gt - lt; }

/* d against i without losing precision on either side. */
static int real_int_cmp(double d, json_int_t i) {
  if (d >= 9223372036854775808.0) return 1;
  if (d < -9223372036854775808.0) return -1;
  json_int_t t = (json_int_t)d; /* in range, truncated toward zero */
  if (t != i) return sign(t > i, t < i);
  double frac = d - (double)t;
  return sign(frac > 0, frac < 0);
}

static int num_cmp(const struct num *a, const struct num *b) {
  if (a->is_int && b->is_int) return sign(a->i > b->i, a->i < b->i);
  if (!a->is_int && !b->is_int) return sign(a->d > b->d, a->d < b->d);
  if (a->is_int) return -real_int_cmp(b->d, a->i);
  return real_int_cmp(a->d, b->i);
}

/* Equality of two scalars, or the shape check of two containers (same
 * type and size); *deep is set when their members still need comparing. */
static int shallow_equal(json_t *a, json_t *b, int *deep) {
  *deep = 0;
  struct rm__jp_value va = {RM__JP_JSON, a, 0}, vb = {RM__JP_JSON, b, 0};
  struct num na, nb;
  if (as_num(&va, &na)) return as_num(&vb, &nb) && num_cmp(&na, &nb) == 0;
  if (json_typeof(a) != json_typeof(b)) return 0;
  switch (json_typeof(a)) {
    case JSON_STRING:
      return json_string_length(a) == json_string_length(b) &&
             !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    case JSON_ARRAY:
      *deep = json_array_size(a) > 0;
      return json_array_size(a) == json_array_size(b);
    case JSON_OBJECT:
      *deep = json_object_size(a) > 0;
      return json_object_size(a) == json_object_size(b);
    default: /* true, false, null */
      return 1;
  }
}

struct pair {
  json_t *a, *b;
};

/* Deep equality with an explicit stack, so document depth costs heap, not
 * C stack. 1 equal, 0 not, RM_ENOMEM. */
static int deep_equal(json_t *a, json_t *b) {
  struct pair *stack = NULL;
  size_t len = 0, cap = 0;
  int result = 1, deep;
  if (!shallow_equal(a, b, &deep)) return 0;
  if (!deep) return 1;
  stack = malloc(16 * sizeof *stack);
  if (!stack) return RM_ENOMEM;
  cap = 16;
  stack[len++] = (struct pair){a, b};
  while (len && result == 1) {
    struct pair top = stack[--len];
    size_t n = json_is_array(top.a) ? json_array_size(top.a) : json_object_size(top.a);
    if (cap - len < n) {
      size_t ncap = cap;
      while (ncap - len < n) ncap *= 2;
      struct pair *ns = realloc(stack, ncap * sizeof *ns);
      if (!ns) {
        result = RM_ENOMEM;
        break;
      }
      stack = ns;
      cap = ncap;
    }
    if (json_is_array(top.a)) {
      for (size_t i = 0; i < n && result == 1; i++) {
        json_t *x = json_array_get(top.a, i), *y = json_array_get(top.b, i);
        if (!shallow_equal(x, y, &deep))
          result = 0;
        else if (deep)
          stack[len++] = (struct pair){x, y};
      }
    } else {
      const char *key;
      size_t keylen;
      json_t *x;
      json_object_keylen_foreach(top.a, key, keylen, x) {
        json_t *y = json_object_getn(top.b, key, keylen);
        if (!y || !shallow_equal(x, y, &deep)) {
          result = 0;
          break;
        }
        if (deep) stack[len++] = (struct pair){x, y};
      }
    }
  }
  free(stack);
  return result;
}

/* 1 if a == b, 0 if not, RM_ENOMEM. */
static int equal(const struct rm__jp_value *a, const struct rm__jp_value *b) {
  if (a->kind == RM__JP_NOTHING || b->kind == RM__JP_NOTHING) return a->kind == b->kind;
  struct num na, nb;
  int an = as_num(a, &na), bn = as_num(b, &nb);
  if (an || bn) return an && bn && num_cmp(&na, &nb) == 0;
  return deep_equal(a->json, b->json);
}

/* a < b: only numbers with numbers and strings with strings are ordered. */
static int less(const struct rm__jp_value *a, const struct rm__jp_value *b) {
  struct num na, nb;
  if (as_num(a, &na) && as_num(b, &nb)) return num_cmp(&na, &nb) < 0;
  if (a->kind != RM__JP_JSON || b->kind != RM__JP_JSON || !json_is_string(a->json) ||
      !json_is_string(b->json))
    return 0;
  size_t la = json_string_length(a->json), lb = json_string_length(b->json);
  int c = memcmp(json_string_value(a->json), json_string_value(b->json), la < lb ? la : lb);
  return c < 0 || (c == 0 && la < lb);
}

int rm__jp_compare(const struct rm__jp_value *a, enum rm__jp_cmp_op op,
                   const struct rm__jp_value *b, int *out) {
  int r;
  switch (op) {
    case RM__JP_EQ:
    case RM__JP_NE:
      r = equal(a, b);
      if (r < 0) return r;
      *out = op == RM__JP_EQ ? r : !r;
      return 0;
    case RM__JP_LT:
      *out = less(a, b);
      return 0;
    case RM__JP_GT:
      *out = less(b, a);
      return 0;
    case RM__JP_LE:
    case RM__JP_GE:
      if (op == RM__JP_LE ? less(a, b) : less(b, a)) {
        *out = 1;
        return 0;
      }
      r = equal(a, b);
      if (r < 0) return r;
      *out = r;
      return 0;
  }
  return RM_EINVAL;
}
