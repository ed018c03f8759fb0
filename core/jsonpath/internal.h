/* Internals shared by the JSONPath files: the compiled query tree, the
 * parser state, node lists and the evaluation context. Nothing here is
 * seen outside core/jsonpath/.
 *
 * A compiled query lives in one arena (arena.c); the few resources that
 * need their own destructor (literal json_t values, compiled regexes) are
 * registered with the arena and released with it. */
#ifndef RM_JSONPATH_INTERNAL_H
#define RM_JSONPATH_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Nesting allowed in a query, counting brackets, parentheses and function
 * calls (every parser recursion passes through one of them), so that
 * neither the parser nor the evaluator can exhaust the C stack. */
#define RM__JP_MAX_NESTING 64

/* I-JSON exact integer range; index and slice literals must lie in it. */
#define RM__JP_MAX_INT INT64_C(9007199254740991)

/* ---- arena.c ---------------------------------------------------------- */

struct rm__jp_chunk;
struct rm__jp_cleanup;

typedef struct rm__jp_arena {
  struct rm__jp_chunk *chunks;
  struct rm__jp_cleanup *cleanups;
} rm__jp_arena;

#define RM__JP_ARENA_INIT \
  { NULL, NULL }

/* Zeroed, suitably aligned storage that lives until rm__jp_arena_free.
 * NULL when out of memory. */
void *rm__jp_alloc(rm__jp_arena *a, size_t n);
/* Runs fn(p) when the arena is freed (latest registration first). On
 * failure fn(p) runs at once and RM_ENOMEM is returned. */
int rm__jp_defer(rm__jp_arena *a, void (*fn)(void *), void *p);
void rm__jp_arena_free(rm__jp_arena *a);

/* ---- the compiled query ------------------------------------------------ */

/* Declared types of function parameters and results (RFC 9535 2.4.1). */
enum rm__jp_type { RM__JP_VALUE, RM__JP_LOGICAL, RM__JP_NODES };

enum rm__jp_sel_kind {
  RM__JP_SEL_NAME,
  RM__JP_SEL_WILDCARD,
  RM__JP_SEL_INDEX,
  RM__JP_SEL_SLICE,
  RM__JP_SEL_FILTER,
};

struct rm__jp_expr;

struct rm__jp_selector {
  enum rm__jp_sel_kind kind;
  union {
    struct {
      const char *s; /* UTF-8, may hold NUL bytes */
      size_t len;
    } name;
    int64_t index;
    struct {
      int64_t start, end, step;
      unsigned char has_start, has_end;
    } slice;
    struct rm__jp_expr *filter;
  } u;
};

struct rm__jp_segment {
  int descendant;
  size_t nsel;
  struct rm__jp_selector *sel;
};

struct rm__jp_query {
  int relative; /* starts at '@' rather than '$' */
  int singular; /* only name/index child segments (RFC 9535 2.3.5.1) */
  size_t nseg;
  struct rm__jp_segment *seg;
};

enum rm__jp_expr_kind {
  RM__JP_OR,
  RM__JP_AND,
  RM__JP_NOT,
  RM__JP_CMP,
  RM__JP_LITERAL,
  RM__JP_QUERY,
  RM__JP_CALL,
};

enum rm__jp_cmp_op { RM__JP_EQ, RM__JP_NE, RM__JP_LT, RM__JP_LE, RM__JP_GT, RM__JP_GE };

/* How a call's regex argument was prepared at compile time. */
enum rm__jp_regex_state {
  RM__JP_REGEX_DYNAMIC, /* not a literal: compiled at each evaluation */
  RM__JP_REGEX_READY,   /* literal, compiled once into regex */
  RM__JP_REGEX_INVALID, /* literal that is not an I-Regexp: never matches */
};

struct rm__jp_func;

struct rm__jp_expr {
  enum rm__jp_expr_kind kind;
  size_t offset;       /* where it starts in the query text */
  unsigned char paren; /* written in parentheses: a logical-expr, never a comparable */
  union {
    struct {
      size_t n;
      struct rm__jp_expr **items;
    } list;                      /* OR, AND */
    struct rm__jp_expr *operand; /* NOT */
    struct {
      enum rm__jp_cmp_op op;
      struct rm__jp_expr *lhs, *rhs;
    } cmp;
    json_t *literal; /* owned by the arena */
    struct rm__jp_query query;
    struct {
      const struct rm__jp_func *fn;
      size_t nargs;
      struct rm__jp_expr **args;
      enum rm__jp_regex_state regex_state;
      pcre2_code *regex;
    } call;
  } u;
};

/* ---- parser state (lex.c, parse.c, expr.c) ------------------------------ */

struct rm__jp_parser {
  const char *src;
  size_t len;
  size_t pos;
  int depth;
  rm__jp_arena *arena;
  char *err;
  size_t errlen;
};

/* Records "at offset <at>: <message>" (the first error only) and returns
 * RM_EPARSE. */
int rm__jp_fail(struct rm__jp_parser *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records "out of memory" and returns RM_ENOMEM. */
int rm__jp_oom(struct rm__jp_parser *p);
/* Enters/leaves one nesting level; entering fails past RM__JP_MAX_NESTING. */
int rm__jp_enter(struct rm__jp_parser *p);
void rm__jp_leave(struct rm__jp_parser *p);

int rm__jp_peek(const struct rm__jp_parser *p);
int rm__jp_peek_at(const struct rm__jp_parser *p, size_t ahead);
/* Skips RFC 9535 blank space (space, tab, LF, CR). */
void rm__jp_skip_blank(struct rm__jp_parser *p);
int rm__jp_is_blank(int c);

/* Decodes one well-formed UTF-8 sequence (no overlongs, no surrogates).
 * Returns its length in bytes, or 0 if s does not start with one. */
size_t rm__jp_utf8_decode(const char *s, size_t n, uint32_t *cp);

/* String literal at the current quote; *s (arena) receives the decoded
 * UTF-8, which may hold NUL bytes. */
int rm__jp_lex_string(struct rm__jp_parser *p, const char **s, size_t *len);
/* RFC 9535 int within the I-JSON range. */
int rm__jp_lex_int(struct rm__jp_parser *p, int64_t *out);
/* Number literal as a new json_t registered with the arena. */
int rm__jp_lex_number(struct rm__jp_parser *p, json_t **out);
/* member-name-shorthand; *s points into the query text. */
int rm__jp_lex_member_name(struct rm__jp_parser *p, const char **s, size_t *len);

/* A whole query: '$' followed by segments and nothing else. */
int rm__jp_parse(struct rm__jp_parser *p, struct rm__jp_query *out);
/* A query starting at the current '$' or '@' (inside filters). */
int rm__jp_parse_query(struct rm__jp_parser *p, struct rm__jp_query *out);
/* The logical-expr of a filter selector, checked to be well-typed. */
int rm__jp_parse_filter(struct rm__jp_parser *p, struct rm__jp_expr **out);

/* ---- evaluation (eval.c, filter.c, compare.c, functions.c) -------------- */

/* A node's location as a chain towards the root; NULL is the root. */
struct rm__jp_path {
  const struct rm__jp_path *up;
  const char *key; /* NULL for an array element */
  size_t keylen;
  size_t index;
};

struct rm__jp_node {
  json_t *value; /* borrowed from the document */
  const struct rm__jp_path *path;
};

struct rm__jp_nodelist {
  struct rm__jp_node *items;
  size_t len, cap;
};

enum rm__jp_value_kind { RM__JP_NOTHING, RM__JP_JSON, RM__JP_INT };

/* A ValueType value: Nothing, a borrowed JSON value, or a computed
 * integer (length(), count()), which saves allocating a json_t. */
struct rm__jp_value {
  enum rm__jp_value_kind kind;
  json_t *json;
  json_int_t i;
};

struct rm__jp_ctx {
  json_t *root;
  int want_paths;
  rm__jp_arena *arena; /* path links of this evaluation */
  pcre2_match_context *mctx;
};

int rm__jp_nodelist_push(struct rm__jp_nodelist *l, json_t *v, const struct rm__jp_path *path);
void rm__jp_nodelist_free(struct rm__jp_nodelist *l);

/* The nodes q selects, starting at the root or (relative) at current.
 * *out receives a new list; free it with rm__jp_nodelist_free. */
int rm__jp_eval_query(const struct rm__jp_ctx *ctx, const struct rm__jp_query *q, json_t *current,
                      struct rm__jp_nodelist *out);
/* The node a singular query selects, or NULL. */
json_t *rm__jp_eval_singular(const struct rm__jp_ctx *ctx, const struct rm__jp_query *q,
                             json_t *current);
int rm__jp_eval_logical(const struct rm__jp_ctx *ctx, const struct rm__jp_expr *e, json_t *current,
                        int *out);
int rm__jp_eval_value(const struct rm__jp_ctx *ctx, const struct rm__jp_expr *e, json_t *current,
                      struct rm__jp_value *out);

/* Applies op to two values with the RFC 9535 2.3.5.2.2 rules. */
int rm__jp_compare(const struct rm__jp_value *a, enum rm__jp_cmp_op op,
                   const struct rm__jp_value *b, int *out);

/* A function argument or result, per its declared type. */
struct rm__jp_arg {
  enum rm__jp_type type;
  struct rm__jp_value value;
  int logical;
  struct rm__jp_nodelist nodes;
};

struct rm__jp_func {
  const char *name;
  enum rm__jp_type result;
  size_t nparams;
  enum rm__jp_type params[2];
  /* Compile-time work on a checked call (may be NULL). */
  int (*prepare)(struct rm__jp_parser *p, struct rm__jp_expr *call);
  int (*invoke)(const struct rm__jp_ctx *ctx, const struct rm__jp_expr *call,
                const struct rm__jp_arg *args, struct rm__jp_arg *out);
};

const struct rm__jp_func *rm__jp_func_lookup(const char *name, size_t len);
/* Evaluates a call's arguments and runs it. */
int rm__jp_call(const struct rm__jp_ctx *ctx, const struct rm__jp_expr *call, json_t *current,
                struct rm__jp_arg *out);

/* ---- path.c ------------------------------------------------------------- */

/* Appends the normalized path (RFC 9535 2.7) of p to out. */
int rm__jp_path_render(const struct rm__jp_path *p, rm_buf *out);

/* ---- iregexp.c ---------------------------------------------------------- */

/* Appends the PCRE2 equivalent of the I-Regexp re to out. 0, RM_EPARSE
 * when re is not an I-Regexp (RFC 9485), or RM_ENOMEM. */
int rm__jp_iregexp_translate(const char *re, size_t len, rm_buf *out);
/* Compiles re for match() (full) or search(). *out is freed with
 * pcre2_code_free. 0, RM_EPARSE or RM_ENOMEM. */
int rm__jp_regex_compile(const char *re, size_t len, int full, pcre2_code **out);
/* 1 if code matches s, 0 if not or if a match limit was hit, RM_ENOMEM. */
int rm__jp_regex_match(const pcre2_code *code, pcre2_match_context *mctx, const char *s,
                       size_t len);

#endif
