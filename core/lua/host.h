/* rm_lua_host: runs task attempts as sandboxed LuaJIT coroutines on the
 * event loop.
 *
 * A host keeps a pool of VMs (lua_State), each loaded once with the
 * runtime library (lua/restmon) and the plugins it has used. A VM runs one
 * attempt at a time, on a fresh coroutine, under three limits: a CPU
 * budget (VM instructions, counted by a hook with the JIT off), a
 * wall-clock deadline, and a memory cap (a counting allocator). Plugin I/O
 * (http.request, sleep) yields the coroutine; completions resume it
 * through rm_lua_resume. A VM that hit a limit is closed, not reused. */
#ifndef RM_LUA_HOST_H
#define RM_LUA_HOST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "http/client.h"
#include "secret/secret.h"

typedef struct rm_lua_limits {
  uint64_t cpu_instructions; /* per attempt; default 50,000,000 */
  size_t memory_bytes;       /* per attempt, above the VM's baseline; default 64 MiB */
  size_t record_body_bytes;  /* bodies kept in run records; default 65536 */
} rm_lua_limits;

typedef struct rm_lua_vm rm_lua_vm;
typedef struct rm_lua_task rm_lua_task;

typedef struct rm_lua_host {
  uv_loop_t *loop;
  rm_http_client *http; /* borrowed */
  rm_lua_limits limits;
  json_t *plugins;      /* name -> {"manifest": {...}, "code": "...", "path": "..."} */
  rm_lua_vm *idle;      /* VMs ready for a task */
  size_t vms;           /* VMs alive */
  size_t requests_sent; /* HTTP requests started by plugins (stats) */
} rm_lua_host;

/* Sets up a host. Plugins come from the binary and then from plugin_dir
 * (NULL for none): a folder per plugin with manifest.json and plugin.lua;
 * a folder overrides a built-in plugin of the same name. 0, or a negative
 * RM_E* with the plugin and file named in err. */
int rm_lua_host_init(rm_lua_host *h, uv_loop_t *loop, rm_http_client *http,
                     const rm_lua_limits *limits, const char *plugin_dir, char *err,
                     size_t errlen);

/* Closes every idle VM; tasks must have finished. */
void rm_lua_host_close(rm_lua_host *h);

/* The manifest of task type `type` (borrowed), or NULL (also for a
 * channel plugin: lua/channel.h). */
const json_t *rm_lua_host_plugin(rm_lua_host *h, const char *type);

/* What one attempt runs. Every pointer is borrowed until the callback. */
typedef struct rm_lua_task_spec {
  const char *task_name;
  const char *type;          /* plugin name */
  const json_t *task;        /* the rendered task definition */
  const json_t *vars;
  const json_t *inputs;
  int attempt;
  uint64_t timeout_ms;
  bool dry_run;
  const rm_secrets *secrets; /* for injection into requests; may be NULL */
  const char *what;          /* how limit errors name the attempt; NULL:
                                "task '<task_name>'" */
} rm_lua_task_spec;

/* Called once when the attempt ends. t->result holds the runtime's result
 * object (see lua/restmon/runtime.lua), or NULL with t->err / t->errmsg
 * set when the attempt died (limits, Lua errors outside the runtime). */
typedef void (*rm_lua_task_cb)(rm_lua_task *t);

struct rm_lua_task {
  void *data; /* for the caller */
  /* Results, owned by the task until rm_lua_task_cleanup. */
  json_t *result;    /* object or NULL */
  json_t *exchanges; /* array: every HTTP exchange, as in the run record (not yet scrubbed) */
  json_t *logs;      /* array of {"level","message"} */
  int err;
  char errmsg[512];
  /* Private. */
  rm_lua_host *host;
  rm_lua_vm *vm;
  const rm_lua_task_spec *spec;
  void *co;      /* lua_State of the coroutine */
  int co_ref;
  uint64_t instructions;
  uint64_t deadline_ns;
  int fatal;     /* RM_EBUDGET / RM_EMEMLIMIT / RM_ETIMEOUT once a limit is hit */
  uv_timer_t timer;
  struct rm__lua_op *op; /* pending I/O, if any */
  rm_lua_task_cb cb;
  bool done;
  int nesting;   /* C-level nesting (gsub callbacks, coroutines) */
};

/* Starts the attempt. 0, or a negative RM_E* (then cb never runs). */
int rm_lua_task_start(rm_lua_host *h, rm_lua_task *t, const rm_lua_task_spec *spec,
                      rm_lua_task_cb cb);

/* Stops a running attempt: cancels its I/O; cb runs with RM_ECANCELED. */
void rm_lua_task_cancel(rm_lua_task *t);

/* Frees the results. Call after the callback, before freeing t. The
 * task's timer handle is closed; t must stay allocated until closed_cb
 * (may be NULL when t is static or outlives the loop run). */
void rm_lua_task_cleanup(rm_lua_task *t, uv_close_cb closed_cb);

#endif
