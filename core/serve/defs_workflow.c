/* Workflow definitions in the API: checking them with the engine's
 * validator (engine/validate.h), stored tasks checked on their own, and
 * reusable tasks: a workflow task {"ref": "<task id or name>", edges...}
 * stands for a stored task. The draft keeps the reference; publishing and
 * running a draft resolve it into the definition they freeze or run, so
 * editing a stored task changes future versions only. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/template.h"
#include "engine/validate.h"
#include "serve/defs.h"

static const json_t *host_plugin(void *ud, const char *type) { return rm_lua_host_plugin(ud, type); }

static json_t *validate(rm_hctx *c, const json_t *wf, const json_t *inputs, const json_t *secret_names) {
  rm_validate_opts o = {host_plugin, &c->s->host, inputs, secret_names};
  json_t *problems = rm_workflow_validate(wf, &o);
  return problems ? problems : json_pack("[{s:s, s:s}]", "path", "", "message", "out of memory while validating");
}

void rm_defs_add_problems(rm_api_details *d, const json_t *problems, const char *prefix) {
  size_t i;
  const json_t *p;
  json_array_foreach(problems, i, p) {
    const char *path = json_string_value(json_object_get(p, "path"));
    char full[700];
    if (path && *path) snprintf(full, sizeof full, "%s.%s", prefix, path);
    else snprintf(full, sizeof full, "%s", prefix);
    rm_api_details_add(d, full, "%s", json_string_value(json_object_get(p, "message")));
  }
}

/* ---- a stored task on its own ---- */

/* The inputs and variables a task's templates use, so that they can be
 * declared around it: a stored task is checked for what it is, and its
 * references are checked where a workflow uses it. */
typedef struct uses {
  json_t *inputs, *vars;
} uses;

static void use_name(json_t *into, const char *name, json_t *value) {
  size_t n = strcspn(name, ".[");
  char buf[128];
  if (n == 0 || n >= sizeof buf) {
    json_decref(value);
    return;
  }
  memcpy(buf, name, n);
  buf[n] = '\0';
  json_object_set_new(into, buf, value);
}

static int on_use(void *ud, const char *location, const char *expr, const char *problem) {
  uses *u = ud;
  (void)location;
  if (problem || !expr) return 0;
  if (strncmp(expr, "inputs.", 7) == 0) use_name(u->inputs, expr + 7, json_object());
  else if (strncmp(expr, "vars.", 5) == 0) use_name(u->vars, expr + 5, json_string("$.v"));
  return 0;
}

/* {"name": "task", "inputs": {used...}, "tasks": {"task": def, "_upstream":
 * a task extracting every variable def uses}}. */
static json_t *task_harness(const json_t *def) {
  uses u = {json_object(), json_object()};
  rm_template_scan(def, "", on_use, &u);
  size_t i;
  const json_t *a;
  json_array_foreach(json_object_get(def, "assert"), i, a) {
    const char *var = json_string_value(json_object_get(a, "var"));
    if (var) use_name(u.vars, var, json_string("$.v"));
  }
  json_t *wf = json_pack("{s:s, s:o, s:{s:O}}", "name", "task", "inputs", u.inputs, "tasks", "task", def);
  if (wf && json_object_size(u.vars))
    json_object_set_new(json_object_get(wf, "tasks"), "_upstream",
                        json_pack("{s:s, s:{s:s}, s:o, s:[s]}", "type", "http", "request", "url",
                                  "http://127.0.0.1/", "extract", u.vars, "on_success", "task"));
  else json_decref(u.vars);
  return wf;
}

void rm_defs_check_task_definition(rm_dcheck *k, const json_t *def, const char *path) {
  static const char *const edges[] = {"on_success", "on_failure", "join", NULL};
  json_t *copy = json_deep_copy(def);
  for (size_t i = 0; edges[i]; i++)
    if (json_object_get(def, edges[i])) {
      rm_dc_add(k, path, edges[i], "edges belong to the workflow that uses the task: set them on its reference there");
      json_object_del(copy, edges[i]);
    }
  json_t *wf = task_harness(copy);
  json_t *problems = wf ? validate(k->c, wf, NULL, NULL) : NULL;
  size_t i;
  const json_t *p;
  json_array_foreach(problems, i, p) {
    const char *pp = json_string_value(json_object_get(p, "path"));
    const char *msg = json_string_value(json_object_get(p, "message"));
    if (pp && strncmp(pp, "tasks.task", 10) == 0 && (pp[10] == '.' || pp[10] == '\0'))
      rm_dc_add(k, path, pp[10] ? pp + 11 : NULL, "%s", msg);
    else if (!pp || strncmp(pp, "tasks._upstream", 15) != 0)
      rm_dc_add(k, path, NULL, "%s", msg);
  }
  if (!wf) rm_dc_add(k, path, NULL, "out of memory while validating");
  json_decref(problems);
  json_decref(wf);
  json_decref(copy);
}

/* ---- resolving task references ---- */

typedef struct prep {
  json_t *def; /* a copy, resolved in place */
  json_t *inputs, *names, *problems;
  rm_defs_wf_cb done;
} prep;

static void prep_free(void *ud) {
  prep *p = ud;
  json_decref(p->def);
  json_decref(p->inputs);
  json_decref(p->names);
  json_decref(p->problems);
  free(p);
}

static void add_problem(prep *p, const char *task, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add_problem(prep *p, const char *task, const char *field, const char *fmt, ...) {
  char path[300], msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(path, sizeof path, "tasks.%s%s%s", task, field ? "." : "", field ? field : "");
  json_array_append_new(p->problems, json_pack("{s:s, s:s}", "path", path, "message", msg));
}

static const char *const ref_fields[] = {"ref", "description", "on_success", "on_failure", "join",
                                         "continue_on_failure", NULL};

/* The references of p->def: [{"kind": "task", "id", "by_name", "path": task name}]. */
static json_t *find_refs(prep *p) {
  json_t *wanted = json_array(), *t;
  const char *name;
  json_object_foreach(json_object_get(p->def, "tasks"), name, t) {
    const json_t *ref = json_object_get(t, "ref");
    if (!ref) continue;
    if (!json_is_string(ref) || !*json_string_value(ref)) {
      add_problem(p, name, "ref", "%s", "must be the id or the name of a stored task");
      continue;
    }
    const char *key;
    json_t *v;
    json_object_foreach(t, key, v) {
      bool known = false;
      for (size_t i = 0; ref_fields[i]; i++) known |= strcmp(key, ref_fields[i]) == 0;
      if (!known)
        add_problem(p, name, key, "%s", "a task reference takes only ref, description, on_success, on_failure, "
                                        "join and continue_on_failure; the rest comes from the stored task");
    }
    json_array_append_new(wanted, json_pack("{s:s, s:O, s:b, s:s}", "kind", "task", "id", ref, "by_name", 1,
                                            "path", name));
  }
  return wanted;
}

/* The stored task's definition with the reference's own fields on top. */
static json_t *merge(const json_t *task_doc, const json_t *ref_node) {
  json_t *t = json_deep_copy(json_object_get(task_doc, "definition"));
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)ref_node, key, v) if (strcmp(key, "ref") != 0) json_object_set(t, key, v);
  return t;
}

static void finish(rm_hctx *c, prep *p) {
  if (json_array_size(p->problems) == 0) {
    json_t *more = validate(c, p->def, p->inputs, p->names);
    json_array_extend(p->problems, more);
    json_decref(more);
  }
  json_t *resolved = json_array_size(p->problems) ? NULL : json_incref(p->def);
  rm_defs_wf_cb done = p->done;
  json_t *problems = json_incref(p->problems);
  done(c, resolved, problems);
}

static void resolved(rm_hctx *c, const json_t *wanted, const json_t *found, void *ud) {
  prep *p = ud;
  json_t *tasks = json_object_get(p->def, "tasks");
  size_t i;
  const json_t *w;
  json_array_foreach(wanted, i, w) {
    const char *name = json_string_value(json_object_get(w, "path"));
    const json_t *doc = json_array_get(found, i);
    if (json_is_null(doc)) {
      add_problem(p, name, "ref", "no stored task '%s' (by id or name) that you may use",
                  json_string_value(json_object_get(w, "id")));
      continue;
    }
    json_t *t = merge(doc, json_object_get(tasks, name));
    if (t) json_object_set_new(tasks, name, t);
  }
  finish(c, p);
}

void rm_defs_workflow_prepare(rm_hctx *c, const json_t *def, const json_t *inputs, const json_t *secret_names,
                              rm_defs_wf_cb done) {
  prep *p = calloc(1, sizeof *p);
  if (!p) {
    rm_hctx_error(c, RM_API_INTERNAL, "out of memory");
    return;
  }
  *p = (prep){json_deep_copy(def), json_incref((json_t *)inputs), json_incref((json_t *)secret_names), json_array(),
              done};
  json_t *wanted = json_is_object(p->def) ? find_refs(p) : json_array();
  if (json_array_size(wanted) == 0 || json_array_size(p->problems)) {
    json_decref(wanted);
    finish(c, p);
    prep_free(p);
    return;
  }
  rm_defs_lookup(c, wanted, resolved, p, prep_free);
}

/* ---- the prepare step of the workflow kind ---- */

static void draft_checked(rm_hctx *c, json_t *resolved, json_t *problems) {
  json_decref(resolved);
  if (json_array_size(problems) == 0) {
    json_decref(problems);
    c->next(c);
    return;
  }
  rm_api_details d = RM_API_DETAILS_INIT;
  rm_defs_add_problems(&d, problems, "$.definition");
  json_decref(problems);
  rm_hctx_invalid(c, RM_API_INVALID, &d);
}

void rm_defs_workflow_draft(rm_hctx *c, rm_hstep next) {
  c->next = next;
  rm_defs_workflow_prepare(c, json_object_get(c->doc, "definition"), NULL, NULL, draft_checked);
}
