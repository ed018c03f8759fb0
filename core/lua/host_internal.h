/* Shared between the files of core/lua that implement the host. */
#ifndef RM_LUA_HOST_INTERNAL_H
#define RM_LUA_HOST_INTERNAL_H

#include <lua.h>
#include <stdbool.h>

#include "lua/host.h"

struct rm_lua_vm {
  lua_State *L;
  rm_lua_host *host;
  rm_lua_task *task;    /* running task, or NULL */
  size_t mem_used;
  size_t mem_limit;     /* 0 = none (while loading) */
  bool poisoned;        /* hit a limit: close instead of reusing */
  rm_lua_vm *next;
};

/* Pending I/O of a task: cancel stops it without resuming the task and
 * frees the op. */
typedef struct rm__lua_op {
  void (*cancel)(struct rm__lua_op *op);
} rm__lua_op;

/* The VM and task that own L (any coroutine of the VM). */
rm_lua_vm *rm__lua_vm(lua_State *L);
rm_lua_task *rm__lua_task(lua_State *L);

/* Resumes the task's coroutine with the nargs values on top of its
 * stack: the one way back into Lua after I/O. */
void rm_lua_resume(rm_lua_task *t, int nargs);

/* Marks that L's task waits on op; the calling C function then returns
 * lua_yield(L, 0). Fails (returns a message) when L is not the task's
 * own coroutine. */
const char *rm__lua_begin_op(lua_State *L, rm__lua_op *op);
/* The op finished: forget it (before rm_lua_resume). */
void rm__lua_end_op(rm_lua_task *t);

/* Pushes the module table of plugin `type`, loaded into L's VM on first
 * use in an environment of its own, after checking that it is of the kind
 * asked for (a channel type exporting send(ctx), or a task type exporting
 * run(ctx)); or pushes nil and a message. */
void rm__lua_push_plugin(lua_State *L, rm_lua_host *h, const char *type, bool channel);

/* Pushes onto co what an attempt runs -- the function, then its
 * arguments -- and returns how many arguments; or a negative RM_E* with
 * err written (then nothing is run). ud is rm__lua_task_run's. */
typedef int (*rm__lua_push_fn)(lua_State *co, rm_lua_task *t, void *ud, char *err, size_t errlen);
/* rm_lua_task_start with another entry point: push sets up the call
 * (rm_lua_task_start's is runtime.run_attempt(ctx)). The result must be
 * a table, as t->result. */
int rm__lua_task_run(rm_lua_host *h, rm_lua_task *t, const rm_lua_task_spec *spec, rm_lua_task_cb cb,
                     rm__lua_push_fn push, void *ud);

/* Sandbox (sandbox.c). */
int rm__lua_sandbox_setup(lua_State *L, char *err, size_t errlen);
/* Pushes a fresh environment: safe globals, copies of the libraries and
 * the Lua-facing modules. */
void rm__lua_sandbox_push_env(lua_State *L);
/* Compiles text-only source into a function whose environment is the
 * table at env_idx. Pushes the function, or nil and a message. */
int rm__lua_compile(lua_State *L, const char *src, size_t len, const char *chunk, int env_idx);

/* Yielding modules. */
int rm__lua_open_http(lua_State *L);
int rm__lua_open_task(lua_State *L); /* sleep, log, now_ms */

#endif
