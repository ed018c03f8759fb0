/* restmon rotate-key: a new vault master key, and every stored secret
 * re-encrypted under it.
 *
 *   restmon rotate-key [-c FILE] [--database URL] [--max N]
 *
 * The crash-safe protocol is the one of secret/vault.h: after
 * rm_vault_rotate_begin the key file (old key) and key_file.new (new key)
 * both exist, and every process that opens the vault decrypts with
 * either, so a crash at any point loses nothing. Each secret is
 * re-encrypted in its own store write, checked against the version it
 * was read at. Running the command again reuses key_file.new and skips
 * the secrets already under it. The key is committed (key_file.new
 * renamed over the key file, the old key kept as key_file.old-<id>) only
 * after a listing of the store finds no live secret left under the old
 * key. --max N stops after N re-encryptions without committing, to spread
 * a large store over several runs.
 *
 * Stop `restmon serve` before rotating and start it afterwards: a running
 * server keeps encrypting new values with the key it opened, and would
 * not decrypt what was re-encrypted once the old key is retired. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmds.h"
#include "cli/common.h"
#include "config/config.h"
#include "secret/vault.h"
#include "store/store.h"
#include "util/err.h"

#define MAX_ROUNDS 3 /* listings in a row that may still find old ciphertexts */

typedef struct rot {
  uv_loop_t loop;
  rm_store *store;
  rm_vault *v;
  char old_id[9], new_id[9];
  long max;  /* re-encryptions allowed in this run; 0 = no limit */
  long done; /* re-encrypted so far */
} rot;

typedef struct waiter {
  bool done;
  int err;
  char errmsg[600];
  json_t *res;
} waiter;

static void on_result(void *ud, int err, const char *errmsg, json_t *res) {
  waiter *w = ud;
  w->done = true;
  w->err = err;
  if (err) snprintf(w->errmsg, sizeof w->errmsg, "%s", errmsg ? errmsg : rm_strerror(err));
  w->res = res;
}

static int wait_for(rot *r, waiter *w) {
  while (!w->done) uv_run(&r->loop, UV_RUN_ONCE);
  return w->err;
}

/* Every live secret document, oldest first (a new array in *out). */
static int list_secrets(rot *r, json_t **out) {
  json_t *all = json_array();
  for (json_int_t page = 1, pages = 1; page <= pages; page++) {
    waiter w = {0};
    json_t *q = json_pack("{s:I, s:i, s:s}", "page", page, "page_size", 500, "sort", "created_at");
    rm_store_doc_list(r->store, "secret", q, on_result, &w);
    json_decref(q);
    if (wait_for(r, &w)) {
      fprintf(stderr, "restmon rotate-key: listing the secrets: %s\n", w.errmsg);
      json_decref(all);
      return -1;
    }
    json_array_extend(all, json_object_get(w.res, "items"));
    pages = json_integer_value(json_object_get(w.res, "total_pages"));
    json_decref(w.res);
  }
  *out = all;
  return 0;
}

/* Whether ciphertext ct ("rmv1:<key id>:...") was made by key id. */
static bool under_key(const char *ct, const char *id) {
  return ct && strncmp(ct, "rmv1:", 5) == 0 && strncmp(ct + 5, id, 8) == 0 && ct[13] == ':';
}

/* Whether secret d still has a ciphertext under another key (a secret
 * whose deletion was cut short may have none: nothing to re-encrypt). */
static bool needs(const rot *r, const json_t *d) {
  const char *ct = json_string_value(json_object_get(d, "ciphertext"));
  return ct && !under_key(ct, r->new_id);
}

/* Decrypts d's value with either key and stores it encrypted with the
 * new one. 0, or -1 (said on stderr). */
static int reencrypt(rot *r, const json_t *d) {
  const char *id = json_string_value(json_object_get(d, "id")), *name = json_string_value(json_object_get(d, "name"));
  char *plain = NULL, *ct = NULL, err[300] = "";
  size_t len = 0;
  int rc = rm_vault_decrypt(r->v, json_string_value(json_object_get(d, "ciphertext")), id, &plain, &len, err, sizeof err);
  if (rc == 0 && (rc = rm_vault_encrypt(r->v, plain, len, id, &ct)) != 0)
    snprintf(err, sizeof err, "encrypting: %s", rm_strerror(rc));
  rm_vault_free_plain(plain, len);
  if (rc) {
    fprintf(stderr, "restmon rotate-key: secret %s (%s): %s\n", name, id, err);
    return -1;
  }
  json_t *doc = json_deep_copy(d);
  json_object_set_new(doc, "ciphertext", json_string(ct));
  json_object_set_new(doc, "key_id", json_string(r->new_id));
  free(ct);
  waiter w = {0};
  rm_store_doc_put(r->store, "secret", doc, on_result, &w);
  json_decref(doc);
  if (wait_for(r, &w)) {
    fprintf(stderr, "restmon rotate-key: storing secret %s (%s): %s\n", name, id, w.errmsg);
    return -1;
  }
  json_decref(w.res);
  return 0;
}

/* One listing: re-encrypts what is not under the new key yet (up to the
 * limit). *found: how many were not; *left: how many the limit left. */
static int pass(rot *r, long *found, long *left) {
  json_t *all;
  if (list_secrets(r, &all) != 0) return -1;
  size_t i, n = json_array_size(all);
  json_t *d;
  long todo = 0, k = 0;
  *left = 0;
  json_array_foreach(all, i, d) todo += needs(r, d);
  printf("%zu secret(s) in the store, %zu to re-encrypt under key %s\n", n, (size_t)todo, r->new_id);
  int rc = 0;
  json_array_foreach(all, i, d) {
    if (rc || !needs(r, d)) continue;
    if (r->max && r->done >= r->max) {
      (*left)++;
      continue;
    }
    if ((rc = reencrypt(r, d)) == 0) {
      r->done++;
      if (++k % 10 == 0 || k == todo || r->done == r->max) printf("re-encrypted %ld/%ld secrets\n", k, todo);
      fflush(stdout);
    }
  }
  json_decref(all);
  *found = todo;
  return rc;
}

static void audit_rotation(rot *r) {
  waiter w = {0};
  json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:{s:s}, s:{s:s, s:I}}", "actor", "restmon", "action",
                        "vault.rotate_key", "object_kind", "vault", "object_id", r->new_id, "before", "key_id",
                        r->old_id, "after", "key_id", r->new_id, "reencrypted", (json_int_t)r->done);
  rm_store_audit(r->store, e, on_result, &w);
  json_decref(e);
  if (wait_for(r, &w)) fprintf(stderr, "restmon rotate-key: writing the audit entry: %s\n", w.errmsg);
  json_decref(w.res);
}

/* Re-encrypts until a listing finds nothing under the old key, then
 * commits the new key. */
static int rotate(rot *r, const char *key_file) {
  long found = 0, left = 0;
  for (int round = 0; round < MAX_ROUNDS; round++) {
    if (pass(r, &found, &left) != 0) return RM_EXIT_FAILED;
    if (left) {
      printf("stopped after %ld (--max); %ld secret(s) left under the old key: run restmon rotate-key again "
             "(key %s is not committed yet; both keys decrypt meanwhile)\n", r->done, left, r->new_id);
      return RM_EXIT_OK;
    }
    if (!found) break;
  }
  if (found) {
    fprintf(stderr, "restmon rotate-key: secrets keep being written under the old key: stop restmon serve and "
                    "run restmon rotate-key again\n");
    return RM_EXIT_FAILED;
  }
  char err[600] = "";
  if (rm_vault_rotate_commit(r->v, err, sizeof err) != 0) {
    fprintf(stderr, "restmon rotate-key: committing the new key: %s\n", err);
    return RM_EXIT_FAILED;
  }
  audit_rotation(r);
  printf("new key id: %s (the old key %s is kept in %s.old-%s for older backups)\n"
         "restart restmon serve so that it uses the new key\n", r->new_id, r->old_id, key_file, r->old_id);
  return RM_EXIT_OK;
}

static void store_closed(void *ud) { (void)ud; }

/* Opens the store and the rotating vault, rotates, closes. */
static int run(const char *url, const char *key_file, long max) {
  rot r = {.max = max};
  char err[600] = "";
  if (rm_vault_rotate_begin(&r.v, key_file, err, sizeof err) != 0) {
    fprintf(stderr, "restmon rotate-key: %s\n", err);
    return RM_EXIT_FAILED;
  }
  snprintf(r.new_id, sizeof r.new_id, "%s", rm_vault_key_id(r.v));
  snprintf(r.old_id, sizeof r.old_id, "%s", rm_vault_other_key_id(r.v));
  printf("rotating the master key %s -> %s (%s.new)\n", r.old_id, r.new_id, key_file);
  uv_loop_init(&r.loop);
  rm_store_opts so = {.migrate = true};
  int rc = RM_EXIT_FAILED;
  if (rm_store_open(&r.store, &r.loop, url, &so, err, sizeof err) != 0) {
    fprintf(stderr, "restmon rotate-key: %s\n", err);
  } else {
    rc = rotate(&r, key_file);
    rm_store_close(r.store, store_closed, NULL);
    uv_run(&r.loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&r.loop);
  rm_vault_close(r.v);
  return rc;
}

int rm_cmd_rotate_key(int argc, char **argv) {
  enum { O_DB = 256, O_MAX };
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"database", required_argument, NULL, O_DB},
                                       {"max", required_argument, NULL, O_MAX},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *config = NULL, *db = NULL;
  long max = 0;
  int ch;
  char *end;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
    if (ch == 'c') config = optarg;
    else if (ch == O_DB) db = optarg;
    else if (ch == O_MAX && (max = strtol(optarg, &end, 10)) > 0 && !*end) continue;
    else {
      fprintf(ch == 'h' ? stdout : stderr,
              "usage: restmon rotate-key [-c FILE] [--database URL] [--max N]\n"
              "makes a new vault master key and re-encrypts every stored secret under it;\n"
              "safe to run again after a crash. Stop restmon serve first, start it afterwards.\n"
              "  -c, --config FILE   settings file (vault.key_file, database)\n"
              "  --database URL      the store (default: `database` of the settings)\n"
              "  --max N             re-encrypt at most N secrets, then stop without committing\n");
      return ch == 'h' ? RM_EXIT_OK : RM_EXIT_INVALID;
    }
  }
  rm_config *cfg = NULL;
  const char *url = rm_cli_database_url(db, config, &cfg);
  if (!url) return RM_EXIT_INVALID;
  int rc = run(url, rm_config_str(cfg, "vault.key_file"), max);
  rm_config_free(cfg);
  return rc;
}
