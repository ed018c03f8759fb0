/* restmon serve: the REST API server with its in-process executor;
 * restmon check-config: validates and prints every setting.
 *
 * First slice of issue 5: health, readiness, metrics, login sessions,
 * the run routes (list, detail, cancel, rerun, resume, annotate,
 * acknowledge). Sessions are store documents of kind "session" whose id
 * is the SHA-256 of the token (the token itself is never stored). */
#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/endpoints.h"
#include "api/metrics.h"
#include "api/request.h"
#include "api/response.h"
#include "api/server.h"
#include "auth/password.h"
#include "auth/ratelimit.h"
#include "auth/rbac.h"
#include "auth/token.h"
#include "cli/cmds.h"
#include "cli/common.h"
#include "config/config.h"
#include "engine/executor.h"
#include "secret/vault.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"

#define MAX_HASHING 2 /* password verifications at once */

/* ---- settings ------------------------------------------------------------ */

typedef struct settings {
  char host[128];
  int port;
  uint64_t threads, retry_ms, concurrency, lease_ms, body_bytes, session_ttl_s;
  uint64_t retention_success_ms, retention_failed_ms;
  int log_level, log_format;
} settings;

static const char *const number_keys[] = {"database.threads",  "database.retry_ms", "executor.concurrency",
                                          "executor.lease_ms", "runs.record_body_bytes",
                                          "auth.session_ttl_s", NULL};

static int parse_listen(const char *v, char *host, size_t hn, int *port) {
  const char *colon;
  const char *h = v;
  size_t hl;
  if (*v == '[') {
    const char *close = strchr(v, ']');
    if (!close || close[1] != ':') return RM_EINVAL;
    h = v + 1;
    hl = (size_t)(close - h);
    colon = close + 1;
  } else {
    colon = strrchr(v, ':');
    if (!colon || strchr(v, ':') != colon) return RM_EINVAL;
    hl = (size_t)(colon - v);
  }
  if (hl == 0 || hl >= hn) return RM_EINVAL;
  const char *p = colon + 1;
  if (!*p || strlen(p) > 5) return RM_EINVAL;
  for (const char *q = p; *q; q++)
    if (*q < '0' || *q > '9') return RM_EINVAL;
  long n = atol(p);
  if (n > 65535) return RM_EINVAL;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = (int)n;
  return 0;
}

/* Validates every setting; each problem goes to stderr. Returns the count. */
static int check_settings(const rm_config *cfg, settings *st) {
  int problems = 0;
  char err[600];
  memset(st, 0, sizeof *st);
  uint64_t *dst[] = {&st->threads, &st->retry_ms, &st->concurrency, &st->lease_ms, &st->body_bytes,
                     &st->session_ttl_s};
  for (size_t i = 0; number_keys[i]; i++)
    if (rm_config_u64(cfg, number_keys[i], dst[i], err, sizeof err) != 0) {
      fprintf(stderr, "%s\n", err);
      problems++;
    }
  if (st->concurrency == 0 && !problems) {
    fprintf(stderr, "executor.concurrency (%s): must be at least 1\n", rm_config_source(cfg, "executor.concurrency"));
    problems++;
  }
  if (st->lease_ms && st->lease_ms < 100) {
    fprintf(stderr, "executor.lease_ms (%s): must be at least 100\n", rm_config_source(cfg, "executor.lease_ms"));
    problems++;
  }
  if (rm_config_u64(cfg, "auth.session_ttl_s", &st->session_ttl_s, err, sizeof err) == 0 && st->session_ttl_s == 0) {
    fprintf(stderr, "auth.session_ttl_s (%s): must be at least 1\n", rm_config_source(cfg, "auth.session_ttl_s"));
    problems++;
  }
  static const char *const day_keys[] = {"retention.succeeded_days", "retention.failed_days"};
  uint64_t *ddst[] = {&st->retention_success_ms, &st->retention_failed_ms};
  for (int i = 0; i < 2; i++)
    if (rm_config_days_ms(cfg, day_keys[i], ddst[i], err, sizeof err) != 0) {
      fprintf(stderr, "%s\n", err);
      problems++;
    }
  if ((st->log_level = rm_log_level_parse(rm_config_str(cfg, "log.level"))) < 0) {
    fprintf(stderr, "log.level = \"%s\" (%s): expected debug, info, warn or error\n", rm_config_str(cfg, "log.level"),
            rm_config_source(cfg, "log.level"));
    problems++;
  }
  const char *fmt = rm_config_str(cfg, "log.format");
  if (strcmp(fmt, "text") == 0) st->log_format = RM_LOG_TEXT;
  else if (strcmp(fmt, "json") == 0) st->log_format = RM_LOG_JSON;
  else {
    fprintf(stderr, "log.format = \"%s\" (%s): expected text or json\n", fmt, rm_config_source(cfg, "log.format"));
    problems++;
  }
  const char *db = rm_config_str(cfg, "database");
  if (strncmp(db, "sqlite:", 7) != 0 && strncmp(db, "postgresql://", 13) != 0 && strncmp(db, "postgres://", 11) != 0) {
    fprintf(stderr, "database = \"%s\" (%s): expected sqlite:PATH or postgresql://...\n", db,
            rm_config_source(cfg, "database"));
    problems++;
  }
  const char *listen = rm_config_str(cfg, "listen");
  if (parse_listen(listen, st->host, sizeof st->host, &st->port) != 0) {
    fprintf(stderr, "listen = \"%s\" (%s): expected HOST:PORT (port 0-65535; [v6addr]:PORT)\n", listen,
            rm_config_source(cfg, "listen"));
    problems++;
  }
  static const char *const files[] = {"tls.cert_file", "tls.key_file", "tls.client_ca_file"};
  for (int i = 0; i < 3; i++) {
    const char *f = rm_config_str(cfg, files[i]);
    if (*f && access(f, R_OK) != 0) {
      fprintf(stderr, "%s = \"%s\" (%s): cannot read the file\n", files[i], f, rm_config_source(cfg, files[i]));
      problems++;
    }
  }
  bool cert = *rm_config_str(cfg, "tls.cert_file"), key = *rm_config_str(cfg, "tls.key_file");
  if (cert != key) {
    fprintf(stderr, "tls.cert_file and tls.key_file: set both or neither\n");
    problems++;
  }
  if (*rm_config_str(cfg, "tls.client_ca_file") && !cert) {
    fprintf(stderr, "tls.client_ca_file needs tls.cert_file and tls.key_file\n");
    problems++;
  }
  const char *web = rm_config_str(cfg, "web.dir");
  struct stat sb;
  if (*web && stat(web, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
    fprintf(stderr, "web.dir = \"%s\" (%s): not a folder\n", web, rm_config_source(cfg, "web.dir"));
    problems++;
  }
  if (!*rm_config_str(cfg, "vault.key_file") && !getenv(RM_VAULT_KEY_ENV)) {
    fprintf(stderr, "vault.key_file: must be set (or %s)\n", RM_VAULT_KEY_ENV);
    problems++;
  }
  return problems;
}

int rm_cmd_check_config(int argc, char **argv) {
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *config = NULL;
  int ch;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    if (ch == 'c') config = optarg;
    else {
      fprintf(ch == 'h' ? stdout : stderr,
              "usage: restmon check-config [-c FILE]\n"
              "loads and validates every setting and prints each as key = value (source)\n");
      return ch == 'h' ? RM_EXIT_OK : RM_EXIT_INVALID;
    }
  }
  rm_config *cfg = NULL;
  char err[600];
  if (rm_config_load(&cfg, config, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return RM_EXIT_INVALID;
  }
  settings st;
  int problems = check_settings(cfg, &st);
  for (size_t i = 0; rm_config_key_at(i); i++) {
    const char *k = rm_config_key_at(i);
    printf("%s = %s (%s)\n", k, rm_config_str(cfg, k), rm_config_source(cfg, k));
  }
  if (problems) fprintf(stderr, "%d problem(s) in the configuration\n", problems);
  rm_config_free(cfg);
  return problems ? RM_EXIT_INVALID : RM_EXIT_OK;
}

/* ---- the server ------------------------------------------------------------ */

typedef struct serve {
  uv_loop_t loop;
  rm_http_client http;
  rm_lua_host host;
  rm_store *store;
  rm_executor *ex;
  rm_vault *vault;
  rm_api_server srv;
  rm_metrics metrics;
  rm_metric *g_exec, *g_slots;
  rm_login_guard guard;
  uv_signal_t sigint, sigterm;
  settings st;
  bool stopping, tls;
  int hashing;
} serve;

/* One API request on its way through authentication and the store. */
typedef struct hctx hctx;
typedef void (*step_fn)(hctx *c);
struct hctx {
  serve *s;
  rm_api_req *req; /* NULL once the server gave up on it */
  step_fn next;
  enum rm_module module;
  enum rm_action action;
  json_t *session; /* the session document (owned) */
  char *id, *text, *username, *password;
  const char *verb;
  bool has_text;
  json_t *user; /* login: the user document */
  int pw_rc;
  uv_work_t work;
};

static const char *user_name(const hctx *c) {
  return c->session ? json_string_value(json_object_get(c->session, "username")) : NULL;
}

static void ctx_free(hctx *c) {
  json_decref(c->session);
  json_decref(c->user);
  free(c->id);
  free(c->text);
  free(c->username);
  if (c->password) {
    memset(c->password, 0, strlen(c->password));
    free(c->password);
  }
  free(c);
}

static void ctx_aborted(rm_api_req *r, void *ud) {
  (void)r;
  ((hctx *)ud)->req = NULL;
}

static hctx *ctx_new(serve *s, rm_api_req *req) {
  hctx *c = calloc(1, sizeof *c);
  if (!c) {
    rm_api_respond_error(req, RM_API_INTERNAL, "out of memory");
    return NULL;
  }
  c->s = s;
  c->req = req;
  rm_api_req_on_abort(req, ctx_aborted, c);
  return c;
}

/* Answers and frees c. */
static void ctx_error(hctx *c, enum rm_api_code code, const char *msg) {
  if (c->req) rm_api_respond_error(c->req, code, msg);
  ctx_free(c);
}
static void ctx_ok(hctx *c, int status, json_t *data) {
  if (c->req) rm_api_respond(c->req, status, data);
  else json_decref(data);
  ctx_free(c);
}

static void ctx_store_error(hctx *c, int err, const char *errmsg) {
  if (err == RM_ENOTFOUND) ctx_error(c, RM_API_NOT_FOUND, errmsg);
  else if (err == RM_ECONFLICT) ctx_error(c, RM_API_CONFLICT, errmsg);
  else if (err == RM_EINVAL) ctx_error(c, RM_API_INVALID, errmsg);
  else {
    rm_log_error("api", "store: %s", errmsg);
    ctx_error(c, RM_API_INTERNAL, "the store failed");
  }
}

static void audit_done(void *ud, int err, const char *errmsg, json_t *res) {
  (void)ud;
  if (err) rm_log_warn("api", "audit write failed: %s", errmsg);
  json_decref(res);
}

static void audit(serve *s, const char *actor, const char *action, const char *kind, const char *id,
                  const char *ip, json_t *after) {
  json_t *e = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:o?}", "actor", actor ? actor : "", "action", action,
                        "object_kind", kind, "object_id", id, "ip", ip, "after", after);
  if (!e) return;
  rm_store_audit(s->store, e, audit_done, NULL);
  json_decref(e);
}

/* ---- authentication ---- */

static void session_got(void *ud, int err, const char *errmsg, json_t *doc) {
  hctx *c = ud;
  (void)errmsg;
  if (!c->req) {
    json_decref(doc);
    ctx_free(c);
    return;
  }
  json_t *exp = json_object_get(doc, "expires_at");
  bool live = !err && doc && json_is_null(json_object_get(doc, "deleted_at")) && json_is_integer(exp) &&
              json_integer_value(exp) > (json_int_t)time(NULL);
  if (!live) {
    json_decref(doc);
    if (err && err != RM_ENOTFOUND) rm_log_warn("api", "session lookup failed: %s", errmsg);
    rm_api_resp_header(c->req, "WWW-Authenticate", "Bearer");
    ctx_error(c, RM_API_UNAUTHENTICATED, "the session is unknown or has expired");
    return;
  }
  c->session = doc;
  enum rm_role role = RM_ROLE_NONE;
  rm_rbac_role_parse(json_string_value(json_object_get(doc, "role")), &role);
  if (c->action != RM_ACT_COUNT && !rm_rbac_allowed(role, c->module, c->action)) {
    ctx_error(c, RM_API_FORBIDDEN, "your role may not do this");
    return;
  }
  c->next(c);
}

/* Looks up the request's session (Bearer token or cookie), checks the
 * role for module/action (action RM_ACT_COUNT: any signed-in user),
 * then calls next. */
static void authenticate(hctx *c, enum rm_module module, enum rm_action action, step_fn next) {
  c->module = module;
  c->action = action;
  c->next = next;
  const char *tok = NULL;
  size_t len = 0;
  int rc = rm_auth_bearer(rm_api_req_header(c->req, "Authorization"), &tok, &len);
  if (rc == RM_ENOTFOUND) {
    const char *cookie = rm_api_req_header(c->req, "Cookie");
    rc = cookie ? rm_auth_session_cookie(cookie, &tok, &len) : RM_ENOTFOUND;
    /* CSRF: a browser sends Origin on cross-site (and same-origin) POSTs;
     * with the cookie, an unsafe method must come from our own origin. */
    const char *origin = rm_api_req_header(c->req, "Origin"), *host = rm_api_req_header(c->req, "Host");
    const char *m = rm_api_req_method(c->req);
    if (rc == 0 && origin && strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
      const char *o = strstr(origin, "://");
      if (!host || !o || strcmp(o + 3, host) != 0) {
        ctx_error(c, RM_API_FORBIDDEN, "cross-site request refused (Origin does not match Host)");
        return;
      }
    }
  }
  char hash[RM_TOKEN_HASH_LEN + 1];
  if (rc != 0 || !rm_token_well_formed(tok, len) || rm_token_hash(tok, len, hash) != 0) {
    rm_api_resp_header(c->req, "WWW-Authenticate", rc == RM_EPARSE ? "Bearer error=\"invalid_request\"" : "Bearer");
    ctx_error(c, RM_API_UNAUTHENTICATED, "sign in first: a Bearer token or the session cookie");
    return;
  }
  rm_store_doc_get(c->s->store, "session", hash, session_got, c);
}

/* A body that must be empty or an object without fields. */
static bool empty_body(hctx *c) {
  size_t len = 0;
  rm_api_req_body(c->req, &len);
  if (len == 0) return true;
  json_t *b = rm_api_req_json(c->req);
  if (!b) {
    c->req = NULL;
    return false;
  }
  static const char *const none[] = {NULL};
  if (!json_is_object(b)) {
    rm_api_details d = RM_API_DETAILS_INIT;
    rm_api_details_add(&d, "$", "expected an object");
    rm_api_respond_details(c->req, RM_API_INVALID, NULL, &d);
    c->req = NULL;
    return false;
  }
  if (!rm_api_req_only_fields(c->req, b, "$", none)) {
    c->req = NULL;
    return false;
  }
  return true;
}

/* ---- login ---- */

static void login_fail(hctx *c, const char *why) {
  serve *s = c->s;
  rm_login_guard_failed(&s->guard, c->username, c->req ? rm_api_req_peer(c->req) : "", uv_now(&s->loop));
  audit(s, c->username, "auth.login_failed", "user", NULL, c->req ? rm_api_req_peer(c->req) : NULL,
        json_pack("{s:s}", "reason", why));
  if (c->req) rm_api_resp_header(c->req, "WWW-Authenticate", "Bearer");
  ctx_error(c, RM_API_UNAUTHENTICATED, "wrong username or password");
}

static void session_put(void *ud, int err, const char *errmsg, json_t *doc) {
  hctx *c = ud;
  json_decref(doc);
  if (err) {
    ctx_store_error(c, err, errmsg);
    return;
  }
  serve *s = c->s;
  char cookie[256];
  rm_auth_session_set_cookie(cookie, sizeof cookie, c->text, (long)s->st.session_ttl_s, s->tls);
  if (c->req) rm_api_resp_header(c->req, "Set-Cookie", cookie);
  json_t *data = json_pack("{s:s, s:s, s:s, s:I, s:I}", "token", c->text, "username", c->username, "role",
                           json_string_value(json_object_get(c->user, "role")), "expires_in_s",
                           (json_int_t)s->st.session_ttl_s, "expires_at",
                           (json_int_t)(time(NULL) + (time_t)s->st.session_ttl_s));
  ctx_ok(c, 200, data);
}

static void login_work(uv_work_t *w) {
  hctx *c = w->data;
  const char *hash = c->user ? json_string_value(json_object_get(c->user, "password_hash")) : NULL;
  if (hash) c->pw_rc = rm_pw_verify(hash, c->password);
  else {
    rm_pw_params p = RM_PW_PARAMS_DEFAULT;
    rm_pw_verify_dummy(&p, c->password);
    c->pw_rc = RM_EDENIED;
  }
}

static void login_after(uv_work_t *w, int status) {
  hctx *c = w->data;
  serve *s = c->s;
  s->hashing--;
  if (!c->req || s->stopping) {
    ctx_free(c);
    return;
  }
  if (status != 0 || c->pw_rc != 0) {
    login_fail(c, c->user ? "wrong password" : "unknown or inactive user");
    return;
  }
  rm_login_guard_succeeded(&s->guard, c->username);
  char tok[RM_TOKEN_LEN + 1], hash[RM_TOKEN_HASH_LEN + 1];
  if (rm_token_new(tok) != 0 || rm_token_hash(tok, RM_TOKEN_LEN, hash) != 0) {
    ctx_error(c, RM_API_INTERNAL, "no randomness for a session token");
    return;
  }
  c->text = strdup(tok);
  const char *uid = json_string_value(json_object_get(c->user, "id"));
  audit(s, c->username, "auth.login", "user", uid, rm_api_req_peer(c->req), NULL);
  json_t *doc = json_pack("{s:s, s:s, s:s?, s:s, s:O, s:I, s:s}", "id", hash, "name", hash, "user_id", uid,
                          "username", c->username, "role", json_object_get(c->user, "role"), "expires_at",
                          (json_int_t)(time(NULL) + (time_t)s->st.session_ttl_s), "scope", "private");
  if (!c->text || !doc) {
    json_decref(doc);
    ctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  rm_store_doc_put(s->store, "session", doc, session_put, c);
  json_decref(doc);
}

static void users_listed(void *ud, int err, const char *errmsg, json_t *res) {
  hctx *c = ud;
  if (!c->req) {
    json_decref(res);
    ctx_free(c);
    return;
  }
  if (err) {
    json_decref(res);
    ctx_store_error(c, err, errmsg);
    return;
  }
  size_t i;
  json_t *u;
  json_array_foreach(json_object_get(res, "items"), i, u) {
    const char *name = json_string_value(json_object_get(u, "name"));
    json_t *active = json_object_get(u, "active");
    if (name && strcmp(name, c->username) == 0 && json_is_null(json_object_get(u, "deleted_at")) &&
        !json_is_false(active)) {
      c->user = json_incref(u);
      break;
    }
  }
  json_decref(res);
  if (c->s->hashing >= MAX_HASHING) {
    rm_api_resp_header(c->req, "Retry-After", "1");
    ctx_error(c, RM_API_RATE_LIMITED, "too many logins at once; retry in a second");
    return;
  }
  c->s->hashing++;
  c->work.data = c;
  uv_queue_work(&c->s->loop, &c->work, login_work, login_after);
}

static void h_login(rm_api_req *req, void *ud) {
  serve *s = ud;
  json_t *b = rm_api_req_json(req);
  if (!b) return;
  static const char *const allowed[] = {"username", "password", NULL};
  if (!json_is_object(b)) {
    rm_api_details d = RM_API_DETAILS_INIT;
    rm_api_details_add(&d, "$", "expected an object with username and password");
    rm_api_respond_details(req, RM_API_INVALID, NULL, &d);
    return;
  }
  if (!rm_api_req_only_fields(req, b, "$", allowed)) return;
  const char *user = json_string_value(json_object_get(b, "username"));
  const char *pw = json_string_value(json_object_get(b, "password"));
  rm_api_details d = RM_API_DETAILS_INIT;
  if (!user || !*user) rm_api_details_add(&d, "$.username", "required: a non-empty string");
  if (!pw) rm_api_details_add(&d, "$.password", "required: a string");
  else if (strlen(pw) > RM_PW_MAX_BYTES) rm_api_details_add(&d, "$.password", "too long");
  if (rm_api_details_count(&d)) {
    rm_api_respond_details(req, RM_API_INVALID, NULL, &d);
    return;
  }
  unsigned retry = 0;
  if (rm_login_guard_check(&s->guard, user, rm_api_req_peer(req), uv_now(&s->loop), &retry) != 0) {
    char msg[120], ra[24];
    snprintf(ra, sizeof ra, "%u", retry);
    rm_api_resp_header(req, "Retry-After", ra);
    audit(s, user, "auth.login_refused", "user", NULL, rm_api_req_peer(req), NULL);
    rm_api_respond_error(req, RM_API_RATE_LIMITED, rm_login_guard_message(retry, msg, sizeof msg));
    return;
  }
  hctx *c = ctx_new(s, req);
  if (!c) return;
  c->username = strdup(user);
  c->password = strdup(pw);
  if (!c->username || !c->password) {
    ctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  json_t *q = json_pack("{s:s, s:i}", "name", user, "page_size", 500);
  rm_store_doc_list(s->store, "user", q, users_listed, c);
  json_decref(q);
}

static void logout_done(void *ud, int err, const char *errmsg, json_t *res) {
  hctx *c = ud;
  json_decref(res);
  if (err && err != RM_ENOTFOUND) {
    ctx_store_error(c, err, errmsg);
    return;
  }
  audit(c->s, user_name(c), "auth.logout", "user", json_string_value(json_object_get(c->session, "user_id")),
        c->req ? rm_api_req_peer(c->req) : NULL, NULL);
  char cookie[256];
  rm_auth_session_set_cookie(cookie, sizeof cookie, NULL, 0, c->s->tls);
  if (c->req) rm_api_resp_header(c->req, "Set-Cookie", cookie);
  ctx_ok(c, 200, json_pack("{s:b}", "logged_out", 1));
}

static void do_logout(hctx *c) {
  if (!empty_body(c)) {
    ctx_free(c);
    return;
  }
  rm_store_doc_delete(c->s->store, "session", json_string_value(json_object_get(c->session, "id")), logout_done, c);
}

static void do_me(hctx *c) {
  json_t *d = json_pack("{s:O, s:O, s:O, s:O}", "username", json_object_get(c->session, "username"), "role",
                        json_object_get(c->session, "role"), "user_id", json_object_get(c->session, "user_id"),
                        "expires_at", json_object_get(c->session, "expires_at"));
  ctx_ok(c, 200, d);
}

static void h_logout(rm_api_req *req, void *ud) {
  hctx *c = ctx_new(ud, req);
  if (c) authenticate(c, RM_MOD_RUNS, RM_ACT_COUNT, do_logout);
}
static void h_me(rm_api_req *req, void *ud) {
  hctx *c = ctx_new(ud, req);
  if (c) authenticate(c, RM_MOD_RUNS, RM_ACT_COUNT, do_me);
}

/* ---- runs ---- */

static void store_answer(void *ud, int err, const char *errmsg, json_t *res) {
  hctx *c = ud;
  if (err) {
    json_decref(res);
    ctx_store_error(c, err, errmsg);
    return;
  }
  int status = 200;
  if (c->verb) {
    const char *rid = json_string_value(json_object_get(res, "run_id"));
    audit(c->s, user_name(c), c->verb, "run", c->id, c->req ? rm_api_req_peer(c->req) : NULL,
          rid && strcmp(rid, c->id) != 0 ? json_pack("{s:s}", "run_id", rid) : NULL);
    if (strcmp(c->verb, "run.rerun") == 0 || strcmp(c->verb, "run.annotate") == 0 ||
        strcmp(c->verb, "run.acknowledge") == 0)
      status = 201;
  }
  ctx_ok(c, status, res);
}

static bool known_run_query(const char *n) {
  static const char *const k[] = {"workflow", "status", "tag",       "from", "to",  "http_status",
                                  "trigger",  "sort",   "page_size", "page", NULL};
  for (size_t i = 0; k[i]; i++)
    if (strcmp(k[i], n) == 0) return true;
  return strncmp(n, "var.", 4) == 0 && n[4];
}

static void do_list(hctx *c) {
  rm_api_page pg;
  if (!rm_api_req_page(c->req, 50, 500, &pg)) {
    c->req = NULL;
    ctx_free(c);
    return;
  }
  json_t *q = json_pack("{s:I, s:I}", "page", (json_int_t)pg.page, "page_size", (json_int_t)pg.page_size);
  json_t *statuses = json_array();
  rm_api_details d = RM_API_DETAILS_INIT;
  size_t n = rm_api_req_query_count(c->req);
  for (size_t i = 0; i < n; i++) {
    const char *name, *value;
    rm_api_req_query_at(c->req, i, &name, &value);
    char path[200];
    snprintf(path, sizeof path, "query.%.150s", name);
    if (!known_run_query(name)) {
      rm_api_details_add(&d, path, "unknown query parameter");
    } else if (strcmp(name, "status") == 0) {
      json_array_append_new(statuses, json_string(value));
    } else if (strcmp(name, "http_status") == 0) {
      char *end;
      long v = strtol(value, &end, 10);
      if (!*value || *end || v < 100 || v > 599) rm_api_details_add(&d, path, "expected an HTTP status 100-599");
      else json_object_set_new(q, "http_status", json_integer(v));
    } else if (strncmp(name, "var.", 4) == 0) {
      if (json_object_get(q, "var")) {
        rm_api_details_add(&d, path, "only one var.NAME filter is supported");
        continue;
      }
      json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
      if (!v) v = json_string(value);
      json_object_set_new(q, "var", json_pack("{s:s, s:o}", "name", name + 4, "value", v));
    } else if (strcmp(name, "page") != 0 && strcmp(name, "page_size") != 0) {
      json_object_set_new(q, name, json_string(value));
    }
  }
  if (json_array_size(statuses)) json_object_set(q, "status", statuses);
  json_decref(statuses);
  if (rm_api_details_count(&d)) {
    json_decref(q);
    rm_api_respond_details(c->req, RM_API_INVALID_QUERY, NULL, &d);
    c->req = NULL;
    ctx_free(c);
    return;
  }
  rm_store_run_search(c->s->store, q, store_answer, c);
  json_decref(q);
}

static void do_get(hctx *c) { rm_store_run_get(c->s->store, c->id, store_answer, c); }

static void do_cancel(hctx *c) {
  if (!empty_body(c)) {
    ctx_free(c);
    return;
  }
  c->verb = "run.cancel";
  rm_store_run_cancel(c->s->store, c->id, user_name(c), store_answer, c);
}

static void do_resume(hctx *c) {
  if (!empty_body(c)) {
    ctx_free(c);
    return;
  }
  c->verb = "run.resume";
  rm_store_run_resume(c->s->store, c->id, user_name(c), store_answer, c);
}

static void rerun_got(void *ud, int err, const char *errmsg, json_t *orig) {
  hctx *c = ud;
  if (err || !c->req) {
    json_decref(orig);
    if (!c->req) ctx_free(c);
    else ctx_store_error(c, err, errmsg);
    return;
  }
  const char *st = json_string_value(json_object_get(orig, "status"));
  if (!st || strcmp(st, "queued") == 0 || strcmp(st, "running") == 0) {
    json_decref(orig);
    ctx_error(c, RM_API_CONFLICT, "only a finished run can be rerun");
    return;
  }
  json_t *spec = json_pack("{s:O?, s:O?, s:O?, s:O, s:s?, s:{s:s, s:s?, s:O?}, s:O, s:O?, s:s}", "workflow_id",
                           json_object_get(orig, "workflow_id"), "workflow_name", json_object_get(orig, "workflow_name"),
                           "workflow_version", json_object_get(orig, "workflow_version"), "definition",
                           json_object_get(orig, "definition"), "source",
                           json_string_value(json_object_get(orig, "source")), "trigger", "type", "rerun", "by",
                           user_name(c), "run_id", json_object_get(orig, "run_id"), "inputs",
                           json_object_get(orig, "inputs"), "dry_run", json_object_get(orig, "dry_run"), "rerun_of",
                           c->id);
  json_decref(orig);
  if (!spec) {
    ctx_error(c, RM_API_CONFLICT, "the stored run lacks its definition or inputs");
    return;
  }
  c->verb = "run.rerun";
  rm_store_run_create(c->s->store, spec, store_answer, c);
  json_decref(spec);
}

static void do_rerun(hctx *c) {
  if (!empty_body(c)) {
    ctx_free(c);
    return;
  }
  rm_store_run_get(c->s->store, c->id, rerun_got, c);
}

/* {text} (required for annotations, optional for acknowledge). */
static void do_note(hctx *c) {
  bool ack = c->action == RM_ACT_ACKNOWLEDGE;
  size_t len = 0;
  rm_api_req_body(c->req, &len);
  const char *text = NULL;
  if (len || !ack) {
    json_t *b = rm_api_req_json(c->req);
    if (!b) {
      c->req = NULL;
      ctx_free(c);
      return;
    }
    static const char *const allowed[] = {"text", NULL};
    rm_api_details d = RM_API_DETAILS_INIT;
    if (!json_is_object(b)) {
      rm_api_details_add(&d, "$", "expected an object");
    } else {
      if (!rm_api_req_only_fields(c->req, b, "$", allowed)) {
        c->req = NULL;
        ctx_free(c);
        return;
      }
      json_t *t = json_object_get(b, "text");
      text = json_string_value(t);
      if (t && !text) rm_api_details_add(&d, "$.text", "expected a string");
      else if (!ack && (!text || !*text)) rm_api_details_add(&d, "$.text", "required: a non-empty string");
    }
    if (rm_api_details_count(&d)) {
      rm_api_respond_details(c->req, RM_API_INVALID, NULL, &d);
      c->req = NULL;
      ctx_free(c);
      return;
    }
  }
  c->verb = ack ? "run.acknowledge" : "run.annotate";
  rm_store_run_annotate(c->s->store, c->id, ack ? "ack" : "note", user_name(c), text, store_answer, c);
}

static void run_route(rm_api_req *req, serve *s, enum rm_action act, step_fn next) {
  hctx *c = ctx_new(s, req);
  if (!c) return;
  const char *id = rm_api_req_param(req, "id");
  if (id && !(c->id = strdup(id))) {
    ctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  authenticate(c, RM_MOD_RUNS, act, next);
}

static void h_runs(rm_api_req *r, void *ud) { run_route(r, ud, RM_ACT_VIEW, do_list); }
static void h_run(rm_api_req *r, void *ud) { run_route(r, ud, RM_ACT_VIEW, do_get); }
static void h_cancel(rm_api_req *r, void *ud) { run_route(r, ud, RM_ACT_CANCEL, do_cancel); }
static void h_rerun(rm_api_req *r, void *ud) { run_route(r, ud, RM_ACT_RERUN, do_rerun); }
static void h_resume(rm_api_req *r, void *ud) { run_route(r, ud, RM_ACT_RESUME, do_resume); }
static void h_annotate(rm_api_req *r, void *ud) { run_route(r, ud, RM_ACT_ANNOTATE, do_note); }
static void h_ack(rm_api_req *r, void *ud) { run_route(r, ud, RM_ACT_ACKNOWLEDGE, do_note); }

/* ---- health and metrics ---- */

typedef struct ready_ctx {
  rm_api_req *req;
} ready_ctx;

static void ready_abort(rm_api_req *r, void *ud) {
  (void)r;
  ((ready_ctx *)ud)->req = NULL;
}

static void pinged(void *ud, int err, const char *errmsg, json_t *res) {
  ready_ctx *rc = ud;
  json_decref(res);
  if (rc->req) rm_api_ready_answer(rc->req, err == 0, err ? errmsg : NULL);
  free(rc);
}

static void ready_check(rm_api_req *req, void *ud) {
  serve *s = ud;
  ready_ctx *rc = calloc(1, sizeof *rc);
  if (!rc) {
    rm_api_ready_answer(req, false, "out of memory");
    return;
  }
  rc->req = req;
  rm_api_req_on_abort(req, ready_abort, rc);
  rm_store_ping(s->store, pinged, rc);
}

static void h_metrics(rm_api_req *req, void *ud) {
  serve *s = ud;
  rm_metric_set(s->g_exec, NULL, (double)rm_executor_running(s->ex));
  rm_metric_set(s->g_slots, NULL, (double)s->st.concurrency);
  rm_buf b = {0};
  if (rm_metrics_render(&s->metrics, &b) != 0) {
    rm_buf_free(&b);
    rm_api_respond_error(req, RM_API_INTERNAL, "out of memory");
    return;
  }
  rm_api_respond_raw(req, 200, RM_METRICS_CONTENT_TYPE, b.data ? b.data : "", b.len);
  rm_buf_free(&b);
}

/* ---- lifecycle ---- */

static void store_closed(void *ud) { (void)ud; }

static void executor_stopped(void *ud) {
  serve *s = ud;
  rm_store_close(s->store, store_closed, NULL);
}

static void server_stopped(rm_api_server *srv, int status) {
  serve *s = srv->loop->data;
  if (status) rm_log_warn("serve", "some requests were cut at the shutdown deadline");
  rm_executor_stop(s->ex, executor_stopped, s);
}

static void on_signal(uv_signal_t *h, int signum) {
  serve *s = h->data;
  if (s->stopping) return;
  s->stopping = true;
  rm_log_info("serve", "signal %d: stopping (runs in flight are handed back)", signum);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  rm_api_server_stop(&s->srv, 5000, server_stopped);
}

typedef struct wait_call {
  bool done;
  int err;
  char errmsg[300];
  json_t *res;
} wait_call;

static void wait_cb(void *ud, int err, const char *errmsg, json_t *res) {
  wait_call *w = ud;
  w->done = true;
  w->err = err;
  if (err) snprintf(w->errmsg, sizeof w->errmsg, "%s", errmsg);
  w->res = res;
}

/* Creates the admin user when the store has no user at all. */
static int bootstrap_admin(serve *s) {
  wait_call w = {0};
  json_t *q = json_pack("{s:b, s:i}", "include_deleted", 1, "page_size", 1);
  rm_store_doc_list(s->store, "user", q, wait_cb, &w);
  json_decref(q);
  while (!w.done) uv_run(&s->loop, UV_RUN_ONCE);
  if (w.err) {
    fprintf(stderr, "restmon serve: listing users: %s\n", w.errmsg);
    return RM_EXIT_FAILED;
  }
  json_int_t total = json_integer_value(json_object_get(w.res, "total"));
  json_decref(w.res);
  if (total > 0) return 0;
  const char *env = getenv("RESTMON_ADMIN_PASSWORD");
  char pw[RM_TOKEN_LEN + 1];
  bool generated = !env || !*env;
  if (generated) {
    if (rm_token_new(pw) != 0) {
      fprintf(stderr, "restmon serve: no randomness for the admin password\n");
      return RM_EXIT_FAILED;
    }
    pw[20] = '\0';
  }
  rm_pw_params p = RM_PW_PARAMS_DEFAULT;
  char hash[RM_PW_ENCODED_MAX];
  int rc = rm_pw_hash(&p, generated ? pw : env, hash);
  if (rc) {
    memset(pw, 0, sizeof pw);
    fprintf(stderr, "restmon serve: hashing the admin password: %s\n", rm_strerror(rc));
    return RM_EXIT_FAILED;
  }
  json_t *doc = json_pack("{s:s, s:s, s:s, s:b}", "name", "admin", "role", "admin", "password_hash", hash,
                          "active", 1);
  memset(&w, 0, sizeof w);
  rm_store_doc_put(s->store, "user", doc, wait_cb, &w);
  json_decref(doc);
  while (!w.done) uv_run(&s->loop, UV_RUN_ONCE);
  if (w.err) {
    memset(pw, 0, sizeof pw);
    fprintf(stderr, "restmon serve: creating the admin user: %s\n", w.errmsg);
    return RM_EXIT_FAILED;
  }
  audit(s, "restmon", "user.create", "user", json_string_value(json_object_get(w.res, "id")), NULL,
        json_pack("{s:s, s:s}", "name", "admin", "role", "admin"));
  json_decref(w.res);
  if (generated) printf("admin user created; admin password: %s\n", pw);
  else printf("admin user created with the password of RESTMON_ADMIN_PASSWORD\n");
  fflush(stdout);
  memset(pw, 0, sizeof pw);
  return 0;
}

static void http_closed(rm_http_client *h) { (void)h; }

static int add_routes(serve *s) {
  static const struct {
    const char *method, *pattern;
    rm_api_handler_fn fn;
  } routes[] = {
      {"POST", "/api/v1/auth/login", h_login},
      {"POST", "/api/v1/auth/logout", h_logout},
      {"GET", "/api/v1/me", h_me},
      {"GET", "/api/v1/runs", h_runs},
      {"GET", "/api/v1/runs/{id}", h_run},
      {"POST", "/api/v1/runs/{id}/cancel", h_cancel},
      {"POST", "/api/v1/runs/{id}/rerun", h_rerun},
      {"POST", "/api/v1/runs/{id}/resume", h_resume},
      {"POST", "/api/v1/runs/{id}/retry", h_resume},
      {"POST", "/api/v1/runs/{id}/annotations", h_annotate},
      {"POST", "/api/v1/runs/{id}/acknowledge", h_ack},
      {"GET", "/metrics", h_metrics},
  };
  int rc = rm_api_health_register(&s->srv, ready_check, s);
  for (size_t i = 0; !rc && i < sizeof routes / sizeof routes[0]; i++)
    rc = rm_api_server_route(&s->srv, routes[i].method, routes[i].pattern, routes[i].fn, s);
  return rc;
}

int rm_cmd_serve(int argc, char **argv) {
  enum { O_SECRETS = 256, O_SECRET_ENV, O_PLUGINS, O_DB };
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"database", required_argument, NULL, O_DB},
                                       {"secrets-file", required_argument, NULL, O_SECRETS},
                                       {"secret-env", required_argument, NULL, O_SECRET_ENV},
                                       {"plugins", required_argument, NULL, O_PLUGINS},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *config = NULL, *db = NULL, *plugin_dir = getenv("RESTMON_PLUGINS");
  rm_secrets *secrets = rm_secrets_new();
  char err[600];
  int ch, rc = RM_EXIT_INVALID;
  bool bad = false;
  optind = 1;
  while (!bad && (ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    switch (ch) {
      case 'c': config = optarg; break;
      case O_DB: db = optarg; break;
      case O_PLUGINS: plugin_dir = optarg; break;
      case O_SECRETS:
        if (rm_secrets_load_file(secrets, optarg, err, sizeof err) != 0) {
          fprintf(stderr, "--secrets-file: %s\n", err);
          bad = true;
        }
        break;
      case O_SECRET_ENV: bad = rm_cli_add_secret_env(secrets, optarg) != 0; break;
      default: bad = true;
    }
    if (ch == 'h' || bad) {
      fprintf(ch == 'h' ? stdout : stderr,
              "usage: restmon serve [-c FILE] [options]\n"
              "serves the REST API and executes queued runs\n"
              "  -c, --config FILE       settings file (default ./restmon.conf)\n"
              "  --database URL          the store (default: `database` of the settings)\n"
              "  --secrets-file FILE     secrets for the executor as NAME=value lines\n"
              "  --secret-env NAME=ENV   a secret from an environment variable; repeatable\n"
              "  --plugins DIR           extra task types\n");
      rm_secrets_free(secrets);
      return ch == 'h' ? RM_EXIT_OK : RM_EXIT_INVALID;
    }
  }
  rm_config *cfg = NULL;
  if (rm_config_load(&cfg, config, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    rm_secrets_free(secrets);
    return RM_EXIT_INVALID;
  }
  serve *s = calloc(1, sizeof *s);
  if (!s || check_settings(cfg, &s->st) != 0) {
    if (s) fprintf(stderr, "restmon serve: fix the configuration (restmon check-config lists every setting)\n");
    free(s);
    rm_config_free(cfg);
    rm_secrets_free(secrets);
    return s ? RM_EXIT_INVALID : RM_EXIT_FAILED;
  }
  rm_log_configure((enum rm_log_level)s->st.log_level, (enum rm_log_format)s->st.log_format);
  rm_log_set_scrubber(rm_secrets_log_scrub, secrets);
  const char *url = db ? db : rm_config_str(cfg, "database");
  rc = RM_EXIT_FAILED;
  if (rm_vault_open(&s->vault, rm_config_str(cfg, "vault.key_file"), err, sizeof err) != 0) {
    fprintf(stderr, "restmon serve: vault: %s\n", err);
    goto out_cfg;
  }
  if (rm_vault_other_key_id(s->vault))
    rm_log_warn("serve", "a key rotation is unfinished (key %s); run restmon rotate-key again",
                rm_vault_other_key_id(s->vault));
  rm_login_guard_params gp = RM_LOGIN_GUARD_DEFAULT;
  if (rm_login_guard_init(&s->guard, &gp) != 0) goto out_vault;
  uv_loop_init(&s->loop);
  s->loop.data = s;
  rm_http_client_init(&s->http, &s->loop);
  rm_lua_limits limits = {.record_body_bytes = (size_t)s->st.body_bytes};
  if (rm_lua_host_init(&s->host, &s->loop, &s->http, &limits, plugin_dir, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    goto out_http;
  }
  rm_store_opts so = {.threads = (int)s->st.threads, .retry_ms = s->st.retry_ms, .migrate = true};
  if (rm_store_open(&s->store, &s->loop, url, &so, err, sizeof err) != 0) {
    fprintf(stderr, "restmon serve: %s\n", err);
    goto out_host;
  }
  if (bootstrap_admin(s) != 0) {
    rm_store_close(s->store, store_closed, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    goto out_host;
  }
  s->g_exec = rm_metrics_gauge(&s->metrics, "restmon_runs_executing", "Runs this process is executing.", NULL);
  s->g_slots = rm_metrics_gauge(&s->metrics, "restmon_executor_slots", "Runs this process may execute at once.", NULL);
  const char *cert = rm_config_str(cfg, "tls.cert_file"), *key = rm_config_str(cfg, "tls.key_file"),
             *ca = rm_config_str(cfg, "tls.client_ca_file"), *web = rm_config_str(cfg, "web.dir");
  struct stat sb;
  s->tls = *cert != '\0';
  rm_api_server_opts ao = {.host = s->st.host, .port = s->st.port, .tls_cert_file = *cert ? cert : NULL,
                           .tls_key_file = *key ? key : NULL, .tls_client_ca_file = *ca ? ca : NULL,
                           .static_dir = *web && stat(web, &sb) == 0 && S_ISDIR(sb.st_mode) ? web : NULL,
                           .metrics = &s->metrics};
  rm_executor_opts eo = {.concurrency = (int)s->st.concurrency, .lease_ms = s->st.lease_ms, .claim = true,
                         .secrets = secrets, .ud = s, .retention_every_ms = 10 * 60 * 1000,
                         .retention_success_ms = s->st.retention_success_ms,
                         .retention_failed_ms = s->st.retention_failed_ms};
  if (rm_api_server_init(&s->srv, &s->loop, &ao) != 0) {
    fprintf(stderr, "restmon serve: %s\n", s->srv.errmsg);
    rm_store_close(s->store, store_closed, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    goto out_host;
  }
  bool started = add_routes(s) == 0 && rm_api_server_start(&s->srv) == 0;
  if (!started) {
    fprintf(stderr, "restmon serve: %s\n", s->srv.errmsg[0] ? s->srv.errmsg : "could not add the routes");
    s->stopping = true;
    rm_api_server_stop(&s->srv, 0, NULL);
    rm_store_close(s->store, store_closed, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    goto out_host;
  }
  rm_executor_new(&s->ex, &s->loop, s->store, &s->host, &eo);
  uv_signal_init(&s->loop, &s->sigint);
  uv_signal_init(&s->loop, &s->sigterm);
  s->sigint.data = s->sigterm.data = s;
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  int port = rm_api_server_port(&s->srv);
  bool v6 = strchr(s->st.host, ':') != NULL;
  printf("RestMon listening on %s://%s%s%s:%d\n", s->tls ? "https" : "http", v6 ? "[" : "", s->st.host, v6 ? "]" : "",
         port);
  fflush(stdout);
  rm_log_info("serve", "store %s, executor %s (%d at once, lease %llu ms)", rm_store_backend(s->store),
              rm_executor_owner(s->ex), (int)s->st.concurrency, (unsigned long long)s->st.lease_ms);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  rm_executor_free(s->ex);
  rc = RM_EXIT_OK;
out_host:
  rm_lua_host_close(&s->host);
out_http:
  rm_http_client_close(&s->http, http_closed);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  uv_loop_close(&s->loop);
  rm_login_guard_close(&s->guard);
out_vault:
  rm_vault_close(s->vault);
out_cfg:
  rm_metrics_free(&s->metrics);
  rm_log_set_scrubber(NULL, NULL);
  rm_config_free(cfg);
  rm_secrets_free(secrets);
  free(s);
  return rc;
}
