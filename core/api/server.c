/* The server's lifecycle: h2o configuration, TLS, the listener, the
 * connections we hand to h2o, and the graceful stop. */
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api/server_internal.h"
#include "util/err.h"
#include "util/log.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_CONNECTIONS 1024

/* ALPN lists: HTTP/1.1 only unless opts.http2 (see server.h). */
static const h2o_iovec_t alpn_http1[] = {{H2O_STRLIT("http/1.1")}, {NULL, 0}};

static void fail(rm_api_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(rm_api_server *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
  va_end(ap);
}

static void free_strings(rm_api_server *s) {
  free(s->host);
  free(s->cert);
  free(s->key);
  free(s->client_ca);
  free(s->static_dir);
  s->host = s->cert = s->key = s->client_ca = s->static_dir = NULL;
}

static int copy_opt(char **dst, const char *src) {
  *dst = NULL;
  if (!src) return 0;
  return (*dst = strdup(src)) ? 0 : RM_ENOMEM;
}

static int create_metrics(rm_api_server *s) {
  static const char *req_labels[] = {"method", "route", "status", NULL};
  static const char *lat_labels[] = {"method", "route", NULL};
  rm_metrics *m = s->opts.metrics;
  s->m_requests = rm_metrics_counter(m, "restmon_http_requests_total",
                                     "HTTP requests answered, by method, route pattern and status.",
                                     req_labels);
  s->m_latency = rm_metrics_histogram(m, "restmon_http_request_duration_seconds",
                                      "Time from the start of a request to the end of its answer.",
                                      lat_labels, NULL, 0);
  s->m_conns = rm_metrics_gauge(m, "restmon_http_connections", "Open HTTP connections.", NULL);
  return s->m_requests && s->m_latency && s->m_conns ? 0 : RM_EINVAL;
}

int rm_api_server_init(rm_api_server *s, uv_loop_t *loop, const rm_api_server_opts *opts) {
  memset(s, 0, sizeof *s);
  s->loop = loop;
  s->opts = *opts;
  if (!s->opts.host) s->opts.host = "127.0.0.1";
  if (!s->opts.max_body_bytes) s->opts.max_body_bytes = RM_API_DEFAULT_MAX_BODY;
  if (!s->opts.request_timeout_ms) s->opts.request_timeout_ms = DEFAULT_TIMEOUT_MS;
  if (!s->opts.max_connections) s->opts.max_connections = DEFAULT_MAX_CONNECTIONS;
  if (s->opts.port < 0 || s->opts.port > 65535) {
    fail(s, "port: %d is not a TCP port (0-65535)", s->opts.port);
    return RM_EINVAL;
  }
  if (!opts->tls_cert_file != !opts->tls_key_file) {
    fail(s, "%s: TLS needs both tls_cert_file and tls_key_file",
         opts->tls_cert_file ? "tls_key_file" : "tls_cert_file");
    return RM_EINVAL;
  }
  if (opts->tls_client_ca_file && !opts->tls_cert_file) {
    fail(s, "tls_client_ca_file: client certificates need TLS (tls_cert_file, tls_key_file)");
    return RM_EINVAL;
  }
  int rc = copy_opt(&s->host, s->opts.host);
  if (rc == 0) rc = copy_opt(&s->cert, opts->tls_cert_file);
  if (rc == 0) rc = copy_opt(&s->key, opts->tls_key_file);
  if (rc == 0) rc = copy_opt(&s->client_ca, opts->tls_client_ca_file);
  if (rc == 0) rc = copy_opt(&s->static_dir, opts->static_dir);
  if (rc == 0 && s->opts.metrics && create_metrics(s) != 0) {
    fail(s, "metrics: the registry already has the HTTP server's metrics");
    rc = RM_EINVAL;
  }
  if (rc) {
    if (rc == RM_ENOMEM) fail(s, "out of memory");
    free_strings(s);
    return rc;
  }
  s->opts.host = s->host;
  s->opts.tls_cert_file = s->cert;
  s->opts.tls_key_file = s->key;
  s->opts.tls_client_ca_file = s->client_ca;
  s->opts.static_dir = s->static_dir;
  rm_api_router_init(&s->router);
  uv_timer_init(loop, &s->timer);
  uv_check_init(loop, &s->closer);
  return 0;
}

int rm_api_server_route(rm_api_server *s, const char *method, const char *pattern,
                        rm_api_handler_fn fn, void *ud) {
  if (s->started || s->stopping) return RM_EINVAL;
  return rm_api_router_add(&s->router, method, pattern, fn, ud);
}

/* ---- TLS ------------------------------------------------------------ */

static const char *ssl_error(void) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  return r ? r : "unknown TLS error";
}

static int setup_tls(rm_api_server *s) {
  SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
  if (!ssl) {
    fail(s, "tls: cannot create a TLS context: %s", ssl_error());
    return RM_ENOMEM;
  }
  s->ssl = ssl;
  SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
  /* No resumption (see server.h): no session cache, no tickets. */
  SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ssl, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_num_tickets(ssl, 0);
  if (SSL_CTX_use_certificate_chain_file(ssl, s->cert) != 1) {
    fail(s, "tls_cert_file: cannot load %s: %s", s->cert, ssl_error());
    return RM_EINVAL;
  }
  if (SSL_CTX_use_PrivateKey_file(ssl, s->key, SSL_FILETYPE_PEM) != 1) {
    fail(s, "tls_key_file: cannot load %s: %s", s->key, ssl_error());
    return RM_EINVAL;
  }
  if (SSL_CTX_check_private_key(ssl) != 1) {
    fail(s, "tls_key_file: %s does not match the certificate in %s", s->key, s->cert);
    ERR_clear_error();
    return RM_EINVAL;
  }
  if (s->client_ca) {
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(s->client_ca);
    if (!names || SSL_CTX_load_verify_locations(ssl, s->client_ca, NULL) != 1) {
      if (names) sk_X509_NAME_pop_free(names, X509_NAME_free);
      fail(s, "tls_client_ca_file: cannot load %s: %s", s->client_ca, ssl_error());
      return RM_EINVAL;
    }
    SSL_CTX_set_client_CA_list(ssl, names);
    SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  }
  h2o_ssl_register_alpn_protocols(ssl, s->opts.http2 ? h2o_alpn_protocols : alpn_http1);
  return 0;
}

/* ---- connections ---------------------------------------------------- */

static void free_rejected(uv_handle_t *h) { free(h); }

static void maybe_finish(rm_api_server *s);

static void on_conn_closed(uv_handle_t *h) {
  struct rm__conn *c = (struct rm__conn *)h;
  rm_api_server *s = c->srv;
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->nconns--;
  if (s->m_conns) rm_metric_set(s->m_conns, NULL, (double)s->nconns);
  free(c);
  maybe_finish(s);
}

static void on_sock_disposed(void *data) { ((struct rm__conn *)data)->sock = NULL; }

/* Ends a connection that holds no request of ours: h2o, reading for the
 * next request (or a TLS handshake), sees end-of-stream and closes it;
 * a write in progress fails and closes it too. */
static void conn_shutdown(struct rm__conn *c) {
  uv_os_fd_t fd;
  if (c->shut || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) return;
  c->shut = true;
  shutdown(fd, SHUT_RDWR);
}

struct rm__conn *rm__conn_of(h2o_req_t *req) {
  if (!req->conn->callbacks->get_socket) return NULL;
  h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
  return sock && sock->on_close.cb == on_sock_disposed ? sock->on_close.data : NULL;
}

void rm__conn_release(struct rm__conn *c) {
  if (!c) return;
  if (c->busy) c->busy--;
  if (c->srv->stopping && c->busy == 0) conn_shutdown(c);
}

static void on_connection(uv_stream_t *listener, int status) {
  rm_api_server *s = (rm_api_server *)((char *)listener - offsetof(rm_api_server, listener));
  if (status < 0) {
    rm_log_warn("http", "accept failed: %s", uv_strerror(status));
    return;
  }
  struct rm__conn *c = calloc(1, sizeof *c);
  if (!c) {
    rm_log_error("http", "out of memory accepting a connection");
    return;
  }
  uv_tcp_init(s->loop, &c->tcp);
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || s->stopping ||
      s->nconns >= s->opts.max_connections) {
    if (s->nconns >= s->opts.max_connections)
      rm_log_warn("http", "connection refused: %u connections are open", s->opts.max_connections);
    uv_close((uv_handle_t *)&c->tcp, free_rejected);
    return;
  }
  c->srv = s;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  if (s->m_conns) rm_metric_set(s->m_conns, NULL, (double)s->nconns);
  uv_tcp_nodelay(&c->tcp, 1);
  c->sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_closed);
  c->sock->on_close.cb = on_sock_disposed;
  c->sock->on_close.data = c;
  h2o_accept(&s->accept_ctx, c->sock);
}

/* ---- start ---------------------------------------------------------- */

static int listen_on(rm_api_server *s) {
  char port[8];
  snprintf(port, sizeof port, "%d", s->opts.port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  struct addrinfo *ai = NULL;
  int gai = getaddrinfo(s->host, port, &hints, &ai);
  if (gai != 0 || !ai) {
    fail(s, "host: cannot resolve '%s': %s", s->host, gai_strerror(gai));
    return RM_EINVAL;
  }
  uv_tcp_init(s->loop, &s->listener);
  s->listening = true; /* the handle exists: stop closes it */
  int rc = uv_tcp_bind(&s->listener, ai->ai_addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, SOMAXCONN, on_connection);
  freeaddrinfo(ai);
  if (rc != 0) {
    fail(s, "listen %s:%d: %s", s->host, s->opts.port, uv_strerror(rc));
    return RM_EIO;
  }
  return 0;
}

int rm_api_server_start(rm_api_server *s) {
  if (s->started || s->stopping) {
    fail(s, "the server was already started");
    return RM_EINVAL;
  }
  s->started = true;
  signal(SIGPIPE, SIG_IGN);
  h2o_config_init(&s->h2o_conf);
  s->conf_inited = true;
  s->h2o_conf.server_name = h2o_iovec_init(H2O_STRLIT("restmon"));
  s->h2o_conf.max_request_entity_size = s->opts.max_body_bytes;
  s->h2o_conf.http1.req_timeout = s->opts.request_timeout_ms;
  s->h2o_conf.http1.upgrade_to_http2 = s->opts.http2;
  s->h2o_conf.handshake_timeout = s->opts.request_timeout_ms;
  h2o_hostconf_t *host = h2o_config_register_host(&s->h2o_conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  s->pathconf = h2o_config_register_path(host, "/", 0);
  /* Order matters: the dispatcher first, then the file handler and its
   * fallback, which see only what the dispatcher passes on. */
  int rc = rm__dispatch_setup(s, host);
  if (rc == 0) rc = rm__static_setup(s, s->pathconf);
  if (rc == 0 && s->cert) rc = setup_tls(s);
  if (rc) return rc;
  h2o_context_init(&s->h2o_ctx, s->loop, &s->h2o_conf);
  s->ctx_inited = true;
  s->accept_ctx.ctx = &s->h2o_ctx;
  s->accept_ctx.hosts = s->h2o_conf.hosts;
  s->accept_ctx.ssl_ctx = s->ssl;
  rc = listen_on(s);
  if (rc == 0)
    rm_log_info("http", "listening on %s port %d%s", s->host, rm_api_server_port(s),
                s->ssl ? " (TLS)" : "");
  return rc;
}

int rm_api_server_port(const rm_api_server *s) {
  if (!s->listening) return 0;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return 0;
}

/* ---- stop ----------------------------------------------------------- */

static void on_closer_closed(uv_handle_t *h) {
  rm_api_server *s = (rm_api_server *)((char *)h - offsetof(rm_api_server, closer));
  free_strings(s);
  rm_api_stop_cb cb = s->stop_cb;
  if (cb) cb(s, s->forced ? RM_ETIMEOUT : 0);
}

/* h2o closed its timers in the same loop iteration as this handle, and
 * libuv finishes closes newest first: the closer, closed from here, ends
 * in the next iteration, after every h2o handle. */
static void on_timer_closed(uv_handle_t *h) {
  rm_api_server *s = (rm_api_server *)((char *)h - offsetof(rm_api_server, timer));
  uv_close((uv_handle_t *)&s->closer, on_closer_closed);
}

static void on_finish(uv_timer_t *t) {
  rm_api_server *s = (rm_api_server *)((char *)t - offsetof(rm_api_server, timer));
  if (s->ctx_inited) {
    /* HTTP/2's graceful shutdown leaves a one-second timer entry that
     * h2o_context_dispose would find still linked. */
    h2o_timeout_entry_t *e = &s->h2o_ctx.http2._graceful_shutdown_timeout;
    if (h2o_timeout_is_linked(e)) h2o_timeout_unlink(e);
    h2o_context_dispose(&s->h2o_ctx);
  }
  if (s->conf_inited) h2o_config_dispose(&s->h2o_conf);
  if (s->ssl) SSL_CTX_free(s->ssl);
  s->ssl = NULL;
  s->ctx_inited = s->conf_inited = false;
  rm_api_router_free(&s->router);
  uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

/* Once nothing is left, the release runs from a timer callback of its
 * own, not from the close callback inside h2o that got here. */
static void maybe_finish(rm_api_server *s) {
  if (!s->stopping || s->nconns || s->listening || s->finishing) return;
  s->finishing = true;
  uv_timer_stop(&s->timer);
  uv_timer_start(&s->timer, on_finish, 0, 0);
}

static void on_listener_closed(uv_handle_t *h) {
  rm_api_server *s = (rm_api_server *)((char *)h - offsetof(rm_api_server, listener));
  s->listening = false;
  maybe_finish(s);
}

static void on_deadline(uv_timer_t *t) {
  rm_api_server *s = (rm_api_server *)((char *)t - offsetof(rm_api_server, timer));
  if (s->pending || s->conns) {
    s->forced = true;
    rm_log_warn("http", "stop: giving up on %zu connection(s) after the grace period", s->nconns);
  }
  while (s->pending) rm__req_abort(s->pending);
  for (struct rm__conn *c = s->conns; c; c = c->next) conn_shutdown(c);
  maybe_finish(s);
}

int rm_api_server_stop(rm_api_server *s, unsigned grace_ms, rm_api_stop_cb cb) {
  if (s->stopping) return RM_EINVAL;
  s->stopping = true;
  s->stop_cb = cb;
  if (s->listening) uv_close((uv_handle_t *)&s->listener, on_listener_closed);
  if (s->ctx_inited) h2o_context_request_shutdown(&s->h2o_ctx);
  for (struct rm__conn *c = s->conns; c; c = c->next)
    if (c->busy == 0) conn_shutdown(c);
  uv_timer_start(&s->timer, on_deadline, grace_ms, 0);
  maybe_finish(s);
  return 0;
}
