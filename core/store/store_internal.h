/* Internals shared by the files of core/store: jobs, the operations table,
 * the store handle, and small helpers (SQL building, paging, time, ids). */
#ifndef RM_STORE_INTERNAL_H
#define RM_STORE_INTERNAL_H

#include <uv.h>

#include "store/db.h"
#include "store/store.h"
#include "util/buf.h"

typedef struct rm__job rm__job;

/* Which thread may run an operation: SQLite sends writes to its one
 * writer and reads to the readers; PostgreSQL's pool runs both.
 * RM__OP_STEP: writes that are group-committed (step writes, and the
 * frequent small writes of checks: fires, last steps, signal
 * observations); each must be correct on its own inside a savepoint. */
typedef enum { RM__OP_READ, RM__OP_WRITE, RM__OP_STEP } rm__op_kind;

typedef struct rm__op {
  const char *name;
  rm__op_kind kind;
  /* Runs inside a transaction on a worker thread. Returns 0 (j->result
   * set, or left NULL), an RM_E* with j->errmsg set (rm__fail), or
   * RM__ERETRY to run the whole transaction again. */
  int (*run)(rm__conn *c, rm__job *j);
} rm__op;

struct rm__job {
  rm__job *next;
  const rm__op *op;
  json_t *args;         /* owned by the job; never shared with the loop thread */
  uint64_t deadline_ms; /* monotonic: retries stop here */
  rm_store_cb cb;
  void *ud;
  int err;
  char *errmsg;
  json_t *result;
};

typedef struct rm__queue {
  rm__job *head, *tail;
  uv_cond_t cv;
} rm__queue;

typedef struct rm__worker {
  rm_store *s;
  uv_thread_t tid;
  rm__queue *q;
  bool writer;
  rm__conn *conn; /* this thread's own connection; NULL until needed */
} rm__worker;

struct rm_store {
  uv_loop_t *loop;
  uv_async_t async; /* workers -> loop: jobs are done */
  size_t outstanding; /* jobs submitted and not yet delivered (loop thread);
                       * the handle keeps the loop alive only while > 0 */
  const rm__backend *be;
  char *target;
  rm_store_opts opts;
  uv_mutex_t mu; /* guards the queues, done list and the flags below */
  rm__queue wq;  /* writes (PostgreSQL: everything) */
  rm__queue rq;  /* SQLite reads */
  rm__job *done_head, *done_tail;
  rm__worker *workers;
  int nworkers, exited;
  bool closing, finishing;
  bool step_busy; /* a group of step writes is being committed */
  uint64_t step_txs, step_jobs; /* group commits and the step writes in them */
  void (*close_cb)(void *ud);
  void *close_ud;
};

/* Queues op with args (stolen; NULL means the arguments could not be
 * built: the callback gets RM_EINVAL). The callback runs on the loop. */
void rm__submit(rm_store *s, const rm__op *op, json_t *args, rm_store_cb cb, void *ud);
/* Group commits so far and the step writes they held (for tests). */
void rm__store_step_stats(rm_store *s, uint64_t *txs, uint64_t *jobs);
/* Worker thread body (worker.c). */
void rm__worker_main(void *arg);
/* Sets j->err and j->errmsg; returns err. */
int rm__fail(rm__job *j, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* For a failed database call: RM__ERETRY passes through; anything else
 * fails the job with the connection's message. Returns rc. */
int rm__dbfail(rm__job *j, rm__conn *c, int rc);
/* Frees a job's result and message (before a retry). */
void rm__job_reset(rm__job *j);

/* Connects and checks or migrates the schema: the start-up work of
 * rm_store_open and rm_store_migrate. from/to may be NULL. */
int rm__schema_prepare(rm__conn *c, bool migrate, int *from, int *to, char *err, size_t errlen);
/* Connects and prepares the schema, retrying what may heal (an
 * unreachable server, a locked file) until o->retry_ms passed; on success
 * *out is the connection, else NULL and err says why. */
int rm__open_db(const rm__backend *be, const char *target, const rm__connopts *o, bool migrate, rm__conn **out,
                int *from, int *to, char *err, size_t errlen);
/* Connects, retrying transient failures until retry_ms passed. */
int rm__connect_retry(const rm__backend *be, const char *target, const rm__connopts *o, rm__conn **out,
                      char *err, size_t errlen);

/* ---- SQL building: fragments whose '?' become the next $N ----------- */
typedef struct rm__sql {
  rm_buf b;
  json_t *params;
  int err; /* RM_ENOMEM once anything failed */
} rm__sql;

void rm__sql_init(rm__sql *q);
/* Appends frag; each '?' in it takes the next of the json_t * arguments
 * (new references, stolen). */
void rm__sql_add(rm__sql *q, const char *frag, ...);
void rm__sql_free(rm__sql *q);
/* Adds frag (one '?') with the ISO-8601 time query[key] normalized, when
 * present; RM_EINVAL naming key when it is not a time. */
int rm__sql_time(rm__job *j, rm__sql *q, const json_t *query, const char *key, const char *frag);
/* Adds " AND <col, a JSON array of strings, holds tag>" (GIN-indexed
 * containment on PostgreSQL, json_each on SQLite). */
void rm__sql_tag(rm__sql *q, bool pg, const char *col, const char *tag);

/* ---- Paged lists ---------------------------------------------------- */
typedef struct rm__page {
  int page, size;
  char order[160]; /* "ORDER BY ..." */
} rm__page;

/* Reads page, page_size and sort from query; sort names one of allowed
 * (NULL-terminated), with '-' for descending; ties break on tiebreak.
 * RM_EINVAL with the field named in j. */
int rm__page_parse(rm__job *j, const json_t *query, const char *const *allowed, const char *dflt,
                   const char *tiebreak, rm__page *p);
/* Runs "SELECT count(*) FROM <from_where>" and "SELECT cols FROM
 * <from_where> ORDER ... LIMIT ... OFFSET", result {"items", "page",
 * "page_size", "total", "total_pages"} in j->result. Consumes q. */
int rm__page_run(rm__conn *c, rm__job *j, const char *cols, rm__sql *q, const rm__page *p);

/* ---- Runs ----------------------------------------------------------- */
#define RM__RUN_LIST_COLS                                                                                     \
  "run_id, workflow_id, workflow_name, workflow_version, source, trigger, inputs, status, reason, vars, "   \
  "dry_run, rerun_of, resumed_from, created_at, started_at, finished_at, duration_ms, summary, tags, "     \
  "lease_owner, lease_expires_at, cancel_requested, acknowledged_by, acknowledged_at"
#define RM__RUN_COLS RM__RUN_LIST_COLS ", definition"

/* ---- Signals ---------------------------------------------------------- */
#define RM__SIGNAL_COLS                                                                                      \
  "object_id, object_type, name, tags, state, state_rank, machine, transitions, changed_at, observed_at, "  \
  "acknowledged_by, acknowledged_at, ack_text, updated_at"
struct rm_signal;
/* The machine this connection last wrote for object id (signal_memo.c),
 * when the row's machine is still exactly text (len bytes): into *out,
 * true. */
bool rm__sigmemo_get(rm__conn *c, const char *id, const char *text, size_t len, struct rm_signal *out);
/* Remembers sig as the machine written for id as text (malloc'd, stolen). */
void rm__sigmemo_put(rm__conn *c, const char *id, char *text, const struct rm_signal *sig);

/* The stored step records of a run in execution order (a new array). */
int rm__run_steps(rm__conn *c, rm__job *j, const char *run_id, json_t **steps);
/* Fails j saying why owner does not hold run_id's lease: RM_ENOTFOUND,
 * or RM_ECONFLICT naming the holder or the expiry. */
int rm__lease_lost(rm__conn *c, rm__job *j, const char *run_id, const char *owner);
/* The lease condition for "WHERE run_id = $1 AND" with owner as $2. */
#define RM__LEASE_HELD "lease_owner = $2 AND status = 'running'"
/* Inserts the run spec describes (rm_store_run_create's spec); j->result
 * is the row, with its definition or without (RM__RUN_LIST_COLS). */
int rm__run_insert(rm__conn *c, rm__job *j, const json_t *spec, bool definition);
/* Ends run id, held by owner, with the final record rec (rm_store_run_finish);
 * with row, j->result is the run row, else it stays NULL. */
int rm__run_finish(rm__conn *c, rm__job *j, const char *id, const char *owner, const json_t *rec, bool row);
/* A copy of the members of a final run record rm__run_finish reads (a
 * record also holds every step: copying those for nothing cost more
 * than the write). */
json_t *rm__finish_record(const json_t *record);
/* Inserts or replaces one step record of run_id (no lease check: the
 * caller makes it in the same transaction). */
int rm__step_insert(rm__conn *c, rm__job *j, const char *run_id, const json_t *step);

/* ---- Arguments ------------------------------------------------------ */
/* Expected members of an argument object: type JSON_TRUE stands for a
 * boolean, JSON_REAL for any number; null counts as absent. */
typedef struct rm__field {
  const char *name;
  json_type type;
  bool required;
} rm__field;
/* 0, or RM_EINVAL naming what.field and the type it must have. fields
 * ends with a NULL name. */
int rm__check(rm__job *j, const char *what, const json_t *o, const rm__field *fields);
/* s is in set (NULL-terminated); false for NULL. */
bool rm__one_of(const char *s, const char *const *set);
/* A string member of args or NULL. */
const char *rm__str(const json_t *o, const char *key);
/* Normalizes an ISO-8601 time ("2026-01-02", "...T10:00Z",
 * "...T10:00:00.5+02:00") to UTC "YYYY-MM-DDTHH:MM:SS.mmmZ"; 0 or RM_EINVAL. */
int rm__ts_normalize(const char *in, char out[32]);
/* Milliseconds since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ". */
void rm__ts_format(int64_t ms, char out[32]);
/* The wall clock in milliseconds since the epoch. */
int64_t rm__wall_ms(void);
/* A random UUID v4; 0 or RM_EIO. */
int rm__uuid(char out[37]);
/* A time-ordered one (version 7), for rows written in their time order
 * (runs, deliveries): appended to their b-trees, not scattered. */
int rm__uuid_ordered(char out[37]);
/* Monotonic milliseconds. */
uint64_t rm__mono_ms(void);
/* One batch of a retention op whose args are {"older_ms", "batch"}:
 * runs delete_sql ($1: -older_ms, for rm_now_plus_ms; $2: batch) and
 * more_sql ($1 likewise; one boolean column "more"), and sets j->result
 * to {"deleted": n, "more": bool}. older_ms 0 deletes nothing; batch
 * must be > 0 (RM_EINVAL naming what). */
int rm__prune(rm__conn *c, rm__job *j, const char *what, const char *delete_sql, const char *more_sql);
/* v serialized as a JSON string value ("[1,2]" for [1, 2]); JSON null
 * for NULL or JSON null, so the column stays SQL NULL. */
json_t *rm__json_text(const json_t *v);
/* A deep copy of v, or JSON null for NULL. */
json_t *rm__copy(const json_t *v);

#endif
