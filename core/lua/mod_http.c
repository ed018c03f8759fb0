/* http.request for plugins: builds the request in C (so secret tokens
 * become values only here), sends it on the shared client, yields, and
 * resumes the plugin with the response. Every exchange is recorded with
 * the request as the plugin asked for it (tokens, not values), and what
 * goes back to Lua (the response's url, an error text) holds no value.
 *
 * In a URL, a token at its very start is the URL itself or its base (a
 * webhook URL kept in the vault: Slack, Discord) and goes in as it is,
 * which must then be http:// or https://; tokens further on are values
 * inside the URL and go in percent-encoded. */
#include <lauxlib.h>
#include <lua.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lua/host_internal.h"
#include "lua/json_bridge.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/text.h"

#define MAX_EXCHANGES 100

typedef struct http_op {
  rm__lua_op base;
  rm_http_request req;
  rm_lua_task *task;
  char *url;
  char *body;
  json_t *exchange; /* borrowed from task->exchanges */
  bool url_secret;  /* a secret went into the URL: Lua gets it scrubbed back */
} http_op;

static void op_free(http_op *op) {
  curl_slist_free_all(op->req.headers);
  rm_http_request_cleanup(&op->req);
  free(op->url);
  free(op->body);
  free(op);
}

static const rm_secrets *task_secrets(rm_lua_task *t) { return t->spec->secrets; }

/* Injects secret values into s; the result is malloc'ed (caller frees). */
static char *inject(rm_lua_task *t, const char *s, size_t len, enum rm_secret_encoding enc,
                    size_t *outlen) {
  const rm_secrets *sec = task_secrets(t);
  if (!sec) {
    char *c = malloc(len + 1);
    if (c) {
      memcpy(c, s, len);
      c[len] = '\0';
    }
    if (outlen) *outlen = len;
    return c;
  }
  return rm_secrets_inject(sec, s, len, enc, outlen);
}

static int inject_json(rm_lua_task *t, json_t *v) {
  if (json_is_string(v)) {
    size_t n;
    char *s = inject(t, json_string_value(v), json_string_length(v), RM_SECRET_RAW, &n);
    if (!s) return RM_ENOMEM;
    json_string_setn(v, s, n);
    free(s);
  } else if (json_is_array(v)) {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) inject_json(t, x);
  } else if (json_is_object(v)) {
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) inject_json(t, x);
  }
  return 0;
}

/* The length of the secret token url starts with ("@@rmsecret-...@@",
 * secret/secret.h), or 0. */
static size_t leading_token(const rm_secrets *sec, const char *url) {
  static const char prefix[] = "@@rmsecret-";
  if (!sec || strncmp(url, prefix, sizeof prefix - 1) != 0) return 0;
  const char *end = strstr(url + sizeof prefix - 1, "@@");
  size_t n = end ? (size_t)(end + 2 - url) : 0;
  return n && rm_secrets_has_token(sec, url, n) ? n : 0;
}

/* The URL to send (caller frees), or NULL with why (a static text). */
static char *inject_url(rm_lua_task *t, const char *url, const char **why) {
  const rm_secrets *sec = task_secrets(t);
  size_t head = leading_token(sec, url);
  char *base = head ? rm_secrets_inject(sec, url, head, RM_SECRET_RAW, NULL) : strdup("");
  char *rest = inject(t, url + head, strlen(url + head), RM_SECRET_URL, NULL);
  char *out = NULL;
  if (base && rest && (out = malloc(strlen(base) + strlen(rest) + 1))) {
    strcpy(out, base);
    strcat(out, rest);
  }
  if (base) explicit_bzero(base, strlen(base));
  free(base);
  free(rest);
  if (!out) *why = "E_NOMEM: out of memory";
  else if (head && strncasecmp(out, "http://", 7) != 0 && strncasecmp(out, "https://", 8) != 0) {
    *why = "E_INVALID: the secret the url starts with does not hold an http:// or https:// URL";
    explicit_bzero(out, strlen(out));
    free(out);
    out = NULL;
  }
  return out;
}

/* A copy of s fit for Lua: the attempt's secret values masked, tokens
 * back in their {{secrets.NAME}} form (caller frees; NULL: out of memory). */
static char *scrubbed(rm_lua_task *t, const char *s) {
  const rm_secrets *sec = task_secrets(t);
  return sec ? rm_secrets_scrub(sec, s, strlen(s), NULL) : strdup(s);
}

static void url_encode(rm_buf *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~')
      rm_buf_putc(b, (char)c);
    else
      rm_buf_printf(b, "%%%02X", c);
  }
}

/* Appends k=v pairs of the table at idx, URL-encoded, secrets injected
 * in their URL-encoded form. shown gets the same without injection. */
static void append_pairs(lua_State *L, int idx, rm_lua_task *t, rm_buf *real, rm_buf *shown,
                         char first_sep) {
  char sep = first_sep;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t kl, vl;
    const char *k = lua_tolstring(L, -2, &kl);
    const char *v = lua_tolstring(L, -1, &vl);
    if (k && v) {
      if (sep) {
        rm_buf_putc(real, sep);
        rm_buf_putc(shown, sep);
      }
      url_encode(real, k, kl);
      url_encode(shown, k, kl);
      rm_buf_putc(real, '=');
      rm_buf_putc(shown, '=');
      size_t n;
      char *iv = inject(t, v, vl, RM_SECRET_URL, &n);
      /* A token's characters are all URL-safe, so encoding v keeps it
       * recognisable; its value arrives already encoded. */
      if (iv && rm_secrets_has_token(task_secrets(t), v, vl))
        rm_buf_append(real, iv, n);
      else
        url_encode(real, v, vl);
      url_encode(shown, v, vl);
      free(iv);
      sep = '&';
    }
    lua_pop(L, 1);
  }
}

static void add_header(http_op *op, json_t *shown, const char *name, const char *value,
                       const char *shown_value) {
  rm_buf line = RM_BUF_INIT;
  rm_buf_printf(&line, "%s: %s", name, value);
  op->req.headers = curl_slist_append(op->req.headers, line.data);
  rm_buf_free(&line);
  json_object_set_new(shown, name, json_string(shown_value));
}

static int has_header(lua_State *L, int opts, const char *name) {
  lua_getfield(L, opts, "headers");
  int found = 0;
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING && strcasecmp(lua_tostring(L, -2), name) == 0) found = 1;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return found;
}

static const char *opt_string(lua_State *L, int opts, const char *key, const char *def) {
  lua_getfield(L, opts, key);
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : def;
  lua_pop(L, 1); /* the string stays alive: it is referenced by opts */
  return s;
}

/* Authorization built here, after injection, so Base64 and HMAC are
 * computed over the real values; the record shows the masked form. */
static const char *apply_auth(lua_State *L, int opts, http_op *op, json_t *shown_headers,
                              rm_buf *url, rm_buf *shown_url) {
  lua_getfield(L, opts, "auth");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  int auth = lua_gettop(L);
  rm_lua_task *t = op->task;
  const char *type = opt_string(L, auth, "type", "none");
  const char *err = NULL;
  if (strcmp(type, "basic") == 0) {
    const char *u = opt_string(L, auth, "username", ""), *p = opt_string(L, auth, "password", "");
    rm_buf up = RM_BUF_INIT;
    rm_buf_printf(&up, "%s:%s", u, p);
    size_t n;
    char *real = inject(t, up.data, up.len, RM_SECRET_RAW, &n);
    unsigned char *b64 = malloc(4 * (n / 3 + 1) + 1);
    EVP_EncodeBlock(b64, (const unsigned char *)real, (int)n);
    rm_buf hv = RM_BUF_INIT;
    rm_buf_printf(&hv, "Basic %s", b64);
    add_header(op, shown_headers, "Authorization", hv.data, "Basic ***");
    rm_buf_free(&hv);
    free(b64);
    free(real);
    rm_buf_free(&up);
  } else if (strcmp(type, "bearer") == 0) {
    const char *tok = opt_string(L, auth, "token", "");
    char *real = inject(t, tok, strlen(tok), RM_SECRET_RAW, NULL);
    rm_buf hv = RM_BUF_INIT, sv = RM_BUF_INIT;
    rm_buf_printf(&hv, "Bearer %s", real);
    rm_buf_printf(&sv, "Bearer %s", tok);
    add_header(op, shown_headers, "Authorization", hv.data, sv.data);
    rm_buf_free(&hv);
    rm_buf_free(&sv);
    free(real);
  } else if (strcmp(type, "api_key") == 0) {
    const char *value = opt_string(L, auth, "value", "");
    const char *header = opt_string(L, auth, "header", NULL);
    const char *query = opt_string(L, auth, "query", NULL);
    if (query) {
      char sep = strchr(url->data, '?') ? '&' : '?';
      lua_newtable(L);
      lua_pushstring(L, value);
      lua_setfield(L, -2, query);
      append_pairs(L, lua_gettop(L), t, url, shown_url, sep);
      lua_pop(L, 1);
    } else {
      char *real = inject(t, value, strlen(value), RM_SECRET_RAW, NULL);
      add_header(op, shown_headers, header ? header : "X-Api-Key", real, value);
      free(real);
    }
  } else if (strcmp(type, "hmac_sha256") == 0) {
    const char *secret = opt_string(L, auth, "secret", "");
    const char *header = opt_string(L, auth, "header", "X-Signature");
    const char *prefix = opt_string(L, auth, "prefix", "");
    size_t klen;
    char *key = inject(t, secret, strlen(secret), RM_SECRET_RAW, &klen);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    const char *body = op->body ? op->body : "";
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)body, strlen(body), mac, &mlen);
    rm_buf hv = RM_BUF_INIT;
    rm_buf_puts(&hv, prefix);
    for (unsigned i = 0; i < mlen; i++) rm_buf_printf(&hv, "%02x", mac[i]);
    add_header(op, shown_headers, header, hv.data, hv.data);
    rm_buf_free(&hv);
    explicit_bzero(key, klen);
    free(key);
  } else if (strcmp(type, "none") != 0) {
    err = "E_INVALID: auth.type must be none, basic, bearer, api_key or hmac_sha256";
  }
  lua_pop(L, 1);
  return err;
}

/* Sets "body" on a recorded request or response: text as it is (cut at
 * the record cap on a character boundary), anything that is not UTF-8 as
 * base64 with "body_encoding": "base64". */
static void record_body(json_t *into, size_t cap, const char *body, size_t len) {
  if (!body) body = "";
  bool truncated = len > cap;
  size_t n = truncated ? cap : len;
  size_t valid = rm_utf8_valid_prefix(body, n);
  /* A cut may split the last character; up to 3 bytes of it are fine. */
  if (valid == n || (truncated && rm_utf8_seq_len((const unsigned char *)body + valid, len - valid) > n - valid)) {
    json_object_set_new(into, "body", json_stringn(body, valid));
  } else {
    char *b64 = rm_base64_encode(body, n, false);
    json_object_set_new(into, "body", json_string(b64 ? b64 : ""));
    json_object_set_new(into, "body_encoding", json_string("base64"));
    free(b64);
  }
  if (truncated) json_object_set_new(into, "truncated", json_true());
}

/* Builds the body from body / json / form; returns an error text or NULL. */
static const char *build_body(lua_State *L, int opts, http_op *op, json_t *shown,
                              json_t *shown_headers, char *err, size_t errlen) {
  rm_lua_task *t = op->task;
  lua_getfield(L, opts, "json");
  int has_json = !lua_isnil(L, -1);
  if (has_json) {
    json_t *v = rm_lua_to_json(L, -1, err, errlen);
    lua_pop(L, 1);
    if (!v) return err;
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_object_set_new(shown, "body", json_string(text ? text : ""));
    free(text);
    inject_json(t, v);
    op->body = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    if (!has_header(L, opts, "content-type"))
      add_header(op, shown_headers, "Content-Type", "application/json", "application/json");
    return NULL;
  }
  lua_pop(L, 1);
  lua_getfield(L, opts, "form");
  if (lua_istable(L, -1)) {
    rm_buf real = RM_BUF_INIT, sh = RM_BUF_INIT;
    append_pairs(L, lua_gettop(L), t, &real, &sh, 0);
    lua_pop(L, 1);
    op->body = rm_buf_steal(&real);
    json_object_set_new(shown, "body", json_string(sh.data ? sh.data : ""));
    rm_buf_free(&sh);
    if (!has_header(L, opts, "content-type"))
      add_header(op, shown_headers, "Content-Type", "application/x-www-form-urlencoded",
                 "application/x-www-form-urlencoded");
    return NULL;
  }
  lua_pop(L, 1);
  lua_getfield(L, opts, "body");
  if (lua_isstring(L, -1)) {
    size_t n;
    const char *b = lua_tolstring(L, -1, &n);
    record_body(shown, t->host->limits.record_body_bytes, b, n);
    op->body = inject(t, b, n, RM_SECRET_RAW, NULL);
  }
  lua_pop(L, 1);
  return NULL;
}

static void push_error(lua_State *L, int code, const char *msg) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", rm_errname(code), msg);
}

/* Response headers as a Lua table (lower-case names, repeats joined) and
 * as a JSON object for the record. */
typedef struct header_sink {
  lua_State *L;
  int table;
  json_t *shown;
} header_sink;

static void on_each_header(void *ud, const char *name, size_t nlen, const char *value, size_t vlen) {
  header_sink *s = ud;
  char key[256];
  if (nlen >= sizeof key) nlen = sizeof key - 1;
  for (size_t i = 0; i < nlen; i++) key[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
  key[nlen] = '\0';
  lua_getfield(s->L, s->table, key);
  if (lua_isstring(s->L, -1)) {
    lua_pushliteral(s->L, ", ");
    lua_pushlstring(s->L, value, vlen);
    lua_concat(s->L, 3);
  } else {
    lua_pop(s->L, 1);
    lua_pushlstring(s->L, value, vlen);
  }
  size_t len;
  const char *joined = lua_tolstring(s->L, -1, &len);
  char *text = rm_utf8_sanitize(joined, len);
  json_object_set_new(s->shown, key, json_string(text ? text : ""));
  free(text);
  lua_setfield(s->L, s->table, key);
}

static json_t *timings_json(const rm_http_timings *tm) {
  return json_pack("{s:f, s:f, s:f, s:f, s:f}", "dns_ms", tm->dns_ms, "connect_ms", tm->connect_ms,
                   "tls_ms", tm->tls_ms, "first_byte_ms", tm->first_byte_ms, "total_ms", tm->total_ms);
}

static void push_timings(lua_State *L, const rm_http_timings *tm) {
  lua_createtable(L, 0, 5);
  lua_pushnumber(L, tm->dns_ms);
  lua_setfield(L, -2, "dns_ms");
  lua_pushnumber(L, tm->connect_ms);
  lua_setfield(L, -2, "connect_ms");
  lua_pushnumber(L, tm->tls_ms);
  lua_setfield(L, -2, "tls_ms");
  lua_pushnumber(L, tm->first_byte_ms);
  lua_setfield(L, -2, "first_byte_ms");
  lua_pushnumber(L, tm->total_ms);
  lua_setfield(L, -2, "total_ms");
}

static void on_done(rm_http_request *r) {
  http_op *op = (http_op *)((char *)r - offsetof(http_op, req));
  rm_lua_task *t = op->task;
  lua_State *co = t->co;
  json_t *ex = op->exchange;
  json_object_set_new(ex, "timings", timings_json(&r->timings));
  rm__lua_end_op(t);
  int nret;
  if (r->err) {
    json_object_set_new(ex, "error", json_pack("{s:s, s:s}", "code", rm_errname(r->err), "message", r->errmsg));
    char *msg = scrubbed(t, r->errmsg);
    push_error(co, r->err, msg ? msg : "the request failed");
    free(msg);
    nret = 2;
  } else {
    json_t *resp = json_object();
    json_t *hdrs = json_object();
    lua_createtable(co, 0, 8);
    int tbl = lua_gettop(co);
    lua_pushinteger(co, (lua_Integer)r->status);
    lua_setfield(co, tbl, "status");
    lua_newtable(co);
    header_sink sink = {co, lua_gettop(co), hdrs};
    rm_http_each_header(r, on_each_header, &sink);
    lua_setfield(co, tbl, "headers");
    lua_pushlstring(co, r->resp_body.data ? r->resp_body.data : "", r->resp_body.len);
    lua_setfield(co, tbl, "body");
    lua_pushnumber(co, r->timings.total_ms);
    lua_setfield(co, tbl, "duration_ms");
    push_timings(co, &r->timings);
    lua_setfield(co, tbl, "timings");
    lua_pushstring(co, r->http_version_str);
    lua_setfield(co, tbl, "http_version");
    const char *eff = r->effective_url ? r->effective_url : op->url;
    char *url = op->url_secret ? scrubbed(t, eff) : NULL;
    lua_pushstring(co, url ? url : op->url_secret ? "" : eff);
    lua_setfield(co, tbl, "url");
    free(url);
    json_object_set_new(resp, "status", json_integer(r->status));
    json_object_set_new(resp, "http_version", json_string(r->http_version_str));
    json_object_set_new(resp, "headers", hdrs);
    record_body(resp, t->host->limits.record_body_bytes, r->resp_body.data, r->resp_body.len);
    json_object_set_new(resp, "size", json_integer((json_int_t)r->resp_body.len));
    json_object_set_new(ex, "response", resp);
    nret = 1;
  }
  op_free(op);
  rm_lua_resume(t, nret);
}

static void cancel_http(rm__lua_op *base) {
  http_op *op = (http_op *)base;
  rm_lua_task *t = op->task;
  char msg[300];
  if (t->fatal == RM_ETIMEOUT)
    snprintf(msg, sizeof msg, "no complete response before task '%s' timed out after %llu ms",
             t->spec->task_name, (unsigned long long)t->spec->timeout_ms);
  else
    snprintf(msg, sizeof msg, "request stopped: %s", t->fatal == RM_ECANCELED ? "the run was cancelled" : rm_strerror(t->fatal));
  json_object_set_new(op->exchange, "error", json_pack("{s:s, s:s}", "code", rm_errname(t->fatal ? t->fatal : RM_ECANCELED), "message", msg));
  rm_http_cancel(&op->req);
  op_free(op);
}

/* The declared sample response, for dry runs: no network at all. */
static int dry_response(lua_State *L, rm_lua_task *t, json_t *ex) {
  const json_t *sample = json_object_get(t->spec->task, "sample_response");
  json_t *status = json_object_get(sample, "status");
  json_t *headers = json_object_get(sample, "headers");
  json_t *body = json_object_get(sample, "body");
  json_t *dur = json_object_get(sample, "duration_ms");
  char *text = json_is_string(body) ? strdup(json_string_value(body))
               : body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("");
  json_t *resp = json_object();
  json_object_set_new(ex, "dry_run", json_true());
  if (!sample) json_object_set_new(ex, "note", json_string("no sample_response declared: empty 200"));
  lua_createtable(L, 0, 8);
  int tbl = lua_gettop(L);
  lua_pushinteger(L, status ? (lua_Integer)json_integer_value(status) : 200);
  lua_setfield(L, tbl, "status");
  lua_newtable(L);
  json_t *hs = json_object();
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)headers, k, v) {
    char key[256];
    size_t i;
    for (i = 0; k[i] && i < sizeof key - 1; i++) key[i] = (char)((k[i] >= 'A' && k[i] <= 'Z') ? k[i] + 32 : k[i]);
    key[i] = '\0';
    lua_pushstring(L, json_string_value(v) ? json_string_value(v) : "");
    lua_setfield(L, -2, key);
    json_object_set(hs, key, v);
  }
  if (json_is_object(body) || json_is_array(body)) {
    lua_pushliteral(L, "application/json");
    lua_setfield(L, -2, "content-type");
  }
  lua_setfield(L, tbl, "headers");
  lua_pushstring(L, text ? text : "");
  lua_setfield(L, tbl, "body");
  double ms = dur ? json_number_value(dur) : 0;
  lua_pushnumber(L, ms);
  lua_setfield(L, tbl, "duration_ms");
  rm_http_timings tm = {0, 0, 0, 0, ms};
  push_timings(L, &tm);
  lua_setfield(L, tbl, "timings");
  lua_pushliteral(L, "1.1");
  lua_setfield(L, tbl, "http_version");
  json_object_set_new(resp, "status", json_integer(status ? json_integer_value(status) : 200));
  json_object_set_new(resp, "headers", hs);
  json_object_set_new(resp, "body", json_string(text ? text : ""));
  json_object_set_new(ex, "response", resp);
  json_object_set_new(ex, "timings", timings_json(&tm));
  free(text);
  return 1;
}

/* http.request{method=, url=, headers=, query=, body= | json= | form=,
 * auth=, tls_verify=, follow_redirects=, max_redirects=,
 * max_response_bytes=, http_version=, timeout_ms=} -> response | nil, err */
static int l_request(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  rm_lua_task *t = rm__lua_task(L);
  if (!t) return luaL_error(L, "http.request: no task is running");
  const char *url = opt_string(L, 1, "url", NULL);
  if (!url || !*url) {
    lua_pushnil(L);
    lua_pushliteral(L, "E_INVALID: http.request needs a url");
    return 2;
  }
  if (json_array_size(t->exchanges) >= MAX_EXCHANGES) {
    lua_pushnil(L);
    lua_pushfstring(L, "E_DENIED: more than %d HTTP requests in one attempt", MAX_EXCHANGES);
    return 2;
  }
  http_op *op = calloc(1, sizeof *op);
  if (!op) return luaL_error(L, "http.request: out of memory");
  op->base.cancel = cancel_http;
  op->task = t;
  const char *method = opt_string(L, 1, "method", "GET");
  json_t *ex = json_object();
  json_t *shown = json_object();
  json_t *shown_headers = json_object();
  json_object_set_new(shown, "method", json_string(method));
  json_object_set_new(ex, "request", shown);
  json_array_append_new(t->exchanges, ex);
  op->exchange = ex;

  /* URL with query parameters. */
  rm_buf real_url = RM_BUF_INIT, shown_url = RM_BUF_INIT;
  const char *url_why = NULL;
  char *u = inject_url(t, url, &url_why);
  rm_buf_puts(&real_url, u ? u : url);
  rm_buf_puts(&shown_url, url);
  if (u) explicit_bzero(u, strlen(u));
  free(u);
  lua_getfield(L, 1, "query");
  if (lua_istable(L, -1)) append_pairs(L, lua_gettop(L), t, &real_url, &shown_url, strchr(url, '?') ? '&' : '?');
  lua_pop(L, 1);

  lua_getfield(L, 1, "headers");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      const char *k = lua_tostring(L, -2), *v = lua_tostring(L, -1);
      if (k && v && lua_type(L, -2) == LUA_TSTRING) {
        char *iv = inject(t, v, strlen(v), RM_SECRET_RAW, NULL);
        add_header(op, shown_headers, k, iv ? iv : v, v);
        free(iv);
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);

  char err[256];
  const char *why = url_why ? url_why : build_body(L, 1, op, shown, shown_headers, err, sizeof err);
  if (!why) why = apply_auth(L, 1, op, shown_headers, &real_url, &shown_url);
  json_object_set_new(shown, "url", json_string(shown_url.data));
  json_object_set_new(shown, "headers", shown_headers);
  op->url_secret = real_url.data && shown_url.data && strcmp(real_url.data, shown_url.data) != 0;
  op->url = rm_buf_steal(&real_url);
  rm_buf_free(&shown_url);
  if (why) {
    json_object_set_new(ex, "error", json_pack("{s:s, s:s}", "code", "E_INVALID", "message", why));
    op_free(op);
    lua_pushnil(L);
    if (strncmp(why, "E_", 2) == 0)
      lua_pushstring(L, why);
    else
      lua_pushfstring(L, "E_INVALID: %s", why);
    return 2;
  }
  if (t->spec->dry_run) {
    op_free(op);
    return dry_response(L, t, ex);
  }

  rm_http_request *r = &op->req;
  r->method = method;
  r->url = op->url;
  r->body = op->body;
  r->body_len = op->body ? strlen(op->body) : 0;
  lua_getfield(L, 1, "tls_verify");
  r->insecure = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
  lua_getfield(L, 1, "follow_redirects");
  r->follow_redirects = lua_toboolean(L, -1);
  lua_getfield(L, 1, "max_redirects");
  r->max_redirects = lua_isnumber(L, -1) ? (long)lua_tointeger(L, -1) : -1;
  lua_getfield(L, 1, "max_response_bytes");
  r->max_response_bytes = (size_t)lua_tonumber(L, -1);
  lua_getfield(L, 1, "timeout_ms");
  double timeout = lua_tonumber(L, -1);
  const char *ver = opt_string(L, 1, "http_version", "");
  lua_pop(L, 5);
  r->http_version = strcmp(ver, "2") == 0 ? 2 : strcmp(ver, "1.1") == 0 ? 11 : 0;
  /* Never outlive the attempt: the transfer stops just before the task's
   * deadline, so the record says which request ran out of time. */
  uint64_t now = uv_hrtime();
  double left = t->deadline_ns > now ? (double)(t->deadline_ns - now) / 1e6 : 0;
  if (timeout <= 0 || timeout > left) timeout = left;
  r->timeout_ms = timeout < 1 ? 1 : (long)timeout;

  const char *busy = rm__lua_begin_op(L, &op->base);
  if (busy) {
    op_free(op);
    lua_pushnil(L);
    lua_pushstring(L, busy);
    return 2;
  }
  int rc = rm_http_send(t->host->http, r, on_done);
  if (rc) {
    rm__lua_end_op(t);
    op_free(op);
    push_error(L, rc, "could not start the request");
    return 2;
  }
  t->host->requests_sent++;
  return lua_yield(L, 0);
}

int rm__lua_open_http(lua_State *L) {
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, l_request);
  lua_setfield(L, -2, "request");
  return 1;
}
