/* rm_store on the loop side: opening, the job queues, delivering results
 * through one uv_async_t, and closing. The database work itself happens
 * on the worker threads (worker.c). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/err.h"

#define container_of(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))
#define THREADS_MAX 64

typedef struct init_ctx {
  rm_store *s;
  bool migrate;
  rm__conn *conn;
  int rc;
  char *err;
  size_t errlen;
} init_ctx;

/* Start-up work runs on a thread of its own even though rm_store_open
 * waits for it: the loop thread never talks to the database. */
static void init_main(void *arg) {
  init_ctx *ctx = arg;
  rm_store *s = ctx->s;
  rm__connopts o = {.writer = true, .retry_ms = s->opts.retry_ms};
  ctx->rc = rm__open_db(s->be, s->target, &o, ctx->migrate, &ctx->conn, NULL, NULL, ctx->err, ctx->errlen);
}

/* Connects and prepares the schema on a thread of its own, waiting for
 * it; *conn is the connection the first worker takes over. */
static int start_up(rm_store *s, rm__conn **conn, char *err, size_t errlen) {
  init_ctx ctx = {.s = s, .migrate = s->opts.migrate, .err = err, .errlen = errlen};
  uv_thread_t t;
  if (uv_thread_create(&t, init_main, &ctx) != 0) {
    snprintf(err, errlen, "store: cannot start a database thread");
    return RM_ENOMEM;
  }
  uv_thread_join(&t);
  *conn = ctx.conn;
  return ctx.rc;
}

static void free_store(rm_store *s) {
  for (int i = 0; s->workers && i < s->nworkers; i++)
    if (s->workers[i].conn) s->be->disconnect(s->workers[i].conn);
  free(s->workers);
  free(s->target);
  free(s);
}

static int init_sync(rm_store *s) {
  if (uv_mutex_init(&s->mu)) return -1;
  if (uv_cond_init(&s->wq.cv)) {
    uv_mutex_destroy(&s->mu);
    return -1;
  }
  if (uv_cond_init(&s->rq.cv)) {
    uv_cond_destroy(&s->wq.cv);
    uv_mutex_destroy(&s->mu);
    return -1;
  }
  return 0;
}

static void destroy_sync(rm_store *s) {
  uv_cond_destroy(&s->rq.cv);
  uv_cond_destroy(&s->wq.cv);
  uv_mutex_destroy(&s->mu);
}

static void deliver(rm__job *j) {
  if (j->cb) {
    const char *msg = j->err ? (j->errmsg ? j->errmsg : rm_strerror(j->err)) : NULL;
    json_t *res = j->err ? NULL : j->result; /* a failed job has no result */
    if (!j->err) j->result = NULL;
    j->cb(j->ud, j->err, msg, res);
  }
  json_decref(j->result);
  json_decref(j->args);
  free(j->errmsg);
  free(j);
}

static void on_closed(uv_handle_t *h) {
  rm_store *s = container_of(h, rm_store, async);
  void (*done)(void *) = s->close_cb;
  void *ud = s->close_ud;
  destroy_sync(s);
  free_store(s);
  if (done) done(ud);
}

/* Runs the callbacks of finished jobs; once closing and every worker has
 * left, joins them and closes the handle. */
static void on_async(uv_async_t *a) {
  rm_store *s = container_of(a, rm_store, async);
  for (;;) {
    uv_mutex_lock(&s->mu);
    rm__job *list = s->done_head;
    s->done_head = s->done_tail = NULL;
    bool finish = !list && s->closing && !s->finishing && s->exited == s->nworkers;
    if (finish) s->finishing = true;
    uv_mutex_unlock(&s->mu);
    if (!list) {
      if (!finish) return;
      for (int i = 0; i < s->nworkers; i++) uv_thread_join(&s->workers[i].tid);
      uv_close((uv_handle_t *)&s->async, on_closed);
      return;
    }
    while (list) {
      rm__job *next = list->next;
      deliver(list);
      if (--s->outstanding == 0 && !s->closing) uv_unref((uv_handle_t *)&s->async);
      list = next;
    }
  }
}

static void push(rm__job **head, rm__job **tail, rm__job *j) {
  j->next = NULL;
  if (*tail) (*tail)->next = j;
  else *head = j;
  *tail = j;
}

void rm__submit(rm_store *s, const rm__op *op, json_t *args, rm_store_cb cb, void *ud) {
  rm__job *j = calloc(1, sizeof *j);
  if (!j) {
    json_decref(args);
    if (cb) cb(ud, RM_ENOMEM, "store: out of memory", NULL);
    return;
  }
  j->op = op;
  j->args = args;
  j->cb = cb;
  j->ud = ud;
  j->deadline_ms = rm__mono_ms() + s->opts.retry_ms;
  if (s->outstanding++ == 0) uv_ref((uv_handle_t *)&s->async);
  if (!args) rm__fail(j, RM_EINVAL, "%s: missing or invalid arguments", op->name);
  uv_mutex_lock(&s->mu);
  if (!j->err && s->closing) rm__fail(j, RM_ECANCELED, "%s: the store is closing", op->name);
  if (j->err) {
    push(&s->done_head, &s->done_tail, j);
  } else {
    rm__queue *q = s->be->pg || op->kind != RM__OP_READ ? &s->wq : &s->rq;
    push(&q->head, &q->tail, j);
    uv_cond_signal(&q->cv);
  }
  bool wake = j->err != 0;
  uv_mutex_unlock(&s->mu);
  if (wake) uv_async_send(&s->async);
}

/* SQLite: one writer on wq plus readers on rq; PostgreSQL: a pool on wq,
 * whose first member takes over the start-up connection. */
static int start_workers(rm_store *s, rm__conn *first, char *err, size_t errlen) {
  int n = s->be->pg ? s->opts.threads : s->opts.threads + 1;
  s->workers = calloc((size_t)n, sizeof *s->workers);
  if (!s->workers) {
    s->be->disconnect(first);
    snprintf(err, errlen, "store: out of memory");
    return RM_ENOMEM;
  }
  for (int i = 0; i < n; i++) {
    rm__worker *w = &s->workers[i];
    w->s = s;
    w->writer = s->be->pg || i == 0;
    w->q = s->be->pg || i == 0 ? &s->wq : &s->rq;
    w->conn = i == 0 ? first : NULL;
  }
  s->nworkers = n;
  for (int i = 0; i < n; i++) {
    if (uv_thread_create(&s->workers[i].tid, rm__worker_main, &s->workers[i]) == 0) continue;
    uv_mutex_lock(&s->mu);
    s->closing = true;
    s->nworkers = i;
    uv_cond_broadcast(&s->wq.cv);
    uv_cond_broadcast(&s->rq.cv);
    uv_mutex_unlock(&s->mu);
    for (int k = 0; k < i; k++) uv_thread_join(&s->workers[k].tid);
    s->nworkers = n; /* free_store closes the connections never handed to a thread */
    snprintf(err, errlen, "store: cannot start a database thread");
    return RM_ENOMEM;
  }
  return 0;
}

int rm_store_open(rm_store **out, uv_loop_t *loop, const char *url, const rm_store_opts *opts, char *err,
                  size_t errlen) {
  const char *target;
  const rm__backend *be = url ? rm__backend_for(url, &target) : NULL;
  *out = NULL;
  if (!be) {
    rm__bad_url(url, err, errlen);
    return RM_EINVAL;
  }
  rm_store *s = calloc(1, sizeof *s);
  if (!s || !(s->target = strdup(target))) {
    free(s);
    snprintf(err, errlen, "store: out of memory");
    return RM_ENOMEM;
  }
  s->loop = loop;
  s->be = be;
  if (opts) s->opts = *opts;
  if (s->opts.threads <= 0) s->opts.threads = 2;
  if (s->opts.threads > THREADS_MAX) s->opts.threads = THREADS_MAX;
  if (s->opts.retry_ms == 0) s->opts.retry_ms = 30000;

  rm__conn *conn = NULL;
  int rc = start_up(s, &conn, err, errlen);
  if (rc == 0 && init_sync(s) != 0) {
    be->disconnect(conn);
    snprintf(err, errlen, "store: cannot create locks");
    rc = RM_ENOMEM;
  }
  if (rc != 0) {
    free_store(s);
    return rc;
  }
  if ((rc = uv_async_init(loop, &s->async, on_async)) != 0) {
    be->disconnect(conn);
    destroy_sync(s);
    free_store(s);
    snprintf(err, errlen, "store: %s", uv_strerror(rc));
    return RM_ENOMEM;
  }
  if ((rc = start_workers(s, conn, err, errlen)) != 0) {
    /* the handle belongs to the loop now: free the store when it closes */
    s->close_cb = NULL;
    uv_close((uv_handle_t *)&s->async, on_closed);
    return rc;
  }
  /* An idle store does not keep the loop running. */
  uv_unref((uv_handle_t *)&s->async);
  *out = s;
  return 0;
}

void rm_store_close(rm_store *s, void (*done)(void *ud), void *ud) {
  uv_mutex_lock(&s->mu);
  s->closing = true;
  s->close_cb = done;
  s->close_ud = ud;
  uv_cond_broadcast(&s->wq.cv);
  uv_cond_broadcast(&s->rq.cv);
  uv_mutex_unlock(&s->mu);
  uv_ref((uv_handle_t *)&s->async); /* until the workers are joined */
  uv_async_send(&s->async);
}

void rm__store_step_stats(rm_store *s, uint64_t *txs, uint64_t *jobs) {
  uv_mutex_lock(&s->mu);
  *txs = s->step_txs;
  *jobs = s->step_jobs;
  uv_mutex_unlock(&s->mu);
}

const char *rm_store_backend(const rm_store *s) { return s->be->name; }
