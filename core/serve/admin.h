/* What the administration routes share (users_api.c, keys_api.c,
 * secrets_api.c, config_api.c, audit_api.c): list queries, times, the
 * caller's standing, waiting for the store at start-up, and the secret
 * load of the start. Internal to core/serve. */
#ifndef RM_SERVE_ADMIN_H
#define RM_SERVE_ADMIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "serve/serve.h"

/* The store query of a list request: page and page_size (1..500,
 * default def_size), and every parameter named in known (NULL-
 * terminated) copied as a string. Any other parameter is refused with a
 * 400 (code 40002) naming it as "query.NAME". NULL: answered and freed. */
json_t *rm__serve_list_query(rm_hctx *c, const char *const *known, long def_size);

/* A store list callback's outcome as the answer, and frees c: res
 * (consumed) with each item replaced by view(item) (a new reference;
 * NULL view keeps the items); a store RM_EINVAL (a bad sort, time or
 * filter) as a 400 saying which; other errors as rm_hctx_store_error. */
void rm__serve_list_answer(rm_hctx *c, int err, const char *errmsg, json_t *res,
                           json_t *(*view)(const json_t *item));

/* Whether the caller is an admin. */
bool rm__serve_is_admin(const rm_hctx *c);

/* Whether the document is live (not soft-deleted). */
bool rm__serve_live(const json_t *doc);

/* An ISO-8601 UTC or offset time ("2026-01-02", "2026-01-02T03:04:05Z",
 * "...T03:04:05.123+02:00") as Unix seconds. 0 or RM_EINVAL. */
int rm__serve_iso_to_unix(const char *s, int64_t *out);
/* Unix seconds as "YYYY-MM-DDTHH:MM:SSZ" (a new JSON string). */
json_t *rm__serve_unix_to_iso(int64_t t);

/* Blocking store calls for start-up (before the loop serves anything):
 * start the call with rm__serve_wait_cb and &w, then rm__serve_wait. */
typedef struct rm__serve_waiter {
  bool done;
  int err;
  char errmsg[300];
  json_t *res; /* owned by the caller once done */
} rm__serve_waiter;
void rm__serve_wait_cb(void *ud, int err, const char *errmsg, json_t *res);
void rm__serve_wait(rm_serve *s, rm__serve_waiter *w);

/* Loads every stored secret into s->secrets (secrets_api.c). A secret
 * that does not decrypt is logged (name and reason) and skipped. 0, or -1
 * when the store cannot be read (said on stderr). */
int rm__serve_secrets_load(rm_serve *s);
/* A secret as stored, changed through another server (def_sync.c): a
 * live one with a value replaces what runs get (the old value stays
 * masked); a deleted one, or one being deleted (no ciphertext left),
 * leaves injection (secrets_api.c). */
void rm__serve_secret_sync(rm_serve *s, const json_t *doc);
/* The global config document as stored, changed through another server
 * (def_sync.c): put in force unless its version is (config_api.c). */
void rm__serve_config_sync(rm_serve *s, const json_t *doc);

#endif
