/* The RFC 9535 function extensions (2.4.4-2.4.8): one table row per
 * function with its declared types, which expr.c checks at compile time,
 * and one dispatcher that evaluates the arguments by those types.
 *
 * match() and search() take their pattern from a literal in the common
 * case; it is then translated and compiled once, when the query is
 * compiled, and kept in the call node. */
#include <string.h>

#include "jsonpath/internal.h"
#include "util/err.h"

static int fn_length(const struct rm__jp_ctx *ctx, const struct rm__jp_expr *call,
                     const struct rm__jp_arg *args, struct rm__jp_arg *out) {
  (void)ctx, (void)call;
  const struct rm__jp_value *v = &args[0].value;
  if (v->kind != RM__JP_JSON) return 0;
  json_t *j = v->json;
  json_int_t n;
  if (json_is_string(j)) {
    /* Unicode scalar values: every byte that does not continue one. */
    const char *s = json_string_value(j);
    size_t len = json_string_length(j);
    n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
  } else if (json_is_array(j)) {
    n = (json_int_t)json_array_size(j);
  } else if (json_is_object(j)) {
    n = (json_int_t)json_object_size(j);
  } else {
    return 0;
  }
  out->value = (struct rm__jp_value){RM__JP_INT, NULL, n};
  return 0;
}

static int fn_count(const struct rm__jp_ctx *ctx, const struct rm__jp_expr *call,
                    const struct rm__jp_arg *args, struct rm__jp_arg *out) {
  (void)ctx, (void)call;
  out->value = (struct rm__jp_value){RM__JP_INT, NULL, (json_int_t)args[0].nodes.len};
  return 0;
}

static int fn_value(const struct rm__jp_ctx *ctx, const struct rm__jp_expr *call,
                    const struct rm__jp_arg *args, struct rm__jp_arg *out) {
  (void)ctx, (void)call;
  if (args[0].nodes.len == 1)
    out->value = (struct rm__jp_value){RM__JP_JSON, args[0].nodes.items[0].value, 0};
  return 0;
}

static int is_string(const struct rm__jp_value *v) {
  return v->kind == RM__JP_JSON && json_is_string(v->json);
}

/* match() (full) and search(): false unless both arguments are strings
 * and the second is a valid I-Regexp. */
static int regex_test(const struct rm__jp_ctx *ctx, const struct rm__jp_expr *call,
                      const struct rm__jp_arg *args, struct rm__jp_arg *out, int full) {
  const struct rm__jp_value *s = &args[0].value, *re = &args[1].value;
  out->logical = 0;
  if (!is_string(s)) return 0;
  pcre2_code *code = call->u.call.regex, *own = NULL;
  if (call->u.call.regex_state == RM__JP_REGEX_INVALID) return 0;
  if (call->u.call.regex_state == RM__JP_REGEX_DYNAMIC) {
    if (!is_string(re)) return 0;
    int rc =
        rm__jp_regex_compile(json_string_value(re->json), json_string_length(re->json), full, &own);
    if (rc == RM_EPARSE) return 0;
    if (rc) return rc;
    code = own;
  }
  int m =
      rm__jp_regex_match(code, ctx->mctx, json_string_value(s->json), json_string_length(s->json));
  if (own) pcre2_code_free(own);
  if (m < 0) return m;
  out->logical = m;
  return 0;
}

static int fn_match(const struct rm__jp_ctx *ctx, const struct rm__jp_expr *call,
                    const struct rm__jp_arg *args, struct rm__jp_arg *out) {
  return regex_test(ctx, call, args, out, 1);
}

static int fn_search(const struct rm__jp_ctx *ctx, const struct rm__jp_expr *call,
                     const struct rm__jp_arg *args, struct rm__jp_arg *out) {
  return regex_test(ctx, call, args, out, 0);
}

static void free_code(void *code) { pcre2_code_free(code); }

static int prepare_regex(struct rm__jp_parser *p, struct rm__jp_expr *call, int full) {
  const struct rm__jp_expr *re = call->u.call.args[1];
  if (re->kind != RM__JP_LITERAL) {
    call->u.call.regex_state = RM__JP_REGEX_DYNAMIC;
    return 0;
  }
  call->u.call.regex_state = RM__JP_REGEX_INVALID;
  if (!json_is_string(re->u.literal)) return 0;
  pcre2_code *code;
  int rc = rm__jp_regex_compile(json_string_value(re->u.literal), json_string_length(re->u.literal),
                                full, &code);
  if (rc == RM_EPARSE) return 0;
  if (rc || rm__jp_defer(p->arena, free_code, code)) return rm__jp_oom(p);
  call->u.call.regex = code;
  call->u.call.regex_state = RM__JP_REGEX_READY;
  return 0;
}

static int prepare_match(struct rm__jp_parser *p, struct rm__jp_expr *call) {
  return prepare_regex(p, call, 1);
}

static int prepare_search(struct rm__jp_parser *p, struct rm__jp_expr *call) {
  return prepare_regex(p, call, 0);
}

static const struct rm__jp_func functions[] = {
    {"length", RM__JP_VALUE, 1, {RM__JP_VALUE}, NULL, fn_length},
    {"count", RM__JP_VALUE, 1, {RM__JP_NODES}, NULL, fn_count},
    {"match", RM__JP_LOGICAL, 2, {RM__JP_VALUE, RM__JP_VALUE}, prepare_match, fn_match},
    {"search", RM__JP_LOGICAL, 2, {RM__JP_VALUE, RM__JP_VALUE}, prepare_search, fn_search},
    {"value", RM__JP_VALUE, 1, {RM__JP_NODES}, NULL, fn_value},
};

const struct rm__jp_func *rm__jp_func_lookup(const char *name, size_t len) {
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
    if (strlen(functions[i].name) == len && !memcmp(functions[i].name, name, len))
      return &functions[i];
  return NULL;
}

static int eval_arg(const struct rm__jp_ctx *ctx, enum rm__jp_type type,
                    const struct rm__jp_expr *e, json_t *current, struct rm__jp_arg *out) {
  out->type = type;
  switch (type) {
    case RM__JP_VALUE:
      return rm__jp_eval_value(ctx, e, current, &out->value);
    case RM__JP_LOGICAL:
      return rm__jp_eval_logical(ctx, e, current, &out->logical);
    case RM__JP_NODES:
      if (e->kind == RM__JP_QUERY) return rm__jp_eval_query(ctx, &e->u.query, current, &out->nodes);
      return rm__jp_call(ctx, e, current, out);
  }
  return RM_EINVAL;
}

int rm__jp_call(const struct rm__jp_ctx *ctx, const struct rm__jp_expr *call, json_t *current,
                struct rm__jp_arg *out) {
  const struct rm__jp_func *fn = call->u.call.fn;
  struct rm__jp_arg args[sizeof fn->params / sizeof fn->params[0]];
  memset(args, 0, sizeof args);
  memset(out, 0, sizeof *out);
  out->type = fn->result;
  int rc = 0;
  for (size_t i = 0; i < call->u.call.nargs && !rc; i++)
    rc = eval_arg(ctx, fn->params[i], call->u.call.args[i], current, &args[i]);
  if (!rc) rc = fn->invoke(ctx, call, args, out);
  for (size_t i = 0; i < call->u.call.nargs; i++) rm__jp_nodelist_free(&args[i].nodes);
  return rc;
}
