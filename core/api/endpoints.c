#include "api/endpoints.h"

#include <stdlib.h>
#include <string.h>

#include "api/response.h"
#include "api/server_internal.h"
#include "util/buf.h"
#include "util/err.h"

#define JSON_TYPE "application/json; charset=utf-8"

static void on_health(rm_api_req *r, void *ud) {
  (void)ud;
  static const char body[] = "{\"status\":\"ok\"}";
  rm_api_respond_raw(r, 200, JSON_TYPE, body, sizeof body - 1);
}

static void on_ready(rm_api_req *r, void *ud) {
  rm_api_server *s = ud;
  if (s->stopping) {
    rm_api_ready_answer(r, false, "the server is stopping");
    return;
  }
  if (!s->ready_fn) {
    rm_api_ready_answer(r, true, NULL);
    return;
  }
  s->ready_fn(r, s->ready_ud);
}

int rm_api_ready_answer(rm_api_req *r, bool ready, const char *reason) {
  json_t *o = ready ? json_pack("{s:s}", "status", "ready")
                    : json_pack("{s:s, s:s}", "status", "not_ready", "reason",
                                reason ? reason : "not ready");
  char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return rm__respond(r, ready ? 200 : 503, JSON_TYPE, body, body ? strlen(body) : 0);
}

int rm_api_health_register(rm_api_server *s, rm_api_ready_fn ready, void *ud) {
  int rc = rm_api_server_route(s, "GET", "/health", on_health, NULL);
  if (rc == 0) rc = rm_api_server_route(s, "GET", "/health/ready", on_ready, s);
  if (rc == 0) {
    s->ready_fn = ready;
    s->ready_ud = ud;
  }
  return rc;
}

static void on_metrics(rm_api_req *r, void *ud) {
  rm_buf out = RM_BUF_INIT;
  if (rm_metrics_render(ud, &out) != 0) {
    rm_buf_free(&out);
    rm_api_respond_error(r, RM_API_INTERNAL, "out of memory rendering the metrics");
    return;
  }
  size_t len = out.len;
  rm__respond(r, 200, RM_METRICS_CONTENT_TYPE, rm_buf_steal(&out), len);
}

int rm_api_metrics_register(rm_api_server *s, const char *path, rm_metrics *m) {
  if (!m) return RM_EINVAL;
  return rm_api_server_route(s, "GET", path, on_metrics, m);
}
