/* The design objects of the REST API (tasks, workflows, schedules,
 * monitors, channels, mappings): what the files below share. Not part of
 * the server's interface (serve.h). Files: defs_api.c (CRUD routes), defs_check.c (field toolkit, common
 * fields, kind table), defs_kinds.c and defs_channel.c (rules per kind),
 * defs_refs.c (lookups), defs_workflow.c (task references and the
 * engine's validator), workflows_api.c (publish, versions, runs).
 *
 * A definition is a store document (store.h): the metadata the store owns
 * (id, kind, version, times, deleted_at), the owner (the creator's user
 * id), name, scope, tags, and the spec fields of its kind. */
#ifndef RM_SERVE_DEFS_H
#define RM_SERVE_DEFS_H

#include <jansson.h>
#include <stdbool.h>

#include "serve/serve.h"

/* Collects the problems of one request body: field details for the 422,
 * and the references to other objects that must exist and be visible to
 * the caller (checked afterwards, in the store). */
typedef struct rm_dcheck {
  rm_hctx *c;
  rm_api_details d;
  size_t unknown; /* how many details are unknown or server-owned fields */
  json_t *refs;   /* [{"path", "kind", "id"}] */
} rm_dcheck;

typedef struct rm_defkind rm_defkind;
struct rm_defkind {
  const char *kind;   /* store kind: "task" */
  const char *plural; /* path segment: "tasks" */
  enum rm_module module;
  bool scoped; /* has a scope (global | private) */
  /* The spec fields besides name, description, scope and tags
   * (NULL-terminated): the allowed top-level keys. */
  const char *const *fields;
  /* Checks the spec fields of body (a copy the check may change: it fills
   * defaults), adding details at "$.field" paths. */
  void (*check)(rm_dcheck *k, json_t *body);
  /* NULL, or a step after the checks and before the write (workflows:
   * resolve task references and validate the definition); it calls
   * next(c) or answers. c->doc is the document to write. */
  void (*prepare)(rm_hctx *c, rm_hstep next);
};

/* ---- the kinds (defs_check.c) ---- */
const rm_defkind *rm_defs_kind(const char *plural);
/* The kind of the route c was called on ("/api/v1/tasks/{id}" -> task). */
const rm_defkind *rm_defs_kind_of(const rm_hctx *c);

/* ---- field checks (defs_check.c): each reads obj[key] at path + "." +
 * key, adds a detail when it is wrong, and returns what it found ---- */
void rm_dc_init(rm_dcheck *k, rm_hctx *c);
void rm_dc_free(rm_dcheck *k);
void rm_dc_add(rm_dcheck *k, const char *path, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The index of s in options (NULL-terminated), or -1 (also for NULL). */
int rm_dc_index(const char *const *options, const char *s);
/* Reports every key of obj that is not in allowed (NULL-terminated). */
void rm_dc_only(rm_dcheck *k, const json_t *obj, const char *path, const char *const *allowed);
/* A non-empty string (NULL when absent or wrong). */
const char *rm_dc_str(rm_dcheck *k, const json_t *obj, const char *path, const char *key, bool required);
/* An object (NULL when absent or wrong). */
json_t *rm_dc_obj(rm_dcheck *k, const json_t *obj, const char *path, const char *key, bool required);
/* A boolean; when absent, dflt is stored into obj. */
bool rm_dc_bool(rm_dcheck *k, json_t *obj, const char *path, const char *key, bool dflt);
/* An integer in [min, max]; when absent and has_dflt, dflt is stored. */
bool rm_dc_int(rm_dcheck *k, json_t *obj, const char *path, const char *key, bool required, json_int_t min,
               json_int_t max, bool has_dflt, json_int_t dflt);
/* One of options: the index, or -1. When absent and dflt is set, it is
 * stored. */
int rm_dc_enum(rm_dcheck *k, json_t *obj, const char *path, const char *key, const char *const *options,
               bool required, const char *dflt);
/* An array of non-empty strings (from options when given; no repeats).
 * NULL when absent or wrong. */
const json_t *rm_dc_strs(rm_dcheck *k, const json_t *obj, const char *path, const char *key, bool required,
                         const char *const *options);
/* The id of an object of kind that must exist (checked later). */
const char *rm_dc_ref(rm_dcheck *k, const json_t *obj, const char *path, const char *key, const char *kind,
                      bool required);
/* The NAME of a secret: a value pasted in its place is refused. */
void rm_dc_secret_name(rm_dcheck *k, const json_t *obj, const char *path, const char *key, bool required);
/* Whether at most one of keys is present; reports the others. Returns
 * the one present or NULL. */
const char *rm_dc_one_of(rm_dcheck *k, const json_t *obj, const char *path, const char *const *keys,
                         bool required);

/* Channel settings (defs_channel.c): the type is a built-in one or a
 * loaded channel plugin, whose manifest's fields the settings follow. */
void rm_defs_check_channel(rm_dcheck *k, json_t *body);
/* Every channel type, built-in ones first, then the plugins by name:
 * [{type, builtin, label?, description?, version?, fields}] (a new
 * reference; NULL when out of memory). */
json_t *rm_defs_channel_types(rm_serve *s);
/* A workflow's "notifications" and a monitor's "notify" (defs_notify.c). */
void rm_defs_check_notifications(rm_dcheck *k, json_t *body);
void rm_defs_check_monitor_notify(rm_dcheck *k, json_t *body);

/* ---- lookups (defs_refs.c) ---- */
/* Whether the caller may see doc (live or not): global, their own, or
 * they are an admin. */
bool rm_defs_visible(const rm_hctx *c, const json_t *doc);
/* Looks up each item {"kind", "id", "path"} of wanted (stolen) in turn:
 * a live document of that kind the caller may see (users: any live one),
 * by id or, with "by_name": true, by id and then by exact name. Then
 * calls done(c, wanted, found, ud) with found an array parallel to wanted
 * holding each document or null; both are borrowed for the call, and ud
 * is freed with ud_free (may be NULL) after it. When the client goes
 * away or the store fails, done is not called: c is answered or freed
 * and ud freed. */
typedef void (*rm_defs_found_cb)(rm_hctx *c, const json_t *wanted, const json_t *found, void *ud);
void rm_defs_lookup(rm_hctx *c, json_t *wanted, rm_defs_found_cb done, void *ud, void (*ud_free)(void *));
/* Loads c->id of kind into c->doc2, live and visible, then calls
 * next(c) (through c->next); otherwise answers 404 (the same for absent,
 * deleted and invisible objects) and frees c. */
void rm_defs_load(rm_hctx *c, const char *kind, rm_hstep next);
/* Answers 404 "<kind> <id>: not found". */
void rm_defs_not_found(rm_hctx *c, const char *kind);

/* ---- the generic write path (defs_api.c) ---- */
/* Checks (all fields of kinds' rules), verifies references, runs the
 * kind's prepare step and creates c->doc (the body: a copy owned by c)
 * with the caller as owner; answers 201 with the stored document. The
 * audit entry's action is "<kind>.<c->verb or create>", with c->doc2 (may
 * be NULL) as "before". */
void rm_defs_create(rm_hctx *c, const rm_defkind *dk);
/* The common fields and the kind's rules (defs_check.c). update: the body
 * of a PUT (version required, owner allowed to admins). */
void rm_defs_check_body(rm_dcheck *k, const rm_defkind *dk, json_t *body, bool update);
/* Answers 422 with k's details (42201 when all are unknown or
 * server-owned fields), frees k and c. */
void rm_defs_invalid(rm_hctx *c, rm_dcheck *k);
/* A workflow name: letters, digits, '-', '_', '.' (as the file format). */
bool rm_defs_workflow_name_ok(const char *s);

/* ---- workflow definitions (defs_workflow.c) ---- */
/* Resolves the task references of def (borrowed) -- a task {"ref": "<task
 * id or name>", "on_success"?, ...} becomes the stored task's definition
 * with the reference's edges -- and validates the result with the
 * engine's validator (inputs: the given ones or NULL; secret_names: the
 * secrets to check against or NULL to skip). Calls done(c, resolved,
 * problems): both new references owned by done, problems an array of
 * {path, message} with paths relative to the definition ("tasks.a.url"),
 * resolved NULL when there are problems. */
typedef void (*rm_defs_wf_cb)(rm_hctx *c, json_t *resolved, json_t *problems);
void rm_defs_workflow_prepare(rm_hctx *c, const json_t *def, const json_t *inputs, const json_t *secret_names,
                              rm_defs_wf_cb done);
/* The task check: def is one task of the workflow file format; problems
 * are added at path ("$.definition") + the field's path. */
void rm_defs_check_task_definition(rm_dcheck *k, const json_t *def, const char *path);
/* Adds each problem {path, message} at prefix + "." + path ("$" alone for
 * an empty path) to d. */
void rm_defs_add_problems(rm_api_details *d, const json_t *problems, const char *prefix);
/* The workflow kind's prepare step. */
void rm_defs_workflow_draft(rm_hctx *c, rm_hstep next);

/* Store callback that answers with the result (200) unless it failed. */
void rm_defs_answer(void *ud, int err, const char *errmsg, json_t *res);

#endif
