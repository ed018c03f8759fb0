/* Answers: the envelope, error details and the one function that hands
 * an answer to h2o. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/response.h"
#include "api/server_internal.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"
#include "util/json_dump.h"

#define JSON_TYPE "application/json; charset=utf-8"

/* What is sent when even the answer could not be built. */
static const char oom_body[] =
    "{\"code\":\"50000\",\"message\":\"out of memory\",\"data\":null,\"error\":{\"details\":[]}}";

/* h2o needs a generator to start a response; a body sent in one final
 * call never asks it for more. */
h2o_generator_t rm__one_shot = {NULL, NULL};

const char *rm__reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 409: return "Conflict";
  case 413: return "Payload Too Large";
  case 415: return "Unsupported Media Type";
  case 422: return "Unprocessable Entity";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
  }
}

static void free_slot(void *p) { free(*(char **)p); }

h2o_iovec_t rm__pool_take(h2o_req_t *req, char *body, size_t len) {
  char **slot = h2o_mem_alloc_shared(&req->pool, sizeof *slot, free_slot);
  *slot = body;
  return h2o_iovec_init(body, len);
}

/* h2o wants lower-case names (HTTP/2 requires them). */
void rm__add_header(h2o_req_t *req, const char *name, const char *value) {
  h2o_iovec_t n = h2o_strdup(&req->pool, name, SIZE_MAX);
  h2o_strtolower(n.base, n.len);
  h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
  h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 1, NULL, v.base, v.len);
}

int rm__send(rm_api_req *r, int status, const char *ctype, char *body, size_t len) {
  h2o_req_t *req = r->h2o;
  int rc = 0;
  h2o_iovec_t buf;
  if (!body) {
    status = 500;
    ctype = JSON_TYPE;
    buf = h2o_iovec_init(oom_body, sizeof oom_body - 1);
    rc = RM_ENOMEM;
  } else {
    buf = rm__pool_take(req, body, len);
  }
  if (status == 204 || status == 304) buf.len = 0;
  req->res.status = status;
  req->res.reason = rm__reason(status);
  /* Drop what the dispatcher put there for a static answer. */
  memset(&req->res.headers, 0, sizeof req->res.headers);
  if (status != 204 && status != 304) rm__add_header(req, "content-type", ctype);
  rm__add_header(req, "x-request-id", r->id);
  rm__add_header(req, "x-content-type-options", "nosniff");
  if (r->allow) rm__add_header(req, "allow", r->allow);
  for (size_t i = 0; i < r->nresp; i++)
    rm__add_header(req, r->resp_headers[i].name, r->resp_headers[i].value);
  req->res.content_length = buf.len;
  if (r->srv && r->srv->stopping) req->http1_is_persistent = 0;
  bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
  /* Detach first: should h2o finish the request inside h2o_send, its
   * dispose hook must not find r. */
  rm__req_detach(r);
  r->answered = true;
  h2o_start_response(req, &rm__one_shot);
  h2o_send(req, &buf, head || buf.len == 0 ? 0 : 1, H2O_SEND_STATE_FINAL);
  return rc;
}

int rm__respond(rm_api_req *r, int status, const char *ctype, char *body, size_t len) {
  int rc;
  if (r->answered) { /* a second answer from inside the abort hook */
    free(body);
    return RM_EINVAL;
  }
  if (!r->h2o) {
    free(body);
    r->answered = true;
    rc = RM_ECANCELED;
  } else {
    rc = rm__send(r, status, ctype, body, len);
  }
  if (!r->aborting) rm__req_free(r);
  return rc;
}

/* A JSON string of s; bytes that are not UTF-8 become U+FFFD. */
static json_t *jstr(const char *s) {
  json_t *j = json_string(s);
  if (j) return j;
  char *clean = rm_utf8_sanitize(s, strlen(s));
  j = clean ? json_string(clean) : NULL;
  free(clean);
  return j;
}

char *rm_api_envelope(enum rm_api_code code, const char *message, const json_t *data,
                      const json_t *details, size_t *len) {
  char c[6];
  rm_api_code_format(code, c);
  json_t *err = json_null();
  if (code != RM_API_OK)
    err = json_pack("{s:o}", "details", details ? json_copy((json_t *)details) : json_array());
  /* "o" steals, also on failure; "O" takes a new reference. */
  json_t *o = json_pack("{s:s, s:o, s:O, s:o}", "code", c, "message",
                        jstr(message ? message : rm_api_code_message(code)), "data",
                        data ? (json_t *)data : json_null(), "error", err);
  /* 15 significant digits: 0.1 reads "0.1", not "0.10000000000000001" */
  char *text = o ? rm_json_dumps(o, 15) : NULL;
  json_decref(o);
  if (text && len) *len = strlen(text);
  return text;
}

int rm_api_details_add(rm_api_details *d, const char *path, const char *fmt, ...) {
  rm_buf msg = RM_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  int rc = rm_buf_vprintf(&msg, fmt, ap);
  va_end(ap);
  json_t *item = json_object();
  if (!d->list) d->list = json_array();
  if (rc == 0 && item && d->list &&
      json_object_set_new(item, "path", jstr(path)) == 0 &&
      json_object_set_new(item, "message", jstr(msg.data ? msg.data : "")) == 0 &&
      json_array_append(d->list, item) == 0) {
    rc = 0;
  } else {
    rc = RM_ENOMEM;
  }
  json_decref(item);
  rm_buf_free(&msg);
  return rc;
}

size_t rm_api_details_count(const rm_api_details *d) { return json_array_size(d->list); }

void rm_api_details_free(rm_api_details *d) {
  json_decref(d->list);
  d->list = NULL;
}

static bool is_ident(const char *s) {
  if (!*s || (*s >= '0' && *s <= '9')) return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_'))
      return false;
  return true;
}

char *rm_api_json_path_member(const char *path, const char *name) {
  rm_buf b = RM_BUF_INIT;
  int rc = rm_buf_puts(&b, path);
  if (is_ident(name)) {
    rc |= rm_buf_printf(&b, ".%s", name);
  } else {
    rc |= rm_buf_puts(&b, "['");
    for (const char *p = name; *p; p++) {
      if (*p == '\'' || *p == '\\') rc |= rm_buf_putc(&b, '\\');
      rc |= rm_buf_putc(&b, *p);
    }
    rc |= rm_buf_puts(&b, "']");
  }
  if (rc) {
    rm_buf_free(&b);
    return NULL;
  }
  return rm_buf_steal(&b);
}

char *rm_api_json_path_index(const char *path, size_t i) {
  rm_buf b = RM_BUF_INIT;
  if (rm_buf_printf(&b, "%s[%zu]", path, i) != 0) {
    rm_buf_free(&b);
    return NULL;
  }
  return rm_buf_steal(&b);
}

int rm_api_details_unknown_fields(rm_api_details *d, const json_t *obj, const char *path,
                                  const char *const *allowed) {
  if (!json_is_object(obj)) return 0;
  rm_buf names = RM_BUF_INIT;
  for (size_t i = 0; allowed && allowed[i]; i++)
    rm_buf_printf(&names, "%s%s", i ? ", " : "", allowed[i]);
  int n = 0;
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    bool known = false;
    for (size_t i = 0; allowed && allowed[i] && !known; i++) known = strcmp(key, allowed[i]) == 0;
    if (known) continue;
    char *p = rm_api_json_path_member(path, key);
    int rc = p ? (names.len ? rm_api_details_add(d, p, "unknown field; allowed: %s", names.data)
                            : rm_api_details_add(d, p, "unknown field; none are allowed here"))
               : RM_ENOMEM;
    free(p);
    if (rc) {
      n = RM_ENOMEM;
      break;
    }
    n++;
  }
  rm_buf_free(&names);
  return n;
}

static bool header_ok(const char *name, const char *value) {
  if (!name || !*name || !value) return false;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          strchr("!#$%&'*+-.^_`|~", *p)))
      return false;
  for (const char *p = value; *p; p++)
    if (*p == '\r' || *p == '\n') return false;
  static const char *reserved[] = {"content-type", "content-length", "x-request-id", "allow",
                                   "connection", "transfer-encoding"};
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
    if (strcasecmp(name, reserved[i]) == 0) return false;
  return true;
}

int rm_api_resp_header(rm_api_req *r, const char *name, const char *value) {
  if (!header_ok(name, value)) return RM_EINVAL;
  if (r->nresp == r->capresp) {
    size_t cap = r->capresp ? r->capresp * 2 : 4;
    rm__kv *n = realloc(r->resp_headers, cap * sizeof *n);
    if (!n) return RM_ENOMEM;
    r->resp_headers = n;
    r->capresp = cap;
  }
  char *nm = strdup(name), *v = strdup(value);
  if (!nm || !v) {
    free(nm);
    free(v);
    return RM_ENOMEM;
  }
  r->resp_headers[r->nresp].name = nm;
  r->resp_headers[r->nresp].value = v;
  r->nresp++;
  return 0;
}

int rm_api_respond(rm_api_req *r, int status, json_t *data) {
  size_t len = 0;
  char *body = rm_api_envelope(RM_API_OK, NULL, data, NULL, &len);
  json_decref(data);
  return rm__respond(r, status, JSON_TYPE, body, len);
}

int rm_api_respond_details(rm_api_req *r, enum rm_api_code code, const char *message,
                           rm_api_details *d) {
  size_t len = 0;
  char *body = rm_api_envelope(code, message, NULL, d ? d->list : NULL, &len);
  if (d) rm_api_details_free(d);
  return rm__respond(r, rm_api_code_status(code), JSON_TYPE, body, len);
}

int rm_api_respond_error(rm_api_req *r, enum rm_api_code code, const char *message) {
  return rm_api_respond_details(r, code, message, NULL);
}

int rm_api_respond_raw(rm_api_req *r, int status, const char *content_type, const char *body,
                       size_t len) {
  char *copy = malloc(len + 1);
  if (copy) {
    memcpy(copy, body, len);
    copy[len] = '\0';
  }
  return rm__respond(r, status, content_type, copy, len);
}

json_t *rm_api_page_data(json_t *items, const rm_api_page *p, long total) {
  long pages = total <= 0 || p->page_size <= 0 ? 0 : (total + p->page_size - 1) / p->page_size;
  return json_pack("{s:o, s:I, s:I, s:I, s:I}", "items", items ? items : json_array(), "page",
                   (json_int_t)p->page, "page_size", (json_int_t)p->page_size, "total",
                   (json_int_t)total, "total_pages", (json_int_t)pages);
}
