/* rm_api_router: the table of REST routes (method + path pattern) and the
 * one matcher every request goes through.
 *
 * Patterns are absolute paths whose segments are literals or parameters:
 * "/api/v1/runs/{id}/annotations". A literal segment beats a parameter at
 * the same place, so "/runs/search" wins over "/runs/{id}" for the
 * methods both have. Paths match exactly: "/runs/" is not "/runs".
 * HEAD is answered by the GET route when there is no HEAD route.
 *
 * The table is filled before the server starts and only read afterwards;
 * its routes are listed in registration order (the OpenAPI completeness
 * test walks them). */
#ifndef RM_API_ROUTER_H
#define RM_API_ROUTER_H

#include <stddef.h>

#define RM_API_MAX_PARAMS 8
#define RM_API_MAX_SEGMENTS 32

typedef struct rm_api_req rm_api_req;

/* A route handler. It answers with one of the rm_api_respond* calls, now
 * or later on the loop (see api/request.h for the context's lifetime). */
typedef void (*rm_api_handler_fn)(rm_api_req *req, void *ud);

typedef struct rm_api_route {
  const char *method;  /* "GET"; upper case */
  const char *pattern; /* as registered */
  rm_api_handler_fn fn;
  void *ud;
  /* Private: the pattern split into segments; params have is_param. */
  size_t nseg;
  struct rm__segment {
    char *text; /* literal, or the parameter's name */
    int is_param;
  } seg[RM_API_MAX_SEGMENTS];
} rm_api_route;

typedef struct rm_api_router {
  rm_api_route **routes; /* owned, registration order */
  size_t n, cap;
} rm_api_router;

void rm_api_router_init(rm_api_router *r);
void rm_api_router_free(rm_api_router *r);

/* Adds a route. method is a token of upper-case letters ("GET", "POST");
 * pattern as above, at most RM_API_MAX_PARAMS parameters with distinct
 * names of [A-Za-z_][A-Za-z0-9_]*. 0; RM_EINVAL for a bad method or
 * pattern; RM_EEXIST when the same method already has an equivalent
 * pattern (same literals, parameters in the same places); RM_ENOMEM.
 * Strings are copied. */
int rm_api_router_add(rm_api_router *r, const char *method, const char *pattern,
                      rm_api_handler_fn fn, void *ud);

size_t rm_api_router_count(const rm_api_router *r);
/* The i-th route in registration order (borrowed until router_free). */
const rm_api_route *rm_api_router_at(const rm_api_router *r, size_t i);

enum rm_api_match_result {
  RM_API_MATCHED = 0,
  RM_API_NO_MATCH = 1,     /* no pattern matches the path: 404 */
  RM_API_WRONG_METHOD = 2, /* a pattern matches, not for this method: 405 */
  RM_API_BAD_PATH = 3,     /* broken percent-encoding or an encoded NUL: 400 */
};

typedef struct rm_api_match {
  const rm_api_route *route; /* when RM_API_MATCHED */
  size_t nparams;
  struct {
    const char *name; /* borrowed from the route */
    char *value;      /* percent-decoded; owned, see rm_api_match_free */
  } params[RM_API_MAX_PARAMS];
  char allow[96]; /* when RM_API_WRONG_METHOD: "GET, HEAD, POST" */
} rm_api_match;

/* Matches method and the path (without its query; len bytes, not
 * NUL-terminated) against the table. Fills m; rm_api_match_free releases
 * the parameter values whatever the result. Returns an rm_api_match_result,
 * or RM_ENOMEM. */
int rm_api_router_match(const rm_api_router *r, const char *method, const char *path,
                        size_t len, rm_api_match *m);
void rm_api_match_free(rm_api_match *m);

/* Percent-decodes n bytes of s into a new NUL-terminated string (caller
 * frees); plus_is_space for query strings. NULL for a broken escape, an
 * encoded NUL, or when out of memory (*oom tells which). */
char *rm_api_pct_decode(const char *s, size_t n, int plus_is_space, int *oom);

#endif
