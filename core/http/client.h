/* rm_http: an asynchronous HTTP client on libcurl's multi_socket API,
 * driven by a libuv loop.
 *
 * Many requests run at once on one thread; connections are reused between
 * requests to the same host; name resolution uses curl's threaded
 * resolver, so nothing blocks the loop. TLS verification is on unless a
 * request turns it off. Bodies are capped while they are decoded, not only
 * by Content-Length. */
#ifndef RM_HTTP_CLIENT_H
#define RM_HTTP_CLIENT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "util/buf.h"

#define RM_HTTP_IDLE_EASY 64
#define RM_HTTP_MAX_IDLE_CONNECTIONS 1024

typedef struct rm_http_client {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  struct rm_http_request *active; /* requests in flight (list) */
  size_t in_flight;
  size_t sockets_open; /* poll handles not yet closed */
  bool closing;
  void (*close_cb)(struct rm_http_client *);
  /* Easy handles of finished requests, reset, for the next ones: a new
   * handle costs a few kilobytes of allocation per request. */
  void *idle[RM_HTTP_IDLE_EASY];
  size_t nidle;
} rm_http_client;

typedef struct rm_http_timings {
  double dns_ms, connect_ms, tls_ms, first_byte_ms, total_ms;
} rm_http_timings;

typedef struct rm_http_request rm_http_request;

/* Called once when a request finishes, successfully or not (r->err). It
 * is never called for a request whose rm_http_send failed or that was
 * cancelled. The request may be cleaned up inside the callback. */
typedef void (*rm_http_done_cb)(rm_http_request *r);

struct rm_http_request {
  /* Set by the caller before rm_http_send; borrowed until the callback. */
  const char *method;          /* NULL = GET */
  const char *url;
  struct curl_slist *headers;  /* "Name: value" lines */
  const char *body;            /* may be NULL */
  size_t body_len;
  long timeout_ms;             /* whole transfer; 0 = none */
  bool insecure;               /* skip TLS certificate and host checks */
  bool follow_redirects;
  long max_redirects;            /* with follow_redirects; < 0 = 5 */
  size_t max_response_bytes;   /* 0 = 10 MiB */
  int http_version;            /* 0 negotiate, 11 HTTP/1.1, 2 HTTP/2 */
  bool fresh_connect;          /* new connection (certificate checks) */
  void *data;                  /* for the caller */

  /* Results, valid in the callback; freed by rm_http_request_cleanup. */
  int err;                     /* 0 or RM_E* */
  char errmsg[CURL_ERROR_SIZE + 64];
  long status;
  char http_version_str[8];    /* "1.1", "2" */
  rm_buf resp_headers;         /* raw header block of the final response */
  rm_buf resp_body;
  size_t body_size;            /* bytes received (decoded) */
  bool too_big;
  bool request_sent;           /* some request bytes reached the server */
  rm_http_timings timings;
  char *effective_url;         /* after redirects; malloc'ed */

  /* Private. */
  rm_http_client *client;
  CURL *easy;
  rm_http_done_cb cb;
  struct rm_http_request *prev, *next;
};

/* Sets up the client on loop. 0 or RM_ENOMEM. */
int rm_http_client_init(rm_http_client *c, uv_loop_t *loop);

/* Cancels what is in flight (no callbacks) and closes the client's handles;
 * close_cb runs when they are closed and the client may be freed. */
void rm_http_client_close(rm_http_client *c, void (*close_cb)(rm_http_client *));

/* Starts r. 0, or a negative RM_E* (then cb is never called and nothing
 * needs cancelling; results still need rm_http_request_cleanup). */
int rm_http_send(rm_http_client *c, rm_http_request *r, rm_http_done_cb cb);

/* Stops r if it is in flight; its callback will not run. Safe to call on
 * a finished or never-started request. */
void rm_http_cancel(rm_http_request *r);

/* Frees the results (headers, body, effective URL). Does not free r. */
void rm_http_request_cleanup(rm_http_request *r);

/* Calls fn(ud, name, value) for each header of the final response, in
 * order (names as sent). */
void rm_http_each_header(const rm_http_request *r,
                         void (*fn)(void *ud, const char *name, size_t nlen,
                                    const char *value, size_t vlen),
                         void *ud);

#endif
