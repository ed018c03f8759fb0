/* Evaluation of filter expressions: logical operators with short-circuit,
 * comparisons, existence tests and the value of comparables. The compiler
 * has already checked types, so every expression here is used the way its
 * kind allows. */
#include "jsonpath/internal.h"
#include "util/err.h"

int rm__jp_eval_value(const struct rm__jp_ctx *ctx, const struct rm__jp_expr *e, json_t *current,
                      struct rm__jp_value *out) {
  *out = (struct rm__jp_value){RM__JP_NOTHING, NULL, 0};
  switch (e->kind) {
    case RM__JP_LITERAL:
      out->kind = RM__JP_JSON;
      out->json = e->u.literal;
      return 0;
    case RM__JP_QUERY: {
      json_t *v = rm__jp_eval_singular(ctx, &e->u.query, current);
      if (v) {
        out->kind = RM__JP_JSON;
        out->json = v;
      }
      return 0;
    }
    case RM__JP_CALL: {
      struct rm__jp_arg r;
      int rc = rm__jp_call(ctx, e, current, &r);
      if (!rc) *out = r.value;
      return rc;
    }
    default:
      return RM_EINVAL;
  }
}

/* Whether the query selects at least one node. */
static int exists(const struct rm__jp_ctx *ctx, const struct rm__jp_query *q, json_t *current,
                  int *out) {
  if (q->singular) {
    *out = rm__jp_eval_singular(ctx, q, current) != NULL;
    return 0;
  }
  struct rm__jp_nodelist l;
  int rc = rm__jp_eval_query(ctx, q, current, &l);
  if (rc) return rc;
  *out = l.len > 0;
  rm__jp_nodelist_free(&l);
  return 0;
}

int rm__jp_eval_logical(const struct rm__jp_ctx *ctx, const struct rm__jp_expr *e, json_t *current,
                        int *out) {
  int rc;
  switch (e->kind) {
    case RM__JP_OR:
    case RM__JP_AND: {
      int want = e->kind == RM__JP_OR; /* the value that decides the result */
      for (size_t i = 0; i < e->u.list.n; i++) {
        if ((rc = rm__jp_eval_logical(ctx, e->u.list.items[i], current, out))) return rc;
        if (*out == want) return 0;
      }
      *out = !want;
      return 0;
    }
    case RM__JP_NOT:
      if ((rc = rm__jp_eval_logical(ctx, e->u.operand, current, out))) return rc;
      *out = !*out;
      return 0;
    case RM__JP_CMP: {
      struct rm__jp_value a, b;
      if ((rc = rm__jp_eval_value(ctx, e->u.cmp.lhs, current, &a)) ||
          (rc = rm__jp_eval_value(ctx, e->u.cmp.rhs, current, &b)))
        return rc;
      return rm__jp_compare(&a, e->u.cmp.op, &b, out);
    }
    case RM__JP_QUERY:
      return exists(ctx, &e->u.query, current, out);
    case RM__JP_CALL: {
      struct rm__jp_arg r;
      if ((rc = rm__jp_call(ctx, e, current, &r))) return rc;
      if (r.type == RM__JP_NODES) {
        *out = r.nodes.len > 0;
        rm__jp_nodelist_free(&r.nodes);
      } else {
        *out = r.logical;
      }
      return 0;
    }
    default:
      return RM_EINVAL;
  }
}
