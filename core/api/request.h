/* rm_api_req: what a route handler sees of one HTTP request.
 *
 * Lifetime: the server creates the context before calling the handler and
 * frees it inside the one rm_api_respond* call (api/response.h) that
 * answers it. A handler may answer at once or later on the loop (after a
 * store callback, a timer): the context stays valid until it answers, and
 * answering is safe even when the client has gone away meanwhile (the
 * answer is then dropped).
 *
 * Abort: when the server gives up on a request before it was answered
 * (the connection was torn down, or a stop ran out of time), it calls the
 * hook set with rm_api_req_on_abort so the handler can cancel its pending
 * work; it answers 503 itself if the hook did not answer, and frees the
 * context right after the hook returns. Without a hook the context waits
 * for the handler's answer, which is then only freed: a handler that may
 * never answer must set a hook.
 *
 * Every string returned here belongs to the context and lives until the
 * answer. Loop thread only. */
#ifndef RM_API_REQUEST_H
#define RM_API_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/router.h"

/* Request method ("GET"), path without the query ("/api/v1/runs/7",
 * still percent-encoded as received), and the request id: the client's
 * X-Request-ID (or RequestID) when it is 1-128 characters of
 * [A-Za-z0-9._:-], else a new UUID. The response always carries it. */
const char *rm_api_req_method(const rm_api_req *r);
const char *rm_api_req_path(const rm_api_req *r);
const char *rm_api_req_id(const rm_api_req *r);
/* The client's address ("127.0.0.1", "::1"); "" when unknown. */
const char *rm_api_req_peer(const rm_api_req *r);
/* The matched route (its pattern is the metrics label). */
const rm_api_route *rm_api_req_route(const rm_api_req *r);

/* A path parameter of the route ("id" of "/runs/{id}"), percent-decoded;
 * NULL when the route has no such parameter. */
const char *rm_api_req_param(const rm_api_req *r, const char *name);

/* The first value of a query parameter, decoded ('+' is a space); "" for
 * "?flag", NULL when absent. */
const char *rm_api_req_query(const rm_api_req *r, const char *name);
/* All query parameters in order, repeated names included. */
size_t rm_api_req_query_count(const rm_api_req *r);
void rm_api_req_query_at(const rm_api_req *r, size_t i, const char **name, const char **value);

/* The first request header of that name (case-insensitive), or NULL. */
const char *rm_api_req_header(const rm_api_req *r, const char *name);

/* The raw body (NUL-terminated after len bytes; "" and 0 when none). */
const char *rm_api_req_body(const rm_api_req *r, size_t *len);

/* The body parsed as JSON (duplicate keys rejected), parsed on the first
 * call. On success returns the value, borrowed until the answer. When the
 * body is empty or malformed it answers 400 (code 40001; the detail gives
 * line and column) and returns NULL: the handler must then return without
 * touching r. */
json_t *rm_api_req_json(rm_api_req *r);

/* Checks that the object obj (at JSON path `path`; "$" for the body) has
 * only keys from allowed (NULL-terminated). When it has others it answers
 * 422 (code 42201) with one detail per unknown key and returns false: the
 * handler must then return without touching r. true when all keys are
 * known (or obj is not an object). For nested objects collect details
 * with rm_api_details_unknown_fields instead and answer once. */
bool rm_api_req_only_fields(rm_api_req *r, const json_t *obj, const char *path,
                            const char *const *allowed);

/* The page a list request asks for: ?page= (from 1, default 1) and
 * ?page_size= (1..max_size, default def_size). On a bad value it answers
 * 400 (code 40002, detail path "query.page" or "query.page_size") and
 * returns false: the handler must then return without touching r. */
typedef struct rm_api_page {
  long page;
  long page_size;
} rm_api_page;
bool rm_api_req_page(rm_api_req *r, long def_size, long max_size, rm_api_page *out);

/* A slot for the authentication layer: the user (or session) the request
 * acts for. free_fn (may be NULL) runs on the value when the context is
 * freed or the slot is set again. */
void rm_api_req_set_user(rm_api_req *r, void *user, void (*free_fn)(void *));
void *rm_api_req_user(const rm_api_req *r);

/* Sets the abort hook (see above); fn NULL removes it. */
typedef void (*rm_api_abort_fn)(rm_api_req *r, void *ud);
void rm_api_req_on_abort(rm_api_req *r, rm_api_abort_fn fn, void *ud);

#endif
