/* The workflow routes beyond CRUD (defs_api.c serves that):
 *   POST /workflows/validate                 check a definition, store nothing
 *   POST /workflows/{id}/publish             freeze the draft as the next version
 *   GET  /workflows/{id}/versions[/{version}] the published versions
 *   PUT|PATCH|DELETE /workflows/{id}/versions/{version}   409: they never change
 *   POST /workflows/{id}/duplicate           a new workflow from this draft
 *   POST /workflows/{id}/execute | dry-run   queue a run (202) for the executor
 *   POST /tasks/{id}/execute | dry-run       the same for one stored task on its own
 * Every route first loads the workflow as the caller may see it (404
 * otherwise), and every change is audited. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/defs.h"
#include "util/err.h"

/* ---- validate ---- */

static void validated(rm_hctx *c, json_t *resolved, json_t *problems) {
  json_decref(resolved);
  json_t *out = json_array();
  size_t i;
  json_t *p;
  json_array_foreach(problems, i, p) {
    const char *path = json_string_value(json_object_get(p, "path"));
    char full[600];
    snprintf(full, sizeof full, "$%s%s", path && *path ? "." : "", path ? path : "");
    json_array_append_new(out, json_pack("{s:s, s:O}", "path", full, "message", json_object_get(p, "message")));
  }
  json_decref(problems);
  rm_hctx_ok(c, 200, json_pack("{s:b, s:o}", "valid", json_array_size(out) == 0, "problems", out));
}

static void h_validate(rm_hctx *c) {
  json_t *def = rm_api_req_json(c->req);
  if (!def) {
    c->req = NULL;
    rm_hctx_free(c);
    return;
  }
  rm_defs_workflow_prepare(c, def, NULL, NULL, validated);
}

/* ---- publish ---- */

static void published(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, res)) return;
  rm_serve_sched_def_changed(c->s, "workflow", c->id, NULL); /* its checks run the new version */
  rm_hctx_audit(c, "workflow.publish", "workflow", c->id,
                json_pack("{s:O}", "draft_version", json_object_get(c->doc2, "version")), json_deep_copy(res));
  rm_hctx_ok(c, 201, res);
}

static void invalid_definition(rm_hctx *c, json_t *problems) {
  rm_api_details d = RM_API_DETAILS_INIT;
  size_t i;
  json_t *p;
  json_array_foreach(problems, i, p) {
    /* a missing input is about the body's inputs, the rest about the definition */
    const char *path = json_string_value(json_object_get(p, "path"));
    json_t *one = json_pack("[O]", p);
    rm_defs_add_problems(&d, one, path && strncmp(path, "inputs.", 7) == 0 && c->verb ? "$" : "$.definition");
    json_decref(one);
  }
  json_decref(problems);
  rm_hctx_invalid(c, RM_API_INVALID, &d);
}

static void publish_checked(rm_hctx *c, json_t *resolved, json_t *problems) {
  if (!resolved) {
    invalid_definition(c, problems);
    return;
  }
  json_decref(problems);
  rm_store_workflow_publish_def(c->s->store, c->id, rm_hctx_user_name(c), resolved,
                                json_integer_value(json_object_get(c->doc2, "version")), published, c);
  json_decref(resolved);
}

static void publish_loaded(rm_hctx *c) {
  const json_t *def = json_object_get(c->doc2, "definition");
  if (!json_is_object(def)) {
    rm_api_details d = RM_API_DETAILS_INIT;
    rm_api_details_add(&d, "$.definition", "the draft has no definition to publish");
    rm_hctx_invalid(c, RM_API_INVALID, &d);
    return;
  }
  rm_defs_workflow_prepare(c, def, NULL, NULL, publish_checked);
}

static void h_publish(rm_hctx *c) {
  if (rm_hctx_empty_body(c)) rm_defs_load(c, "workflow", publish_loaded);
}

/* ---- versions ---- */

static void versions_loaded(rm_hctx *c) { rm_store_workflow_versions(c->s->store, c->id, c->doc, rm_defs_answer, c); }

static void version_sort(json_t *q, rm_api_details *d, const char *path, const char *name, const char *value,
                         void *ud) {
  const char *col = value[0] == '-' ? value + 1 : value;
  (void)ud;
  if (strcmp(name, "sort") != 0) rm_api_details_add(d, path, "unknown query parameter");
  else if (strcmp(col, "version") && strcmp(col, "published_at") && strcmp(col, "published_by"))
    rm_api_details_add(d, path, "expected version, published_at or published_by ('-' for descending)");
  else json_object_set_new(q, "sort", json_string(value));
}

static void h_versions(rm_hctx *c) {
  if (!(c->doc = rm_hctx_list_query(c, 50, version_sort, NULL))) return;
  rm_defs_load(c, "workflow", versions_loaded);
}

/* The {version} of the path into c->n; false: answered 400. */
static bool version_param(rm_hctx *c) {
  const char *v = rm_api_req_param(c->req, "version");
  char *end;
  long n = v ? strtol(v, &end, 10) : 0;
  if (!v || !*v || *end || n < 1 || n > INT_MAX) {
    rm_hctx_error(c, RM_API_BAD_REQUEST, "the version in the path must be a positive integer");
    return false;
  }
  c->n = (int)n;
  return true;
}

static void version_loaded(rm_hctx *c) { rm_store_workflow_version(c->s->store, c->id, c->n, rm_defs_answer, c); }

static void h_version(rm_hctx *c) {
  if (version_param(c)) rm_defs_load(c, "workflow", version_loaded);
}

static void frozen_got(void *ud, int err, const char *errmsg, json_t *res) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, res)) return;
  json_decref(res);
  char msg[400];
  snprintf(msg, sizeof msg,
           "version %d of workflow '%.200s' is published and never changes: edit the draft (PUT "
           "/api/v1/workflows/{id}) and publish a new version",
           c->n, json_string_value(json_object_get(c->doc2, "name")));
  rm_hctx_error(c, RM_API_CONFLICT, msg);
}

static void frozen_loaded(rm_hctx *c) { rm_store_workflow_version(c->s->store, c->id, c->n, frozen_got, c); }

static void h_version_frozen(rm_hctx *c) {
  if (version_param(c)) rm_defs_load(c, "workflow", frozen_loaded);
}

/* ---- duplicate ---- */

/* The copy: the draft (its definition renamed), description and tags;
 * scope as asked (default global), owned by the caller. */
static void duplicate_loaded(rm_hctx *c) {
  json_t *src = c->doc2, *copy = c->doc;
  json_t *def = json_deep_copy(json_object_get(src, "definition"));
  json_object_del(def, "name");
  json_object_set_new(copy, "definition", def ? def : json_object());
  if (json_object_get(src, "description")) json_object_set(copy, "description", json_object_get(src, "description"));
  json_object_set(copy, "tags", json_object_get(src, "tags"));
  c->verb = "duplicate";
  rm_defs_create(c, rm_defs_kind("workflows"));
}

static void h_duplicate(rm_hctx *c) {
  static const char *const allowed[] = {"name", "scope", NULL};
  json_t *b = rm_hctx_body(c, allowed);
  if (!b) return;
  c->doc = json_deep_copy(b);
  rm_defs_load(c, "workflow", duplicate_loaded);
}

/* ---- execute and dry-run ---- */

static bool dry(const rm_hctx *c) { return strcmp(c->verb, "dry_run") == 0; }
/* A stored task run on its own (POST /tasks/{id}/execute|dry-run). */
static bool of_task(const rm_hctx *c) { return strncmp(c->route->pattern, "/api/v1/tasks/", 14) == 0; }

static void run_created(void *ud, int err, const char *errmsg, json_t *run) {
  rm_hctx *c = ud;
  if (rm_hctx_done_if_failed(c, err, errmsg, run)) return;
  const char *kind = of_task(c) ? "task" : "workflow";
  json_t *data = json_pack("{s:O, s:O, s:s, s:b}", "run_id", json_object_get(run, "run_id"), "status",
                           json_object_get(run, "status"), of_task(c) ? "task_id" : "workflow_id", c->id, "dry_run",
                           dry(c));
  if (!of_task(c)) json_object_set_new(data, "workflow_version", json_integer(c->n));
  char action[32];
  snprintf(action, sizeof action, "%s.%s", kind, c->verb);
  rm_hctx_audit(c, action, kind, c->id, NULL, json_deep_copy(data));
  json_decref(run);
  rm_hctx_ok(c, 202, data);
}

static void run_checked(rm_hctx *c, json_t *resolved, json_t *problems) {
  if (!resolved) {
    invalid_definition(c, problems);
    return;
  }
  json_decref(problems);
  const json_t *b = c->doc;
  json_t *inputs = json_incref(json_object_get(b, "inputs"));
  json_t *trigger = json_pack("{s:s, s:s?}", "type", "api", "by", rm_hctx_user_name(c));
  if (of_task(c)) json_object_set_new(trigger, "task_id", json_string(c->id));
  json_t *spec = json_pack("{s:s?, s:O, s:i, s:o, s:s, s:o, s:o, s:b, s:O?}", "workflow_id", of_task(c) ? NULL : c->id,
                           "workflow_name", json_object_get(c->doc2, "name"), "workflow_version", c->n, "definition",
                           resolved, "source", "api", "trigger", trigger, "inputs", inputs ? inputs : json_object(),
                           "dry_run", dry(c), "tags", json_object_get(b, "tags"));
  rm_store_run_create(c->s->store, spec, run_created, c);
  json_decref(spec);
}

static void prepare_run(rm_hctx *c, const json_t *def) {
  json_t *names = c->s->secrets ? rm_secrets_names(c->s->secrets) : json_array();
  json_t *inputs = json_object_get(c->doc, "inputs");
  json_t *given = inputs ? json_incref(inputs) : json_object();
  rm_defs_workflow_prepare(c, def, given, names, run_checked);
  json_decref(given);
  json_decref(names);
}

static void version_got(void *ud, int err, const char *errmsg, json_t *v) {
  rm_hctx *c = ud;
  if (err == RM_ENOTFOUND && c->n == 0 && c->req) {
    json_decref(v);
    rm_hctx_error(c, RM_API_CONFLICT,
                  "the workflow has no published version: publish it first, or pass \"version\": \"draft\"");
    return;
  }
  if (rm_hctx_done_if_failed(c, err, errmsg, v)) return;
  c->n = (int)json_integer_value(json_object_get(v, "version"));
  prepare_run(c, json_object_get(v, "definition"));
  json_decref(v);
}

static void run_loaded(rm_hctx *c) {
  const json_t *v = json_object_get(c->doc, "version");
  if (json_is_string(v) || (!v && dry(c))) {
    c->n = 0; /* the draft; runs record version 0 */
    prepare_run(c, json_object_get(c->doc2, "definition"));
    return;
  }
  c->n = (int)json_integer_value(v);
  rm_store_workflow_version(c->s->store, c->id, c->n, version_got, c);
}

/* {inputs?: object, version?: n | "draft" (workflows only), tags?: [strings]} */
static bool run_body(rm_hctx *c) {
  static const char *const allowed[] = {"inputs", "version", "tags", NULL};
  static const char *const task_allowed[] = {"inputs", "tags", NULL};
  size_t len = 0;
  rm_api_req_body(c->req, &len);
  json_t *b = len ? rm_hctx_body(c, of_task(c) ? task_allowed : allowed) : NULL;
  if (len && !b) return false;
  c->doc = b ? json_deep_copy(b) : json_object();
  rm_dcheck k;
  rm_dc_init(&k, c);
  rm_dc_obj(&k, c->doc, "$", "inputs", false);
  const json_t *v = json_object_get(c->doc, "version");
  if (v && !(json_is_string(v) && strcmp(json_string_value(v), "draft") == 0) &&
      !(json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= INT_MAX))
    rm_dc_add(&k, "$", "version", "must be a published version number (>= 1) or \"draft\"");
  rm_dc_strs(&k, c->doc, "$", "tags", false, NULL);
  if (rm_api_details_count(&k.d)) {
    rm_defs_invalid(c, &k);
    return false;
  }
  rm_dc_free(&k);
  return true;
}

/* A task runs as a one-task workflow named after it (its only task is
 * "task"), version 0: what the designer tries before using it. */
static void task_loaded(rm_hctx *c) {
  const char *name = json_string_value(json_object_get(c->doc2, "name"));
  json_t *def = json_pack("{s:s, s:{s:O}}", "name", rm_defs_workflow_name_ok(name) ? name : "task-run", "tasks", "task",
                          json_object_get(c->doc2, "definition"));
  c->n = 0;
  if (!def) {
    rm_hctx_error(c, RM_API_CONFLICT, "the stored task has no definition");
    return;
  }
  prepare_run(c, def);
  json_decref(def);
}

static void h_run(rm_hctx *c) {
  const char *p = c->route->pattern;
  c->verb = strstr(p, "/dry-run") ? "dry_run" : "execute";
  if (!run_body(c)) return;
  if (of_task(c)) rm_defs_load(c, "task", task_loaded);
  else rm_defs_load(c, "workflow", run_loaded);
}

int rm_serve_workflow_routes(rm_serve *s) {
  static const rm_route_def defs[] = {
      {"POST", "/api/v1/workflows/validate", h_validate, RM_ACCESS_ROLE, RM_MOD_WORKFLOWS, RM_ACT_EDIT},
      {"POST", "/api/v1/workflows/{id}/publish", h_publish, RM_ACCESS_ROLE, RM_MOD_WORKFLOWS, RM_ACT_PUBLISH},
      {"GET", "/api/v1/workflows/{id}/versions", h_versions, RM_ACCESS_ROLE, RM_MOD_WORKFLOWS, RM_ACT_VIEW},
      {"GET", "/api/v1/workflows/{id}/versions/{version}", h_version, RM_ACCESS_ROLE, RM_MOD_WORKFLOWS, RM_ACT_VIEW},
      {"PUT", "/api/v1/workflows/{id}/versions/{version}", h_version_frozen, RM_ACCESS_ROLE, RM_MOD_WORKFLOWS,
       RM_ACT_EDIT},
      {"PATCH", "/api/v1/workflows/{id}/versions/{version}", h_version_frozen, RM_ACCESS_ROLE, RM_MOD_WORKFLOWS,
       RM_ACT_EDIT},
      {"DELETE", "/api/v1/workflows/{id}/versions/{version}", h_version_frozen, RM_ACCESS_ROLE, RM_MOD_WORKFLOWS,
       RM_ACT_EDIT},
      {"POST", "/api/v1/workflows/{id}/duplicate", h_duplicate, RM_ACCESS_ROLE, RM_MOD_WORKFLOWS, RM_ACT_CREATE},
      {"POST", "/api/v1/workflows/{id}/dry-run", h_run, RM_ACCESS_ROLE, RM_MOD_WORKFLOWS, RM_ACT_EXECUTE},
      {"POST", "/api/v1/workflows/{id}/execute", h_run, RM_ACCESS_ROLE, RM_MOD_WORKFLOWS, RM_ACT_EXECUTE},
      {"POST", "/api/v1/tasks/{id}/dry-run", h_run, RM_ACCESS_ROLE, RM_MOD_TASKS, RM_ACT_EXECUTE},
      {"POST", "/api/v1/tasks/{id}/execute", h_run, RM_ACCESS_ROLE, RM_MOD_TASKS, RM_ACT_EXECUTE},
  };
  return rm_serve_add_routes(s, defs, sizeof defs / sizeof defs[0]);
}
