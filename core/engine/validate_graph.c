/* Validation of the task graph (edges, cycles, start tasks) and of the
 * template references, which depend on it: a variable must be extracted
 * by a task upstream of the one that uses it. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/template.h"
#include "engine/validate_internal.h"
#include "util/buf.h"

typedef struct ilist {
  size_t *v;
  size_t n, cap;
} ilist;

typedef struct graph {
  size_t n;
  const char **names;
  const json_t **tasks;
  ilist *succ; /* successors through on_success and on_failure, no repeats */
  ilist *pred;
} graph;

static const char *const edge_keys[] = {"on_success", "on_failure"};

/* Request fields of http that may hold secrets. */
static const char *const http_secret_fields[] = {"url",  "headers", "query", "body",
                                                 "json", "form",    "auth",  NULL};

static int ilist_push(ilist *l, size_t x) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 4;
    size_t *v = realloc(l->v, cap * sizeof *v);
    if (!v) return -1;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = x;
  return 0;
}

static int ilist_has(const ilist *l, size_t x) {
  for (size_t i = 0; i < l->n; i++)
    if (l->v[i] == x) return 1;
  return 0;
}

static size_t find_task(const graph *g, const char *name) {
  for (size_t i = 0; i < g->n; i++)
    if (strcmp(g->names[i], name) == 0) return i;
  return (size_t)-1;
}

static void graph_free(graph *g) {
  for (size_t i = 0; g->succ && g->pred && i < g->n; i++) {
    free(g->succ[i].v);
    free(g->pred[i].v);
  }
  free(g->succ);
  free(g->pred);
  free(g->names);
  free(g->tasks);
}

/* Collects the edges, reporting those to unknown tasks, to the task
 * itself and repeated ones. 0 or -1 when out of memory. */
static int graph_build(rm__vctx *c, graph *g) {
  char tpath[RM__PATH_MAX], lpath[RM__PATH_MAX], p[RM__PATH_MAX];
  g->n = json_object_size(c->tasks);
  g->names = calloc(g->n + 1, sizeof *g->names);
  g->tasks = calloc(g->n + 1, sizeof *g->tasks);
  g->succ = calloc(g->n + 1, sizeof *g->succ);
  g->pred = calloc(g->n + 1, sizeof *g->pred);
  if (!g->names || !g->tasks || !g->succ || !g->pred) return -1;
  const char *key;
  json_t *t, *e;
  size_t i = 0, j, k;
  json_object_foreach((json_t *)c->tasks, key, t) {
    g->names[i] = key;
    g->tasks[i++] = t;
  }
  for (i = 0; i < g->n; i++) {
    rm__path(tpath, "tasks", g->names[i]);
    for (size_t l = 0; l < 2; l++) {
      const json_t *list = json_object_get(g->tasks[i], edge_keys[l]);
      if (!json_is_array(list)) continue;
      rm__path(lpath, tpath, edge_keys[l]);
      json_array_foreach(list, j, e) {
        const char *to = json_string_value(e);
        if (!to) continue;
        rm__path_idx(p, lpath, j);
        if ((k = find_task(g, to)) == (size_t)-1) {
          rm__problem(c, p, "edge to unknown task '%s'", to);
        } else if (k == i) {
          rm__problem(c, p, "edge from '%s' to itself", to);
        } else if (rm__listed_before(list, j)) {
          rm__problem(c, p, "edge to '%s' is listed twice", to);
        } else if (!ilist_has(&g->succ[i], k)) {
          if (ilist_push(&g->succ[i], k) || ilist_push(&g->pred[k], i)) return -1;
        }
      }
    }
  }
  return 0;
}

/* Path of the edge from task u to task v, for messages. */
static const char *edge_path(const graph *g, size_t u, size_t v, char *out) {
  char tpath[RM__PATH_MAX], lpath[RM__PATH_MAX];
  rm__path(tpath, "tasks", g->names[u]);
  for (size_t l = 0; l < 2; l++) {
    const json_t *list = json_object_get(g->tasks[u], edge_keys[l]), *e;
    size_t j;
    json_array_foreach(list, j, e) {
      const char *to = json_string_value(e);
      if (to && strcmp(to, g->names[v]) == 0)
        return rm__path_idx(out, rm__path(lpath, tpath, edge_keys[l]), j);
    }
  }
  return rm__path(out, tpath, "on_success");
}

/* Iterative depth-first search: every edge back to a task on the current
 * path closes one cycle, which is reported once, at that edge. */
static int find_cycles(rm__vctx *c, const graph *g) {
  size_t n = g->n;
  unsigned char *color = calloc(n + 1, 1); /* 0 new, 1 on the path, 2 done */
  size_t *stack = calloc(n + 1, sizeof *stack), *next = calloc(n + 1, sizeof *next);
  size_t *depth = calloc(n + 1, sizeof *depth);
  int rc = color && stack && next && depth ? 0 : -1;
  char p[RM__PATH_MAX];
  for (size_t s = 0; !rc && s < n; s++) {
    if (color[s]) continue;
    size_t sp = 0;
    stack[sp] = s;
    next[sp] = 0;
    depth[s] = sp++;
    color[s] = 1;
    while (sp > 0) {
      size_t u = stack[sp - 1];
      if (next[sp - 1] == g->succ[u].n) {
        color[u] = 2;
        sp--;
        continue;
      }
      size_t v = g->succ[u].v[next[sp - 1]++];
      if (color[v] == 0) {
        color[v] = 1;
        stack[sp] = v;
        next[sp] = 0;
        depth[v] = sp++;
      } else if (color[v] == 1) {
        rm_buf m = RM_BUF_INIT;
        for (size_t i = depth[v]; i < sp; i++) rm_buf_printf(&m, "%s -> ", g->names[stack[i]]);
        rm_buf_puts(&m, g->names[v]);
        if (!m.data)
          rc = -1;
        else
          rm__problem(c, edge_path(g, u, v, p), "cycle: %s", m.data);
        rm_buf_free(&m);
      }
    }
  }
  free(color);
  free(stack);
  free(next);
  free(depth);
  return rc;
}

typedef struct refs {
  rm__vctx *c;
  const graph *g;
  size_t task;
  int in_request;          /* scanning the request, where secrets may be */
  const char *rpath;       /* the task's request path */
  unsigned char *upstream; /* per task: upstream of `task` */
  int upstream_ready;
} refs;

static void find_upstream(refs *r) {
  if (r->upstream_ready) return;
  const graph *g = r->g;
  size_t *queue = malloc((g->n + 1) * sizeof *queue), head = 0, tail = 0;
  memset(r->upstream, 0, g->n);
  if (!queue) {
    r->c->oom = 1;
    return;
  }
  queue[tail++] = r->task;
  while (head < tail) {
    size_t u = queue[head++];
    for (size_t i = 0; i < g->pred[u].n; i++) {
      size_t p = g->pred[u].v[i];
      if (!r->upstream[p]) {
        r->upstream[p] = 1;
        queue[tail++] = p;
      }
    }
  }
  free(queue);
  r->upstream_ready = 1;
}

static int extracts(const json_t *task, const char *var, size_t len) {
  return json_object_getn(json_object_get(task, "extract"), var, len) != NULL;
}

/* Reports var unless a task upstream of r->task (or, when self_ok, the
 * task itself) extracts it. prefix starts the message ("{{vars.x}}: "). */
static void check_var(refs *r, const char *location, const char *prefix, const char *var,
                      size_t len, int self_ok) {
  const graph *g = r->g;
  const char *me = g->names[r->task];
  find_upstream(r);
  if (self_ok && extracts(g->tasks[r->task], var, len)) return;
  for (size_t i = 0; i < g->n; i++)
    if (r->upstream[i] && extracts(g->tasks[i], var, len)) return;
  rm_buf by = RM_BUF_INIT;
  size_t count = 0;
  for (size_t i = 0; i < g->n; i++)
    if (extracts(g->tasks[i], var, len))
      rm_buf_printf(&by, "%s%s%s", count++ ? ", " : "", g->names[i],
                    i == r->task ? " (this task)" : "");
  rm_buf why = RM_BUF_INIT;
  if (self_ok)
    rm_buf_printf(&why, "neither '%s' nor any task upstream of it extracts '%.*s'", me, (int)len,
                  var);
  else
    rm_buf_printf(&why, "no task upstream of '%s' extracts '%.*s'", me, (int)len, var);
  if (!why.data || (count && !by.data))
    r->c->oom = 1;
  else if (count)
    rm__problem(r->c, location, "%s%s (extracted by: %s, which %s not upstream)", prefix, why.data,
                by.data, count == 1 ? "is" : "are");
  else
    rm__problem(r->c, location, "%s%s (no task extracts it)", prefix, why.data);
  rm_buf_free(&by);
  rm_buf_free(&why);
}

static int input_known(const rm__vctx *c, const char *name, size_t len) {
  return json_object_getn(c->inputs, name, len) ||
         (json_is_object(c->o->given_inputs) && json_object_getn(c->o->given_inputs, name, len));
}

static void check_secret(refs *r, const char *location, const char *expr, const char *name) {
  rm__vctx *c = r->c;
  if (!r->in_request) {
    rm__problem(c, location, "{{%s}}: secrets may be used only in a task's request", expr);
    return;
  }
  const char *type = json_string_value(json_object_get(r->g->tasks[r->task], "type"));
  size_t rlen = strlen(r->rpath);
  if (type && strcmp(type, "http") == 0 && strncmp(location, r->rpath, rlen) == 0 &&
      location[rlen] == '.') {
    const char *field = location + rlen + 1;
    size_t flen = strcspn(field, ".[");
    int ok = 0;
    for (int i = 0; http_secret_fields[i]; i++)
      ok |=
          strlen(http_secret_fields[i]) == flen && strncmp(http_secret_fields[i], field, flen) == 0;
    if (!ok) {
      rm__problem(
          c, location,
          "{{%s}}: secrets may be used only in url, headers, query, body, json, form and auth",
          expr);
      return;
    }
  }
  const json_t *names = c->o->secret_names, *v;
  size_t i;
  if (!json_is_array(names)) return;
  json_array_foreach(names, i, v) {
    if (json_is_string(v) && strcasecmp(json_string_value(v), name) == 0) return;
  }
  rm_buf list = RM_BUF_INIT;
  json_array_foreach(names, i, v) {
    if (json_is_string(v)) rm_buf_printf(&list, "%s%s", list.len ? ", " : "", json_string_value(v));
  }
  if (list.len)
    rm__problem(c, location, "{{%s}}: no secret '%s' is available (available: %s)", expr, name,
                list.data);
  else
    rm__problem(c, location, "{{%s}}: no secret '%s' is available (no secrets are)", expr, name);
  rm_buf_free(&list);
}

static int on_ref(void *ud, const char *location, const char *expr, const char *problem) {
  refs *r = ud;
  if (problem) {
    rm__problem(r->c, location, "%s", problem);
    return 0;
  }
  const char *dot = strchr(expr, '.');
  if (!dot) return 0; /* a helper: uuid, now, ... */
  const char *name = dot + 1;
  size_t len = strcspn(name, ".[");
  rm_buf prefix = RM_BUF_INIT;
  if (rm_buf_printf(&prefix, "{{%s}}: ", expr)) {
    r->c->oom = 1;
    return 0;
  }
  if (strncmp(expr, "inputs.", 7) == 0 && !input_known(r->c, name, len))
    rm__problem(r->c, location, "%sinput '%.*s' is not declared in 'inputs'%s", prefix.data,
                (int)len, name, r->c->o->given_inputs ? " nor given" : "");
  else if (strncmp(expr, "vars.", 5) == 0)
    check_var(r, location, prefix.data, name, len, 0);
  else if (strncmp(expr, "secrets.", 8) == 0)
    check_secret(r, location, expr, name);
  rm_buf_free(&prefix);
  return 0;
}

static void scan(refs *r, const json_t *v, const char *path, int in_request) {
  r->in_request = in_request;
  if (v && rm_template_scan(v, path, on_ref, r)) r->c->oom = 1;
}

static void check_refs(rm__vctx *c, const graph *g) {
  char tpath[RM__PATH_MAX], rpath[RM__PATH_MAX], p[RM__PATH_MAX], q[RM__PATH_MAX];
  refs r = {c, g, 0, 1, rpath, malloc(g->n + 1), 0};
  if (!r.upstream) {
    c->oom = 1;
    return;
  }
  for (size_t i = 0; i < g->n; i++) {
    const json_t *t = g->tasks[i], *a;
    if (!json_is_object(t)) continue;
    r.task = i;
    r.upstream_ready = 0;
    rm__path(tpath, "tasks", g->names[i]);
    rm__path(rpath, tpath, "request");
    scan(&r, json_object_get(t, "request"), rpath, 1);
    scan(&r, json_object_get(t, "sample_response"), rm__path(p, tpath, "sample_response"), 0);
    const json_t *asserts = json_object_get(t, "assert");
    size_t k;
    json_array_foreach(asserts, k, a) {
      rm__path_idx(q, rm__path(p, tpath, "assert"), k);
      scan(&r, json_object_get(a, "value"), rm__path(p, q, "value"), 0);
      const char *var = json_string_value(json_object_get(a, "var"));
      if (var && rm__is_name(var)) check_var(&r, rm__path(p, q, "var"), "", var, strlen(var), 1);
    }
  }
  free(r.upstream);
}

void rm__validate_graph(rm__vctx *c) {
  graph g = {0, NULL, NULL, NULL, NULL};
  if (graph_build(c, &g) || find_cycles(c, &g)) {
    c->oom = 1;
    graph_free(&g);
    return;
  }
  size_t starts = 0;
  for (size_t i = 0; i < g.n; i++) starts += g.pred[i].n == 0;
  if (g.n && !starts)
    rm__problem(c, "tasks",
                "no start task: every task has an incoming edge, so none can run first");
  check_refs(c, &g);
  graph_free(&g);
}
