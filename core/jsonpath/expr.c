/* Filter expressions (RFC 9535 2.3.5): ||, &&, !, parentheses,
 * comparisons, test expressions and function calls. The well-typedness
 * rules of 2.4.3 are checked as the tree is built, so a query that
 * compiles never meets a type error at evaluation time.
 *
 * One grammar serves both filters and function arguments: an operand that
 * is alone (no operator around it) is left unchecked, and whoever uses it
 * decides what it must be — a logical expression in a filter, or the
 * declared parameter type in a call. */
#include <string.h>

#include "jsonpath/internal.h"
#include "util/err.h"

static int parse_or(struct rm__jp_parser *p, struct rm__jp_expr **out);

static struct rm__jp_expr *new_expr(struct rm__jp_parser *p, enum rm__jp_expr_kind kind,
                                    size_t offset) {
  struct rm__jp_expr *e = rm__jp_alloc(p->arena, sizeof *e);
  if (e) {
    e->kind = kind;
    e->offset = offset;
  }
  return e;
}

static const char *type_name(enum rm__jp_type t) {
  return t == RM__JP_VALUE ? "a value" : t == RM__JP_LOGICAL ? "a logical value" : "nodes";
}

/* e stands where a LogicalType is expected: a filter, an operand of
 * ||, && or !, or the inside of parentheses. Queries test for existence. */
static int check_logical(struct rm__jp_parser *p, const struct rm__jp_expr *e) {
  switch (e->kind) {
    case RM__JP_LITERAL:
      return rm__jp_fail(p, e->offset, "a literal must be compared");
    case RM__JP_CALL:
      if (e->u.call.fn->result == RM__JP_VALUE)
        return rm__jp_fail(p, e->offset, "the result of %s() is a value and must be compared",
                           e->u.call.fn->name);
      return 0;
    default:
      return 0;
  }
}

/* e is an operand of a comparison: a literal, a singular query or a
 * function returning a value. */
static int check_comparable(struct rm__jp_parser *p, const struct rm__jp_expr *e) {
  if (e->paren) return rm__jp_fail(p, e->offset, "a parenthesized expression cannot be compared");
  switch (e->kind) {
    case RM__JP_LITERAL:
      return 0;
    case RM__JP_QUERY:
      if (!e->u.query.singular)
        return rm__jp_fail(p, e->offset, "a non-singular query cannot be compared");
      return 0;
    case RM__JP_CALL:
      if (e->u.call.fn->result != RM__JP_VALUE)
        return rm__jp_fail(p, e->offset, "the result of %s() is %s and cannot be compared",
                           e->u.call.fn->name, type_name(e->u.call.fn->result));
      return 0;
    default:
      return rm__jp_fail(p, e->offset, "a logical expression cannot be compared");
  }
}

/* Argument i (from 1) of fn against its declared parameter type. */
static int check_argument(struct rm__jp_parser *p, const struct rm__jp_func *fn, size_t i,
                          const struct rm__jp_expr *e) {
  enum rm__jp_type want = fn->params[i - 1];
  enum rm__jp_type got;
  switch (e->kind) {
    case RM__JP_LITERAL:
      got = RM__JP_VALUE;
      break;
    case RM__JP_QUERY:
      got = e->u.query.singular ? RM__JP_VALUE : RM__JP_NODES;
      break;
    case RM__JP_CALL:
      got = e->u.call.fn->result;
      break;
    default:
      got = RM__JP_LOGICAL;
      break;
  }
  if (e->paren) got = RM__JP_LOGICAL;
  int ok;
  switch (want) {
    case RM__JP_VALUE:
      ok = got == RM__JP_VALUE;
      break;
    case RM__JP_LOGICAL: /* nodes convert to a logical value */
      ok = got == RM__JP_LOGICAL || got == RM__JP_NODES || (e->kind == RM__JP_QUERY && !e->paren);
      break;
    default: /* a singular query is a query too */
      ok = !e->paren && (got == RM__JP_NODES || e->kind == RM__JP_QUERY);
      break;
  }
  if (ok) return 0;
  if (want == RM__JP_VALUE && e->kind == RM__JP_QUERY && !e->paren)
    return rm__jp_fail(p, e->offset, "argument %zu of %s() must be a singular query", i, fn->name);
  return rm__jp_fail(p, e->offset, "argument %zu of %s() must be %s, not %s", i, fn->name,
                     type_name(want), type_name(got));
}

static int parse_call(struct rm__jp_parser *p, size_t start, struct rm__jp_expr **out) {
  size_t namelen = p->pos - start;
  const struct rm__jp_func *fn = rm__jp_func_lookup(p->src + start, namelen);
  if (!fn) return rm__jp_fail(p, start, "unknown function '%.*s'", (int)namelen, p->src + start);
  int rc = rm__jp_enter(p);
  if (rc) return rc;
  struct rm__jp_expr *e = new_expr(p, RM__JP_CALL, start);
  if (!e) return rm__jp_oom(p);
  e->u.call.fn = fn;
  p->pos++; /* '(' */
  rm__jp_skip_blank(p);
  size_t cap = 0;
  if (rm__jp_peek(p) == ')') {
    p->pos++;
  } else {
    for (;;) {
      if (e->u.call.nargs == cap) {
        size_t ncap = cap ? cap * 2 : 2;
        struct rm__jp_expr **n = rm__jp_alloc(p->arena, ncap * sizeof *n);
        if (!n) return rm__jp_oom(p);
        if (cap) memcpy(n, e->u.call.args, cap * sizeof *n);
        e->u.call.args = n;
        cap = ncap;
      }
      if ((rc = parse_or(p, &e->u.call.args[e->u.call.nargs++]))) return rc;
      rm__jp_skip_blank(p);
      int c = rm__jp_peek(p);
      if (c == ')') {
        p->pos++;
        break;
      }
      if (c != ',') return rm__jp_fail(p, p->pos, "expected ',' or ')' in call of %s()", fn->name);
      p->pos++;
      rm__jp_skip_blank(p);
    }
  }
  if (e->u.call.nargs != fn->nparams)
    return rm__jp_fail(p, start, "%s() takes %zu argument%s, not %zu", fn->name, fn->nparams,
                       fn->nparams == 1 ? "" : "s", e->u.call.nargs);
  for (size_t i = 0; i < e->u.call.nargs; i++)
    if ((rc = check_argument(p, fn, i + 1, e->u.call.args[i]))) return rc;
  if (fn->prepare && (rc = fn->prepare(p, e))) return rc;
  rm__jp_leave(p);
  *out = e;
  return 0;
}

static int new_literal(struct rm__jp_parser *p, size_t start, json_t *v, struct rm__jp_expr **out) {
  struct rm__jp_expr *e = new_expr(p, RM__JP_LITERAL, start);
  if (!e) return rm__jp_oom(p);
  e->u.literal = v;
  *out = e;
  return 0;
}

static void free_json(void *v) { json_decref(v); }

/* A literal, a query or a function call. */
static int parse_primary(struct rm__jp_parser *p, struct rm__jp_expr **out) {
  size_t start = p->pos;
  int c = rm__jp_peek(p), rc;
  if (c == '\'' || c == '"') {
    const char *s;
    size_t len;
    if ((rc = rm__jp_lex_string(p, &s, &len))) return rc;
    json_t *v = json_stringn(s, len);
    if (!v || rm__jp_defer(p->arena, free_json, v)) return rm__jp_oom(p);
    return new_literal(p, start, v, out);
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    json_t *v;
    if ((rc = rm__jp_lex_number(p, &v))) return rc;
    return new_literal(p, start, v, out);
  }
  if (c == '$' || c == '@') {
    struct rm__jp_expr *e = new_expr(p, RM__JP_QUERY, start);
    if (!e) return rm__jp_oom(p);
    if ((rc = rm__jp_parse_query(p, &e->u.query))) return rc;
    *out = e;
    return 0;
  }
  if (c >= 'a' && c <= 'z') {
    while ((c = rm__jp_peek(p)) == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
      p->pos++;
    if (c == '(') return parse_call(p, start, out);
    size_t n = p->pos - start;
    const char *w = p->src + start;
    if (n == 4 && !memcmp(w, "true", 4)) return new_literal(p, start, json_true(), out);
    if (n == 5 && !memcmp(w, "false", 5)) return new_literal(p, start, json_false(), out);
    if (n == 4 && !memcmp(w, "null", 4)) return new_literal(p, start, json_null(), out);
    size_t after = p->pos;
    rm__jp_skip_blank(p);
    if (rm__jp_peek(p) == '(' && rm__jp_func_lookup(w, n))
      return rm__jp_fail(p, after, "blank space is not allowed between %.*s and '('", (int)n, w);
    return rm__jp_fail(p, start, "unknown name '%.*s'", (int)n, w);
  }
  if (c < 0) return rm__jp_fail(p, p->pos, "expected an expression, found the end of the query");
  return rm__jp_fail(p, p->pos, "expected an expression");
}

static int parse_paren(struct rm__jp_parser *p, struct rm__jp_expr **out) {
  size_t open = p->pos;
  int rc = rm__jp_enter(p);
  if (rc) return rc;
  p->pos++;
  rm__jp_skip_blank(p);
  if ((rc = parse_or(p, out)) || (rc = check_logical(p, *out))) return rc;
  rm__jp_skip_blank(p);
  if (rm__jp_peek(p) != ')')
    return rm__jp_fail(p, p->pos, "expected ')' to close '(' at offset %zu", open);
  p->pos++;
  (*out)->paren = 1;
  rm__jp_leave(p);
  return 0;
}

static int lex_cmp_op(struct rm__jp_parser *p, enum rm__jp_cmp_op *op) {
  int c = rm__jp_peek(p), eq = rm__jp_peek_at(p, 1) == '=';
  if (c == '=' && eq)
    *op = RM__JP_EQ;
  else if (c == '!' && eq)
    *op = RM__JP_NE;
  else if (c == '<')
    *op = eq ? RM__JP_LE : RM__JP_LT;
  else if (c == '>')
    *op = eq ? RM__JP_GE : RM__JP_GT;
  else
    return 0;
  p->pos += (c == '<' || c == '>') && !eq ? 1 : 2;
  return 1;
}

/* basic-expr: paren-expr, comparison-expr or test-expr. */
static int parse_basic(struct rm__jp_parser *p, struct rm__jp_expr **out) {
  size_t start = p->pos;
  int rc;
  if (rm__jp_peek(p) == '!') {
    p->pos++;
    rm__jp_skip_blank(p);
    struct rm__jp_expr *operand, *e;
    if (rm__jp_peek(p) == '(') {
      rc = parse_paren(p, &operand);
    } else if ((rc = parse_primary(p, &operand)) == 0) {
      if (operand->kind == RM__JP_LITERAL)
        return rm__jp_fail(p, operand->offset,
                           "'!' needs a query, a function call or a parenthesized expression");
      rc = check_logical(p, operand);
    }
    if (rc) return rc;
    if (!(e = new_expr(p, RM__JP_NOT, start))) return rm__jp_oom(p);
    e->u.operand = operand;
    *out = e;
    return 0;
  }
  if (rm__jp_peek(p) == '(') return parse_paren(p, out);
  struct rm__jp_expr *lhs, *rhs, *e;
  if ((rc = parse_primary(p, &lhs))) return rc;
  size_t save = p->pos;
  rm__jp_skip_blank(p);
  size_t op_at = p->pos;
  enum rm__jp_cmp_op op;
  if (!lex_cmp_op(p, &op)) {
    p->pos = save;
    *out = lhs;
    return 0;
  }
  rm__jp_skip_blank(p);
  if ((rc = parse_primary(p, &rhs)) || (rc = check_comparable(p, lhs)) ||
      (rc = check_comparable(p, rhs)))
    return rc;
  if (!(e = new_expr(p, RM__JP_CMP, op_at))) return rm__jp_oom(p);
  e->u.cmp.op = op;
  e->u.cmp.lhs = lhs;
  e->u.cmp.rhs = rhs;
  *out = e;
  return 0;
}

typedef int (*parse_fn)(struct rm__jp_parser *, struct rm__jp_expr **);

static int list_push(struct rm__jp_parser *p, struct rm__jp_expr *e, size_t *cap,
                     struct rm__jp_expr *item) {
  if (e->u.list.n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 4;
    struct rm__jp_expr **n = rm__jp_alloc(p->arena, ncap * sizeof *n);
    if (!n) return rm__jp_oom(p);
    if (e->u.list.n) memcpy(n, e->u.list.items, e->u.list.n * sizeof *n);
    e->u.list.items = n;
    *cap = ncap;
  }
  e->u.list.items[e->u.list.n++] = item;
  return 0;
}

/* operand *(S op S operand) for op "||" or "&&"; a lone operand is
 * returned as is. */
static int parse_chain(struct rm__jp_parser *p, const char *op, enum rm__jp_expr_kind kind,
                       parse_fn operand, struct rm__jp_expr **out) {
  size_t start = p->pos, cap = 0;
  struct rm__jp_expr *first, *next, *e = NULL;
  int rc = operand(p, &first);
  if (rc) return rc;
  for (;;) {
    size_t save = p->pos;
    rm__jp_skip_blank(p);
    if (rm__jp_peek(p) != op[0] || rm__jp_peek_at(p, 1) != op[1]) {
      p->pos = save;
      break;
    }
    p->pos += 2;
    rm__jp_skip_blank(p);
    if (!e) {
      if (!(e = new_expr(p, kind, start))) return rm__jp_oom(p);
      if ((rc = check_logical(p, first)) || (rc = list_push(p, e, &cap, first))) return rc;
    }
    if ((rc = operand(p, &next)) || (rc = check_logical(p, next)) ||
        (rc = list_push(p, e, &cap, next)))
      return rc;
  }
  *out = e ? e : first;
  return 0;
}

static int parse_and(struct rm__jp_parser *p, struct rm__jp_expr **out) {
  return parse_chain(p, "&&", RM__JP_AND, parse_basic, out);
}

static int parse_or(struct rm__jp_parser *p, struct rm__jp_expr **out) {
  return parse_chain(p, "||", RM__JP_OR, parse_and, out);
}

int rm__jp_parse_filter(struct rm__jp_parser *p, struct rm__jp_expr **out) {
  int rc = parse_or(p, out);
  return rc ? rc : check_logical(p, *out);
}
