/* Answering a request: the response envelope, error details, pagination.
 *
 * Every answer under /api/v1 is one envelope:
 *   {"code": "00000", "message": "ok", "data": ..., "error": null}
 *   {"code": "42201", "message": "...", "data": null,
 *    "error": {"details": [{"path": "$.name", "message": "..."}]}}
 * with the HTTP status of the code (api/codes.h). Every answer carries
 * X-Request-ID, Content-Type and Content-Length; a HEAD request gets the
 * headers only.
 *
 * Each rm_api_respond* call answers r once and frees it (see
 * api/request.h): r must not be used afterwards. They return 0; RM_ENOMEM
 * when the answer could not be built (a bare 500 was sent instead); or
 * RM_ECANCELED when the request had been dropped (client gone, server
 * stopped) and the answer went nowhere. */
#ifndef RM_API_RESPONSE_H
#define RM_API_RESPONSE_H

#include <jansson.h>
#include <stddef.h>

#include "api/codes.h"
#include "api/request.h"

/* Error details: a list of {path, message} (and optional extra members). */
typedef struct rm_api_details {
  json_t *list; /* array, NULL until the first add */
} rm_api_details;

#define RM_API_DETAILS_INIT {NULL}

/* Adds {"path": path, "message": <formatted>}. 0 or RM_ENOMEM. */
int rm_api_details_add(rm_api_details *d, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds one detail per key of obj (at JSON path `path`) that is not in
 * allowed (NULL-terminated): path "$.key" (or "$['odd key']"), message
 * naming the allowed keys. Returns the number added (0 when obj is not an
 * object), or RM_ENOMEM. */
int rm_api_details_unknown_fields(rm_api_details *d, const json_t *obj, const char *path,
                                  const char *const *allowed);
size_t rm_api_details_count(const rm_api_details *d);
void rm_api_details_free(rm_api_details *d);

/* The JSON path of a member: path + ".name", or path + "['na me']" when
 * name is not an identifier. Caller frees; NULL when out of memory. */
char *rm_api_json_path_member(const char *path, const char *name);
/* path + "[i]". Caller frees; NULL when out of memory. */
char *rm_api_json_path_index(const char *path, size_t i);

/* Adds a response header (copied) to the coming answer, e.g. Location,
 * Retry-After, Set-Cookie, WWW-Authenticate. Content-Type,
 * Content-Length and X-Request-ID are the server's. 0, RM_EINVAL for a
 * name or value that could split the header, RM_ENOMEM. */
int rm_api_resp_header(rm_api_req *r, const char *name, const char *value);

/* Success envelope with status (200, 201, 202) and data (stolen; NULL
 * gives null). */
int rm_api_respond(rm_api_req *r, int status, json_t *data);
/* Error envelope for code; message NULL gives the code's default. */
int rm_api_respond_error(rm_api_req *r, enum rm_api_code code, const char *message);
/* Error envelope with details (consumed, also on failure). */
int rm_api_respond_details(rm_api_req *r, enum rm_api_code code, const char *message,
                           rm_api_details *d);
/* Any other body (health, metrics, OpenAPI): status, content type and
 * body (copied). */
int rm_api_respond_raw(rm_api_req *r, int status, const char *content_type, const char *body,
                       size_t len);

/* {"items": items, "page", "page_size", "total", "total_pages"} for a
 * list's data. items is stolen (NULL gives []). NULL when out of memory. */
json_t *rm_api_page_data(json_t *items, const rm_api_page *p, long total);

/* The text of a whole envelope (caller frees; NULL when out of memory).
 * data and details are borrowed; details may be NULL. */
char *rm_api_envelope(enum rm_api_code code, const char *message, const json_t *data,
                      const json_t *details, size_t *len);

#endif
