/* Internals shared by the server's files (server.c, dispatch.c, static.c,
 * request.c, response.c, endpoints.c). Not for handlers. */
#ifndef RM_API_SERVER_INTERNAL_H
#define RM_API_SERVER_INTERNAL_H

#include <h2o.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "api/request.h"
#include "api/router.h"
#include "api/server.h"

#define RM__REQUEST_ID_MAX 128

/* One accepted connection. h2o owns the socket; we own this record and
 * free it in the uv close callback h2o calls last. */
struct rm__conn {
  uv_tcp_t tcp; /* first: the close callback gets &tcp */
  rm_api_server *srv;
  h2o_socket_t *sock; /* NULL once h2o disposed of it */
  size_t busy;        /* requests dispatched on it that h2o still holds */
  bool shut;          /* shutdown(2) done: h2o will see EOF and close */
  struct rm__conn *prev, *next;
};

/* The link between h2o's request and ours, allocated in the request's
 * pool: its dispose callback runs when h2o is done with the request
 * (answered and written, or the connection torn down). */
struct rm__hook {
  rm_api_server *srv;
  struct rm__conn *conn; /* whose busy count this request holds; may be NULL */
  struct rm_api_req *ctx; /* our context while it is not answered */
};

typedef struct rm__kv {
  const char *name, *value;
} rm__kv;

typedef struct rm__chunk rm__chunk;

struct rm_api_req {
  rm_api_server *srv;  /* NULL once detached */
  h2o_req_t *h2o;      /* NULL once detached */
  struct rm__hook *hook;
  const rm_api_route *route;
  const char *method, *path, *id, *allow;
  char peer[64];
  rm__kv params[RM_API_MAX_PARAMS];
  size_t nparams;
  rm__kv *query, *headers, *resp_headers;
  size_t nquery, nheaders, nresp, capresp;
  const char *body;
  size_t body_len;
  json_t *json;
  void *user;
  void (*user_free)(void *);
  rm_api_abort_fn abort_fn;
  void *abort_ud;
  bool aborting; /* inside the abort hook: answering does not free */
  bool answered;
  rm__chunk *arena;
  struct rm_api_req *prev, *next; /* srv->pending */
};

/* request.c */

/* A context for h2o request req (route may be NULL: 404/405 answers),
 * linked into s->pending and to hook. id is the request id to use. NULL
 * when out of memory. *bad_query is set when the query string has a
 * broken escape (the caller answers 400). */
rm_api_req *rm__req_new(rm_api_server *s, h2o_req_t *req, struct rm__hook *hook,
                        const char *id, bool *bad_query);
/* Takes the route and parameter values of m (m is left empty). 0 or
 * RM_ENOMEM. */
int rm__req_take_params(rm_api_req *r, rm_api_match *m);
/* A copy of n bytes in r's arena (NUL-terminated); NULL when out of memory. */
char *rm__req_strndup(rm_api_req *r, const char *s, size_t n);
/* Unlinks r from the server and from h2o's request. */
void rm__req_detach(rm_api_req *r);
/* The server gives up on r: runs its abort hook, answers 503 when the h2o
 * request is still there and the hook did not answer, then frees r; an
 * r without a hook is left detached for the handler's answer to free. */
void rm__req_abort(rm_api_req *r);
void rm__req_free(rm_api_req *r);
/* The request id for req: its X-Request-ID or RequestID header when it
 * is sane, else a new UUID. */
void rm__request_id(h2o_req_t *req, char out[RM__REQUEST_ID_MAX + 1]);

/* response.c */

/* Answers r with status, content type and body (taken: malloc'ed, freed
 * here; NULL gives a bare 500). Frees r unless inside its abort hook. See
 * api/response.h for the return values. */
int rm__respond(rm_api_req *r, int status, const char *ctype, char *body, size_t len);
/* Sends the answer on r's h2o request and detaches r, without freeing r.
 * r must be attached. 0 or RM_ENOMEM (a bare 500 went out). */
int rm__send(rm_api_req *r, int status, const char *ctype, char *body, size_t len);
/* The generator of answers sent in one final call: h2o needs one to
 * start a response and never asks it for more. */
extern h2o_generator_t rm__one_shot;
/* The reason phrase of a status ("Not Found"). */
const char *rm__reason(int status);
/* Hands body (malloc'ed) to req's pool: freed when h2o frees the request. */
h2o_iovec_t rm__pool_take(h2o_req_t *req, char *body, size_t len);
/* Adds a header whose name and value are copied into req's pool. */
void rm__add_header(h2o_req_t *req, const char *name, const char *value);

/* dispatch.c */

/* Registers the dispatcher, the error filter and the access logger. */
int rm__dispatch_setup(rm_api_server *s, h2o_hostconf_t *host);
/* The route label of requests that matched no route. */
extern const char rm__route_static[], rm__route_unmatched[];
/* Records the route label of req for the access log and metrics. */
void rm__set_route_label(h2o_req_t *req, const char *label);
/* A hook for req in its pool holding a busy count on conn (may be NULL). */
struct rm__hook *rm__hook_new(rm_api_server *s, h2o_req_t *req, struct rm__conn *conn);

/* static.c */

/* Registers h2o's file handler for s->static_dir and the fallback
 * handler behind it (SPA index.html, or 404). */
int rm__static_setup(rm_api_server *s, h2o_pathconf_t *pc);
/* Whether a GET/HEAD for path (len bytes) goes to the static files. */
bool rm__static_wants(const rm_api_server *s, const char *path, size_t len);

/* server.c */

/* The connection record of req (NULL when unknown). */
struct rm__conn *rm__conn_of(h2o_req_t *req);
/* A request on c is done: closes c when the server stops and c is idle. */
void rm__conn_release(struct rm__conn *c);

#endif
