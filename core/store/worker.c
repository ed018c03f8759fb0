/* Store worker threads: each takes jobs from its queue, runs them in a
 * transaction on its own connection and hands them back to the loop.
 *
 * Group commit: a thread that takes a step write (RM__OP_STEP: steps and
 * the other small writes of checks) also takes every other one waiting in
 * its queue (up to GROUP_MAX) and commits them in one transaction, each inside its own savepoint so that one refused
 * write (a lost lease) does not undo the others. Their callbacks run
 * after the COMMIT. One group is in flight at a time (see take()).
 *
 * Retries: a transaction that fails for a reason that may heal (server
 * unreachable, connection lost, SQLite busy, serialization failure) is
 * run again on a fresh transaction, with backoff, until the job's
 * deadline (queued + retry_ms); then the job fails with RM_EDB and the
 * last cause. A job always gets at least one attempt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/err.h"

#define GROUP_MAX 512
#define BACKOFF_FIRST_MS 20
#define BACKOFF_MAX_MS 1000

/* Takes the first job this thread may run, or NULL. Step writes go one
 * group at a time (s->step_busy): a group takes every step write queued,
 * in order, so steps commit in the order they were submitted even on a
 * PostgreSQL pool, and the writes arriving meanwhile gather for the next
 * group. Called with s->mu held. */
static rm__job *take(rm_store *s, rm__queue *q) {
  rm__job **pp = &q->head, *prev = NULL; /* prev: the job before *pp */
  if (s->step_busy)
    while (*pp && (*pp)->op->kind == RM__OP_STEP) prev = *pp, pp = &(*pp)->next;
  rm__job *first = *pp, *last = first;
  if (!first) return NULL;
  *pp = first->next;
  first->next = NULL;
  if (q->tail == first) q->tail = prev;
  if (first->op->kind == RM__OP_STEP) {
    s->step_busy = true;
    int n = 1;
    while (*pp && n < GROUP_MAX) {
      rm__job *x = *pp;
      if (x->op->kind != RM__OP_STEP) {
        prev = x, pp = &x->next;
        continue;
      }
      *pp = x->next;
      x->next = NULL;
      if (q->tail == x) q->tail = prev;
      last = last->next = x;
      n++;
    }
  }
  return first;
}

static void fail_all(rm__job *jobs, int err, const char *msg) {
  for (rm__job *j = jobs; j; j = j->next) {
    rm__job_reset(j);
    rm__fail(j, err, "%s", msg);
  }
}

/* One job inside a group: its savepoint keeps a failure to itself. */
static int run_in_group(rm__conn *c, rm__job *j) {
  int rc = rm__savepoint(c);
  if (rc != 0) return rc;
  int jr = j->op->run(c, j);
  if (jr == RM__ERETRY) return jr;
  if (jr != 0) {
    if (!j->err) rm__fail(j, jr, "%s: %s", j->op->name, rm_strerror(jr));
    rm__rollback_to(c);
    return 0;
  }
  return rm__release(c);
}

/* 0 when every job has its outcome (some may have failed on their own);
 * otherwise the transaction's failure (RM__ERETRY or RM_EDB, cause in
 * c->err), and no job's work was kept. */
static int run_tx(rm__conn *c, rm__job *jobs) {
  bool group = jobs->op->kind == RM__OP_STEP;
  int rc = rm__begin(c, jobs->op->kind != RM__OP_READ);
  if (rc != 0) return rc;
  for (rm__job *j = jobs; j; j = j->next) {
    if (group) {
      if ((rc = run_in_group(c, j)) != 0) break;
      continue;
    }
    int jr = j->op->run(c, j);
    if (jr == RM__ERETRY) {
      rc = jr;
      break;
    }
    if (jr != 0) {
      if (!j->err) rm__fail(j, jr, "%s: %s", j->op->name, rm_strerror(jr));
      rm__rollback(c);
      return 0;
    }
  }
  if (rc == 0 && (rc = rm__commit(c)) == 0) return 0;
  rm__rollback(c);
  return rc == RM__ERETRY ? rc : RM_EDB;
}

static int ensure_conn(rm__worker *w, char *err, size_t errlen) {
  rm_store *s = w->s;
  if (w->conn && s->be->broken(w->conn)) {
    s->be->disconnect(w->conn);
    w->conn = NULL;
  }
  if (w->conn) return 0;
  rm__connopts o = {.writer = w->writer, .retry_ms = s->opts.retry_ms};
  return s->be->connect(&w->conn, s->target, &o, err, errlen);
}

static void run_jobs(rm__worker *w, rm__job *jobs) {
  uint64_t deadline = jobs->deadline_ms, queued = deadline - w->s->opts.retry_ms;
  unsigned pause = BACKOFF_FIRST_MS;
  char cause[RM__ERRLEN];
  for (;;) {
    int rc = ensure_conn(w, cause, sizeof cause);
    if (rc == 0 && (rc = run_tx(w->conn, jobs)) != 0) snprintf(cause, sizeof cause, "%s", w->conn->err);
    if (rc == 0) return;
    uint64_t now = rm__mono_ms();
    if (rc != RM__ERETRY) {
      fail_all(jobs, rc == RM_ENOMEM ? rc : RM_EDB, cause);
      return;
    }
    if (now >= deadline) {
      size_t n = strlen(cause);
      snprintf(cause + n, sizeof cause - n, " (gave up after %llu ms)", (unsigned long long)(now - queued));
      fail_all(jobs, RM_EDB, cause);
      return;
    }
    for (rm__job *j = jobs; j; j = j->next) rm__job_reset(j);
    uv_sleep((unsigned)(deadline - now < pause ? deadline - now : pause));
    pause = pause * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : pause * 2;
  }
}

/* Hands finished jobs to the loop; ends a step group. mu held. */
static void done(rm_store *s, rm__queue *q, rm__job *jobs) {
  rm__job *last = jobs;
  uint64_t n = 1;
  for (; last->next; n++) last = last->next;
  if (jobs->op->kind == RM__OP_STEP) {
    s->step_txs++;
    s->step_jobs += n;
    s->step_busy = false;
    uv_cond_broadcast(&q->cv); /* step writes may be waiting for this group */
  }
  if (s->done_tail) s->done_tail->next = jobs;
  else s->done_head = jobs;
  s->done_tail = last;
}

void rm__worker_main(void *arg) {
  rm__worker *w = arg;
  rm_store *s = w->s;
  uv_mutex_lock(&s->mu);
  for (;;) {
    rm__job *jobs = take(s, w->q);
    if (!jobs) {
      if (s->closing && !w->q->head) break;
      uv_cond_wait(&w->q->cv, &s->mu);
      continue;
    }
    uv_mutex_unlock(&s->mu);
    run_jobs(w, jobs);
    uv_mutex_lock(&s->mu);
    done(s, w->q, jobs);
    uv_mutex_unlock(&s->mu);
    uv_async_send(&s->async);
    uv_mutex_lock(&s->mu);
  }
  uv_mutex_unlock(&s->mu);
  if (w->conn) s->be->disconnect(w->conn);
  w->conn = NULL;
  uv_mutex_lock(&s->mu);
  s->exited++;
  uv_mutex_unlock(&s->mu);
  uv_async_send(&s->async);
}
