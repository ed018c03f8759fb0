/* Shared by the validate*.c files: the validation context, problem
 * reporting and field checks. Not part of the engine's interface. */
#ifndef RM_ENGINE_VALIDATE_INTERNAL_H
#define RM_ENGINE_VALIDATE_INTERNAL_H

#include <jansson.h>
#include <stddef.h>

#include "engine/validate.h"

struct lua_State;

#define RM__NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* Longer paths are cut (at a UTF-8 boundary): they only label messages. */
#define RM__PATH_MAX 512

/* JSON types a field accepts, as a mask. */
enum {
  RM__T_STRING = 1 << 0,
  RM__T_INTEGER = 1 << 1,
  RM__T_REAL = 1 << 2,
  RM__T_BOOLEAN = 1 << 3,
  RM__T_OBJECT = 1 << 4,
  RM__T_ARRAY = 1 << 5,
  RM__T_NULL = 1 << 6,
  RM__T_NUMBER = RM__T_INTEGER | RM__T_REAL,
  RM__T_ANY = 0x7f,
};

typedef struct rm__field {
  const char *name;
  unsigned types;
  int required;
} rm__field;

typedef struct rm__vctx {
  const rm_validate_opts *o;
  json_t *problems;
  int oom;
  const json_t *inputs; /* wf.inputs when it is an object, else NULL */
  const json_t *tasks;  /* wf.tasks when it is an object, else NULL */
  struct lua_State *L;  /* for Lua syntax checks, created on first use */
} rm__vctx;

/* Adds {"path", "message"} to the problems. */
void rm__problem(rm__vctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* out (RM__PATH_MAX bytes) = base + "." + key, or base + "[i]". */
const char *rm__path(char *out, const char *base, const char *key);
const char *rm__path_idx(char *out, const char *base, size_t i);

/* "a string", "an integer", ... for messages. */
const char *rm__a_type(const json_t *v);
int rm__has_type(const json_t *v, unsigned types);
/* "a string or an integer" for a mask. */
const char *rm__types_text(unsigned types, char *out, size_t n);

/* Checks that v is an object holding only the given fields, each of one
 * of its types, and every required one. Returns 1 when v is an object. */
int rm__check_fields(rm__vctx *c, const char *path, const json_t *v, const rm__field *f, size_t nf);
/* Reports field `key` of the object at path as unknown. allowed is the
 * comma-separated list of the names that are. */
void rm__unknown_field(rm__vctx *c, const char *path, const char *key, const char *allowed);

/* Range checks of an optional member already known to be a number. */
void rm__check_int_range(rm__vctx *c, const char *path, const json_t *obj, const char *key,
                         json_int_t min, json_int_t max);
void rm__check_num_range(rm__vctx *c, const char *path, const json_t *obj, const char *key,
                         double min, double max);
/* The string member key must be one of the NULL-terminated options.
 * Returns the index of the match or -1 (absent, not a string, no match). */
int rm__check_enum(rm__vctx *c, const char *path, const json_t *obj, const char *key,
                   const char *const *options);

/* Index of s in the NULL-terminated list, or -1. */
int rm__find(const char *const *list, const char *s);
/* Whether element j of the array equals an earlier one. */
int rm__listed_before(const json_t *array, size_t j);

/* The n decimal digits at s as a number in [lo, hi], or -1. */
int rm__digits(const char *s, int n, int lo, int hi);

/* [A-Za-z_][A-Za-z0-9_-]*: task, input and variable names. */
int rm__is_name(const char *s);
/* The string holds "{{" (and may therefore change when rendered). */
int rm__is_templated(const char *s);
/* The string is exactly one placeholder, so it renders to any type. */
int rm__is_placeholder(const char *s);

/* Syntax checks; each reports at path and returns 0 when valid. */
int rm__check_jsonpath(rm__vctx *c, const char *path, const char *expr);
int rm__check_xpath(rm__vctx *c, const char *path, const char *expr);
/* group (may be NULL) must name or number a group of the pattern. */
int rm__check_regex(rm__vctx *c, const char *path, const json_t *pattern, const json_t *group,
                    const char *group_path);
int rm__check_lua(rm__vctx *c, const char *path, const json_t *code);
void rm__syntax_free(rm__vctx *c);

void rm__validate_retry(rm__vctx *c, const char *path, const json_t *retry);
void rm__validate_task(rm__vctx *c, const char *name, const json_t *task);
void rm__validate_request(rm__vctx *c, const char *name, const json_t *task);
/* Edges, cycles, start tasks and template references. */
void rm__validate_graph(rm__vctx *c);

#endif
