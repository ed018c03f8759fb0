/* The server application behind `restmon serve`: its state, the request
 * context every API handler works with, and the route table.
 *
 * A route is declared once (method, pattern, handler, who may call it) in
 * an rm_route_def table of its module (session_api.c, runs_api.c, ...).
 * rm_serve_add_routes registers it; the shared entry point then creates
 * the context, authenticates the caller (session token, cookie or API
 * key), checks the role against the permission table for the route's
 * module and action, and only then calls the handler. No handler can
 * forget the check, and the table is what `restmon serve --print-routes`
 * lists and /openapi.json is checked against.
 *
 * Handler contract: a handler (rm_hstep) owns the context and ends it
 * with exactly one of rm_hctx_ok / rm_hctx_error / rm_hctx_store_error /
 * rm_hctx_free. Helpers that "answer and free on failure" say so; the
 * caller then returns at once. When the client goes away c->req becomes
 * NULL; answering is then just freeing. */
#ifndef RM_SERVE_SERVE_H
#define RM_SERVE_SERVE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "api/codes.h"
#include "api/metrics.h"
#include "api/request.h"
#include "api/response.h"
#include "api/server.h"
#include "auth/ratelimit.h"
#include "auth/rbac.h"
#include "engine/executor.h"
#include "http/client.h"
#include "lua/host.h"
#include "notify/webhook.h"
#include "secret/secret.h"
#include "secret/vault.h"
#include "store/store.h"

#define RM_SERVE_MAX_HASHING 2 /* password hashes computed at once */
#define RM_SERVE_AUTH_KEY_LEN 64 /* SHA-256 hex of a credential */

typedef struct rm_serve_settings {
  char host[128];
  int port;
  uint64_t threads, retry_ms, concurrency, lease_ms, body_bytes, session_ttl_s;
  uint64_t retention_success_ms, retention_failed_ms;
  uint64_t notify_attempts, notify_backoff_ms, notify_max_delay_ms; /* deliveries' retries */
  uint64_t sync_ms; /* serve.sync_ms: how often other servers' changes are read (0: never) */
  int log_level, log_format;
} rm_serve_settings;

typedef struct rm_hctx rm_hctx;
typedef void (*rm_hstep)(rm_hctx *c);

enum rm_route_access {
  RM_ACCESS_PUBLIC = 0, /* no credentials (health, login) */
  RM_ACCESS_USER = 1,   /* any signed-in user: their own account */
  RM_ACCESS_ROLE = 2,   /* the role must allow module/action */
};

typedef struct rm_route_def {
  const char *method, *pattern;
  rm_hstep fn;
  enum rm_route_access access;
  enum rm_module module; /* with RM_ACCESS_ROLE */
  enum rm_action action;
} rm_route_def;

typedef struct rm_serve {
  uv_loop_t loop;
  rm_http_client http;
  rm_lua_host host;
  rm_store *store;
  rm_executor *ex;
  rm_vault *vault;
  rm_secrets *secrets; /* values the executor injects and every output masks */
  rm_api_server srv;
  rm_metrics metrics;
  rm_metric *g_exec, *g_slots, *m_runs_finished, *m_run_seconds, *m_step_seconds, *m_runs;
  uv_timer_t count_timer; /* refreshes m_runs */
  struct rm_auth_cache *auth_cache; /* authn.c */
  uint64_t auth_gen;                /* bumped by every change to users, keys, sessions */
  int counting;
  struct rm_serve_admin *admin; /* global config in force, audit retention (config_api.c) */
  struct rm_serve_notify *notify; /* notifications, deliveries, escalations (notifications.c) */
  struct rm_serve_sched *sched; /* schedules and check monitors on the scheduler (schedules.c) */
  struct rm_serve_signals *signals; /* signal evaluation, Unknown ticks, mappings (signals.c) */
  struct rm_serve_sync *sync; /* other servers' changes to definitions (def_sync.c) */
  rm_login_guard guard;
  uv_signal_t sigint, sigterm;
  rm_serve_settings st;
  bool stopping, tls;
  int hashing;
  struct rm_serve_route **routes; /* registered, in order (owned) */
  size_t nroutes, caproutes;
} rm_serve;

struct rm_hctx {
  rm_serve *s;
  rm_api_req *req; /* NULL once the server gave up on the request */
  const rm_route_def *route;
  rm_hstep next;
  /* The caller, once authenticated (owned): the user document, its
   * session or API key document, and the role. */
  json_t *user, *cred;
  enum rm_role role;
  /* The route's {id} (owned; NULL when the route has none). */
  char *id;
  /* Scratch for handlers, freed with the context. */
  json_t *doc, *doc2;
  char *text, *text2;
  const char *verb;
  int n;
  uint64_t auth_gen;                        /* s->auth_gen when the lookup began */
  char auth_key[RM_SERVE_AUTH_KEY_LEN + 1]; /* the credential's cache key */
  uv_work_t work;
};

/* ---- context (ctx.c) ---- */
void rm_hctx_free(rm_hctx *c);
void rm_hctx_error(rm_hctx *c, enum rm_api_code code, const char *msg);
/* Answers status with data (stolen) and frees c. */
void rm_hctx_ok(rm_hctx *c, int status, json_t *data);
/* Maps a store error: NOTFOUND 404, CONFLICT 409, INVALID 422, else 500
 * (logged; the client sees "the store failed"). */
void rm_hctx_store_error(rm_hctx *c, int err, const char *errmsg);
/* For store callbacks: when the client has gone (c->req NULL) or err is
 * set, releases res, answers (or just frees) and returns true. */
bool rm_hctx_done_if_failed(rm_hctx *c, int err, const char *errmsg, json_t *res);
/* Answers 422/400 code with the field details d (consumed) and frees c. */
void rm_hctx_invalid(rm_hctx *c, enum rm_api_code code, rm_api_details *d);
/* The caller's username / user id (NULL before authentication), address. */
const char *rm_hctx_user_name(const rm_hctx *c);
const char *rm_hctx_user_id(const rm_hctx *c);
const char *rm_hctx_peer(const rm_hctx *c);

/* The request body as an object with only the allowed keys (NULL-
 * terminated), borrowed until the answer. On a malformed body, a non-
 * object or unknown keys it answers 400/422, frees c and returns NULL. */
json_t *rm_hctx_body(rm_hctx *c, const char *const *allowed);
/* The page a list asks for (?page, ?page_size 1..500, default def_size).
 * false: answered 400 and freed. */
bool rm_hctx_page(rm_hctx *c, long def_size, rm_api_page *pg);
/* A list request's store query: {"page", "page_size"} plus what param
 * puts in q for each other query parameter (path is "query.NAME"; param
 * adds a detail to d for a bad or unknown one). NULL: answered 400 with
 * every detail, c freed. */
typedef void (*rm_hctx_param_fn)(json_t *q, rm_api_details *d, const char *path, const char *name,
                                 const char *value, void *ud);
json_t *rm_hctx_list_query(rm_hctx *c, long def_size, rm_hctx_param_fn param, void *ud);
/* For action routes without input: the body must be empty or {}. false:
 * answered and freed. */
bool rm_hctx_empty_body(rm_hctx *c);

/* Writes an audit entry (fire and forget; failures are logged). before
 * and after are stolen and may be NULL. */
void rm_serve_audit(rm_serve *s, const char *actor, const char *action, const char *kind, const char *id,
                    const char *ip, json_t *before, json_t *after);
/* The wall clock in UTC milliseconds. */
int64_t rm__serve_now_ms(void);
/* rm_serve_audit as the context's caller from its address. */
void rm_hctx_audit(rm_hctx *c, const char *action, const char *kind, const char *id, json_t *before,
                   json_t *after);

/* ---- authentication (authn.c) ---- */
/* Finds the caller (Bearer session token, rmk_ API key, or the session
 * cookie with the CSRF origin check), loads the user (active), checks
 * c->route's access/module/action, then calls next; otherwise answers 401/403. */
void rm_serve_authenticate(rm_hctx *c, rm_hstep next);

/* Authentication results are cached for a second or two per credential
 * (a request then needs no store lookup for its caller). Call this after
 * any change to users, API keys or sessions: cached results from before
 * it are no longer used. Another server on the same store sees such a
 * change when its cache entry expires (RM_SERVE_AUTH_CACHE_MS). */
#define RM_SERVE_AUTH_CACHE_MS 2000
void rm_serve_auth_changed(rm_serve *s);
void rm_serve_auth_cache_free(rm_serve *s);

/* ---- routes (routes.c) ---- */
int rm_serve_add_routes(rm_serve *s, const rm_route_def *defs, size_t n);
/* [{method, path, access: "public"|"user"|"role", module?, action?}] in
 * registration order (new reference), the table behind --print-routes. */
json_t *rm_serve_routes_json(const rm_serve *s);
void rm_serve_routes_free(rm_serve *s);

/* ---- run events and their metrics (run_events.c) ---- */
/* Registers the run metrics and sets up the counting timer. 0 or -1. */
int rm_serve_events_init(rm_serve *s);
void rm_serve_events_start(rm_serve *s);
void rm_serve_events_stop(rm_serve *s); /* closes the timer */
/* The executor's finished hook (ud: the rm_serve). */
void rm_serve_run_finished(rm_run *r, const json_t *row, void *ud);

/* ---- run webhooks (webhooks.c; sent as notifications, below) ---- */
/* The run event webhooks and notifications carry: {"event": "run.<status>",
 * "at", "run": {run_id, workflow_id, workflow_name, workflow_version,
 * status, reason, trigger, ...}}: a new reference, deep copies of the
 * row's and record's values (it may be scrubbed in place). */
json_t *rm_serve_run_event(const json_t *row, const json_t *record, const char *status);

/* ---- notifications (notifications.c, notify_leases.c, notify_events.c,
 * webhooks.c, escalation.c, maintenance.c, notify_api.c; docs/api.md
 * "Notifications") ---- */
/* Sets up s->notify: the notifier (retries from st.notify_*), the
 * escalation clock and the delivery lease clock (which also picks up the
 * deliveries a previous process left queued). 0 or -1. */
int rm_serve_notify_init(rm_serve *s);
void rm_serve_notify_stop(rm_serve *s); /* stops the clocks */
/* Cancels the sends in flight (handed back, queued, to the next
 * server); done(s) runs once they have ended. Before the store closes. */
void rm_serve_notify_close(rm_serve *s, void (*done)(rm_serve *s));
void rm_serve_notify_free(rm_serve *s); /* once the loop has ended */
/* The notifications of a finished run: the workflow-level ones and the
 * run webhooks, one delivery per channel. row as claimed (ids, workflow,
 * trigger), record as run (status, reason, times, summary). */
void rm_serve_notify_run(rm_serve *s, const json_t *row, const json_t *record, const char *status);
/* After a signal transition was stored: the monitor's notifications
 * ("notify") and its escalation policy. Both borrowed; transition in
 * rm_signal_transition_to_json's form. */
void rm_serve_notify_transition(rm_serve *s, const json_t *monitor_doc, const json_t *transition);
/* The signal of monitor_id was acknowledged: its escalation stops. */
void rm_serve_notify_acknowledged(rm_serve *s, const char *monitor_id);
/* Calls cb(s, window, ud) with the maintenance window (borrowed for the
 * call) that suppresses what ("checks" or "notifications") of object (a
 * monitor or workflow document: id, tags) now, or NULL; when the store
 * fails, with NULL (and it is logged). */
typedef void (*rm_serve_maint_cb)(rm_serve *s, const json_t *window, void *ud);
void rm_serve_maintenance_lookup(rm_serve *s, const json_t *object, const char *what, rm_serve_maint_cb cb,
                                 void *ud);
/* A document of kind was written or deleted through the API: when it is a
 * maintenance window or a monitor, the checks suppressed in the scheduler
 * are worked out again (maint_sync.c). */
void rm_serve_maintenance_changed(rm_serve *s, const char *kind);

/* ---- signals (signals.c, signal_map.c, signals_api.c; docs/api.md "Signals") ---- */
/* Sets up s->signals and starts the clock that moves silent objects to
 * Unknown and applies verdicts a cooldown held back. 0 or -1. */
int rm_serve_signals_start(rm_serve *s);
void rm_serve_signals_stop(rm_serve *s); /* closes the clock */
void rm_serve_signals_free(rm_serve *s); /* once the loop has ended */
/* Feeds a finished run to a signal: a check run (trigger.monitor_id) to
 * its monitor's; a run started by hand or through the API to its
 * workflow's event signal; and any run, whatever its outcome, to the
 * metric monitors whose "source" takes a variable of its workflow. Dry
 * runs feed nothing. row as claimed, record as run, status final. */
void rm_serve_signals_run(rm_serve *s, const json_t *row, const json_t *record, const char *status);
/* A document of kind was written or deleted through the API: a monitor
 * reloads the metric monitors fed from runs (metric_source.c). */
void rm_serve_signals_def_changed(rm_serve *s, const char *kind);

/* ---- administration state (config_api.c) ---- */
/* Before listening: loads the stored secrets into s->secrets and the
 * stored global config over s->st. 0, or -1 (said on stderr). */
int rm_serve_admin_load(rm_serve *s);
void rm_serve_admin_start(rm_serve *s); /* the audit and transition retention timer */
void rm_serve_admin_stop(rm_serve *s);  /* closes it */
void rm_serve_admin_free(rm_serve *s);  /* once the loop has ended */

/* ---- schedules and checks (schedules.c, checks.c) ---- */
/* After the executor exists: loads the schedules, the check monitors and
 * their last fire times, and starts firing them. 0, or -1 (said on stderr). */
int rm_serve_sched_start(rm_serve *s);
/* Stops firing, writes the last fire times; frees itself once its handles
 * and that write are done (before the store closes). NULL-safe. */
void rm_serve_sched_stop(rm_serve *s);
/* A schedule or monitor was written (doc, borrowed) or deleted (doc NULL)
 * through this server's API or another server's (def_sync.c): re-plans
 * what it drives; a document it already holds at that version changes
 * nothing. A task or workflow written,
 * deleted or published: the checks built from it read it again. Other
 * kinds are ignored. */
void rm_serve_sched_def_changed(rm_serve *s, const char *kind, const char *id, const json_t *doc);
/* The executor's finished hook for check runs (row: the claimed run). */
void rm_serve_sched_run_finished(rm_serve *s, const json_t *row);
/* Maintenance: the scheduled fires of the check monitor_id are skipped
 * (and counted) until until_ms (UTC ms; 0 lifts it at once). */
void rm_serve_sched_suppress(rm_serve *s, const char *monitor_id, int64_t until_ms);
/* Appends the scheduler's Prometheus families to out (nothing before start). */
int rm_serve_sched_metrics(rm_serve *s, rm_buf *out);

/* ---- several servers on one store (def_sync.c; docs/api.md "Several
 * servers on one store") ---- */
/* Every st.sync_ms (0: never), reads the documents changed in the store
 * (rm_store_doc_changes) and applies each one not yet in force through
 * the hooks the API calls: schedules, monitors, tasks, workflows,
 * maintenance windows, secrets, the global config, users and API keys.
 * After the scheduler started. 0, or -1 (out of memory). */
int rm_serve_sync_start(rm_serve *s);
void rm_serve_sync_stop(rm_serve *s); /* closes the clock; frees itself once a read in flight ended */
/* This server put the document (kind, id) at version in force itself
 * (deleted: its soft delete): the feed skips it and anything older. */
void rm_serve_sync_note(rm_serve *s, const char *kind, const char *id, json_int_t version, bool deleted);

/* Each module's routes. 0 or an rm_api_server_route error. */
int rm_serve_session_routes(rm_serve *s);
int rm_serve_run_routes(rm_serve *s);
int rm_serve_health_routes(rm_serve *s);
int rm_serve_user_routes(rm_serve *s);
int rm_serve_apikey_routes(rm_serve *s);
int rm_serve_secret_routes(rm_serve *s);
int rm_serve_config_routes(rm_serve *s);
int rm_serve_audit_routes(rm_serve *s);
int rm_serve_docs_routes(rm_serve *s);
int rm_serve_def_routes(rm_serve *s);      /* tasks, workflows, schedules, monitors, channels, mappings */
int rm_serve_workflow_routes(rm_serve *s); /* publish, versions, duplicate, validate, execute */
int rm_serve_signal_routes(rm_serve *s);   /* signals, acknowledge, pushed metrics and events */
int rm_serve_notify_routes(rm_serve *s);   /* deliveries (dead letters, re-send) */
int rm_serve_sched_routes(rm_serve *s);    /* schedule next fire times, run a check now */
int rm_serve_channel_routes(rm_serve *s);  /* channel types, test a channel (channels_api.c) */

#endif
