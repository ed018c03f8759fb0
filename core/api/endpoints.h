/* Built-in endpoints outside /api/v1: health checks and the Prometheus
 * scrape. Their bodies are plain JSON or text, not the API envelope, so
 * probes and scrapers read them as they expect. */
#ifndef RM_API_ENDPOINTS_H
#define RM_API_ENDPOINTS_H

#include <stdbool.h>

#include "api/metrics.h"
#include "api/server.h"

/* Readiness probe: called for each GET /health/ready; it must call
 * rm_api_ready_answer exactly once, now or later on the loop (the request
 * context rules of api/request.h apply: set an abort hook if the check
 * may never finish). */
typedef void (*rm_api_ready_fn)(rm_api_req *req, void *ud);

/* Registers GET /health (always 200 {"status":"ok"}) and GET
 * /health/ready (200 {"status":"ready"}, or 503 {"status":"not_ready",
 * "reason": ...}; 503 at once while the server stops). ready may be NULL
 * (always ready). 0 or an rm_api_server_route error. */
int rm_api_health_register(rm_api_server *s, rm_api_ready_fn ready, void *ud);

/* Answers a readiness request: reason (may be NULL) says what is not
 * ready. Returns what rm_api_respond_raw returns. */
int rm_api_ready_answer(rm_api_req *req, bool ready, const char *reason);

/* Registers GET path (usually "/metrics") rendering m (borrowed; it must
 * outlive the server) in the text exposition format. */
int rm_api_metrics_register(rm_api_server *s, const char *path, rm_metrics *m);

#endif
