/* The web UI's files: h2o's file handler serves what exists (with ETag,
 * Last-Modified, ranges, HEAD, index.html for folders); behind it, the
 * fallback answers what does not: a path whose last segment looks like a
 * file name ("/assets/app.js", "/favicon.ico") gets a JSON 404, any other
 * path is a route of the single-page application and gets index.html. */
#include <string.h>
#include <sys/stat.h>

#include "api/response.h"
#include "api/server_internal.h"

struct fallback {
  h2o_handler_t super;
  rm_api_server *srv;
};

bool rm__static_wants(const rm_api_server *s, const char *path, size_t len) {
  if (!s->static_dir) return false;
  if (len >= 4 && memcmp(path, "/api", 4) == 0 && (len == 4 || path[4] == '/')) return false;
  return true;
}

/* Whether the last segment of path has a '.', as file names do. */
static bool looks_like_file(const char *path, size_t len) {
  size_t i = len;
  while (i > 0 && path[i - 1] != '/') i--;
  return memchr(path + i, '.', len - i) != NULL;
}

static void not_found(rm_api_server *s, h2o_req_t *req, const char *id) {
  bool bad_query;
  struct rm__hook *hook = rm__hook_new(s, req, NULL);
  rm_api_req *r = rm__req_new(s, req, hook, id, &bad_query);
  if (!r) {
    h2o_send_error_503(req, "Service Unavailable", "out of memory", 0);
    return;
  }
  rm_api_respond_error(r, RM_API_NOT_FOUND, "no such file");
}

static int on_fallback(h2o_handler_t *self, h2o_req_t *req) {
  rm_api_server *s = ((struct fallback *)self)->srv;
  char id[RM__REQUEST_ID_MAX + 1];
  ssize_t i = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1);
  if (i >= 0 && req->res.headers.entries[i].value.len <= RM__REQUEST_ID_MAX) {
    memcpy(id, req->res.headers.entries[i].value.base, req->res.headers.entries[i].value.len);
    id[req->res.headers.entries[i].value.len] = '\0';
  } else {
    rm__request_id(req, id);
  }
  size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
  if (looks_like_file(req->path.base, plen)) {
    not_found(s, req, id);
    return 0;
  }
  h2o_iovec_t index = h2o_concat(&req->pool, h2o_iovec_init(s->static_dir, strlen(s->static_dir)),
                                 h2o_iovec_init(H2O_STRLIT("/index.html")));
  struct stat st;
  if (stat(index.base, &st) != 0 || !S_ISREG(st.st_mode)) {
    not_found(s, req, id);
    return 0;
  }
  /* The application shell must not be cached: it names the hashed assets. */
  rm__add_header(req, "cache-control", "no-cache");
  h2o_iovec_t html = h2o_iovec_init(H2O_STRLIT("text/html; charset=utf-8"));
  if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
    /* h2o_file_send always sends the body; HEAD gets the headers only. */
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, html.base, html.len);
    req->res.content_length = (size_t)st.st_size;
    h2o_start_response(req, &rm__one_shot);
    h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    return 0;
  }
  if (h2o_file_send(req, 200, "OK", index.base, html, 0) != 0) not_found(s, req, id);
  return 0;
}

int rm__static_setup(rm_api_server *s, h2o_pathconf_t *pc) {
  if (!s->static_dir) return 0;
  static const struct {
    const char *ext, *type;
  } types[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json; charset=utf-8"},
      {"map", "application/json; charset=utf-8"},
      {"webmanifest", "application/manifest+json; charset=utf-8"},
      {"txt", "text/plain; charset=utf-8"},
      {"svg", "image/svg+xml"},
      {"wasm", "application/wasm"},
      {"woff2", "font/woff2"},
      {"woff", "font/woff"},
      {"ico", "image/x-icon"},
  };
  h2o_mimemap_t *mm = h2o_mimemap_create();
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    h2o_mimemap_define_mimetype(mm, types[i].ext, types[i].type, NULL);
  static const char *index_files[] = {"index.html", NULL};
  h2o_file_register(pc, s->static_dir, index_files, mm, 0);
  h2o_mem_release_shared(mm);
  struct fallback *f = (void *)h2o_create_handler(pc, sizeof *f);
  f->super.on_req = on_fallback;
  f->srv = s;
  return 0;
}
