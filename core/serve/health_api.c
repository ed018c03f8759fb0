/* /health, /health/ready (the store answers a trivial query) and
 * /metrics, outside /api/v1 and without credentials. */
#include <stdlib.h>

#include "api/endpoints.h"
#include "serve/serve.h"
#include "util/buf.h"

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
  rm_serve *s = ud;
  ready_ctx *rc = calloc(1, sizeof *rc);
  if (!rc) {
    rm_api_ready_answer(req, false, "out of memory");
    return;
  }
  rc->req = req;
  rm_api_req_on_abort(req, ready_abort, rc);
  rm_store_ping(s->store, pinged, rc);
}

static void h_metrics(rm_hctx *c) {
  rm_serve *s = c->s;
  rm_metric_set(s->g_exec, NULL, (double)rm_executor_running(s->ex));
  rm_metric_set(s->g_slots, NULL, (double)s->st.concurrency);
  rm_buf b = {0};
  if (rm_metrics_render(&s->metrics, &b) != 0 || rm_serve_sched_metrics(s, &b) != 0) {
    rm_buf_free(&b);
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  rm_api_req *req = c->req;
  c->req = NULL;
  rm_hctx_free(c);
  if (req) rm_api_respond_raw(req, 200, RM_METRICS_CONTENT_TYPE, b.data ? b.data : "", b.len);
  rm_buf_free(&b);
}

int rm_serve_health_routes(rm_serve *s) {
  static const rm_route_def defs[] = {
      {"GET", "/metrics", h_metrics, RM_ACCESS_PUBLIC, 0, 0},
  };
  int rc = rm_api_health_register(&s->srv, ready_check, s);
  return rc ? rc : rm_serve_add_routes(s, defs, sizeof defs / sizeof defs[0]);
}
