/* rm_api_server: the HTTP server of `restmon serve`, libh2o on the
 * caller's libuv loop.
 *
 * HTTP/1.1 only by default: Debian's libh2o 2.2.5 has had no release
 * since 2019 and its HTTP/2 stack predates the "Rapid Reset" attack
 * (CVE-2023-44487), so HTTP/2 (ALPN "h2", h2c upgrade, prior knowledge)
 * stays off unless opts.http2 asks for it, which is for listeners behind
 * a proxy that filters HTTP/2 abuse. TLS session resumption is off too
 * (no session cache, no tickets), as FIELD-NOTES.md advises for 2.2.5;
 * full handshakes cost little at this scale.
 *
 * Requests go through one dispatcher: the route table (api/router.h),
 * then, for GET/HEAD outside /api, the static folder with a single-page
 * application fallback to index.html. Every request is counted in the
 * metrics registry (when one is given) by method, route pattern and
 * status, and logged as one access line (component "http").
 *
 * Lifecycle: init, add routes, start, ... stop. After a successful init,
 * rm_api_server_stop must be called exactly once (also when start failed
 * or never ran); its callback runs on the loop when every handle is
 * closed and the struct may be freed there. */
#ifndef RM_API_SERVER_H
#define RM_API_SERVER_H

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "api/metrics.h"
#include "api/router.h"

#define RM_API_DEFAULT_MAX_BODY (1024 * 1024)

typedef struct rm_api_server_opts {
  const char *host;              /* numeric IPv4/IPv6 or a name; NULL = "127.0.0.1";
                                    "::" listens on IPv4 too */
  int port;                      /* 0 = an ephemeral port (rm_api_server_port) */
  const char *tls_cert_file;     /* PEM chain; with tls_key_file: HTTPS */
  const char *tls_key_file;      /* PEM private key */
  const char *tls_client_ca_file;/* PEM CAs: clients must present a certificate they signed */
  size_t max_body_bytes;         /* 0 = RM_API_DEFAULT_MAX_BODY; larger bodies get 413 */
  unsigned request_timeout_ms;   /* to receive a request, and keep-alive idle; 0 = 10 s */
  unsigned max_connections;      /* 0 = 1024; more are closed at once */
  const char *static_dir;        /* the web UI's build (web/dist); NULL = none */
  rm_metrics *metrics;           /* borrowed: per-route counts and latencies; may be NULL */
  bool http2;                    /* see above; off by default */
} rm_api_server_opts;

typedef struct rm_api_server rm_api_server;

/* 0 when every request finished in time; RM_ETIMEOUT when some were cut
 * at the deadline (their clients got 503 or a closed connection). */
typedef void (*rm_api_stop_cb)(rm_api_server *s, int status);

struct rm_api_server {
  /* Read-only for callers. */
  uv_loop_t *loop;
  rm_api_router router; /* the routes, listable (rm_api_router_at) until stop's callback */
  char errmsg[256]; /* why init or start failed */

  /* Private. */
  rm_api_server_opts opts; /* strings copied below */
  char *host, *cert, *key, *client_ca, *static_dir;
  uv_tcp_t listener;
  uv_timer_t timer; /* stop deadline, then the deferred finish */
  uv_check_t closer; /* closed last: its callback runs after h2o's handles */
  h2o_globalconf_t h2o_conf;
  h2o_context_t h2o_ctx;
  h2o_accept_ctx_t accept_ctx;
  h2o_pathconf_t *pathconf;
  SSL_CTX *ssl;
  struct rm__conn *conns; /* open connections (list) */
  size_t nconns;
  struct rm_api_req *pending; /* dispatched, not yet answered (list) */
  rm_metric *m_requests, *m_latency, *m_conns;
  void (*ready_fn)(struct rm_api_req *, void *); /* api/endpoints.h */
  void *ready_ud;
  bool conf_inited, ctx_inited, listening, started, stopping, finishing, forced;
  rm_api_stop_cb stop_cb;
};

/* Sets s up on loop with opts (copied). Does not listen yet. 0,
 * RM_EINVAL (s->errmsg says which option) or RM_ENOMEM. When it fails
 * nothing needs releasing and rm_api_server_stop must not be called. */
int rm_api_server_init(rm_api_server *s, uv_loop_t *loop, const rm_api_server_opts *opts);

/* Adds a route (api/router.h); only before start. 0, RM_EINVAL (also
 * after start), RM_EEXIST, RM_ENOMEM. */
int rm_api_server_route(rm_api_server *s, const char *method, const char *pattern,
                        rm_api_handler_fn fn, void *ud);

/* Loads TLS material, binds and listens. 0, or RM_EINVAL / RM_EIO with
 * s->errmsg naming the option and the cause ("tls_key_file: ...",
 * "listen 127.0.0.1:80: permission denied"). Ignores SIGPIPE process-wide:
 * a client that closes mid-answer must not kill the process. */
int rm_api_server_start(rm_api_server *s);

/* The port bound (the ephemeral one for port 0); 0 when not listening. */
int rm_api_server_port(const rm_api_server *s);

/* Graceful stop: stops accepting at once, lets requests in flight finish
 * (keep-alive connections close after their current answer), and after
 * grace_ms gives up on what is left (abort hooks, 503, connections
 * closed). cb runs once everything is released. Calling it again does
 * nothing (and returns RM_EINVAL). */
int rm_api_server_stop(rm_api_server *s, unsigned grace_ms, rm_api_stop_cb cb);

#endif
