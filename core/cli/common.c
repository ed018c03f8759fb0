#include "cli/common.h"

#include <stdlib.h>
#include <string.h>

#include "engine/validate.h"
#include "lua/plugins.h"

const char *rm_cli_database_url(const char *given, const char *config_path, rm_config **cfg) {
  char err[600];
  if (rm_config_load(cfg, config_path, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return NULL;
  }
  return given ? given : rm_config_str(*cfg, "database");
}

json_t *rm_cli_load_json(const char *path) {
  json_error_t e;
  json_t *v = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
  if (!v) {
    if (e.line < 0)
      fprintf(stderr, "%s: %s\n", path, e.text);
    else
      fprintf(stderr, "%s:%d:%d: %s\n", path, e.line, e.column, e.text);
    return NULL;
  }
  if (!json_is_object(v)) {
    fprintf(stderr, "%s: a workflow must be a JSON object\n", path);
    json_decref(v);
    return NULL;
  }
  return v;
}

int rm_cli_add_var(json_t *inputs, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg) {
    fprintf(stderr, "--var %s: expected name=value\n", arg);
    return -1;
  }
  char *name = strndup(arg, (size_t)(eq - arg));
  json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
  if (!v) v = json_string(eq + 1);
  json_object_set_new(inputs, name, v);
  free(name);
  return 0;
}

int rm_cli_add_secret_env(rm_secrets *s, const char *arg) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg || !eq[1]) {
    fprintf(stderr, "--secret-env %s: expected name=ENVIRONMENT_VARIABLE\n", arg);
    return -1;
  }
  char *name = strndup(arg, (size_t)(eq - arg));
  const char *value = getenv(eq + 1);
  int rc = 0;
  if (!value) {
    fprintf(stderr, "--secret-env %s: environment variable %s is not set\n", arg, eq + 1);
    rc = -1;
  } else {
    char err[256];
    if (rm_secrets_set(s, name, value, err, sizeof err) != 0) {
      fprintf(stderr, "--secret-env %s: %s\n", arg, err);
      rc = -1;
    }
  }
  free(name);
  return rc;
}

size_t rm_cli_print_problems(FILE *f, const char *file, const json_t *problems) {
  size_t i;
  json_t *p;
  json_array_foreach(problems, i, p) {
    const char *path = json_string_value(json_object_get(p, "path"));
    fprintf(f, "%s: %s%s%s\n", file, path && *path ? path : "", path && *path ? ": " : "",
            json_string_value(json_object_get(p, "message")));
  }
  return json_array_size(problems);
}

/* Task types only: a channel plugin is no task type. */
static const json_t *lookup_plugin(void *ud, const char *type) {
  const json_t *m = json_object_get(json_object_get(ud, type), "manifest");
  return m && !rm_lua_plugin_is_channel(m) ? m : NULL;
}

int rm_cli_validate(const char *file, const json_t *wf, const char *plugin_dir, const json_t *inputs,
                    const rm_secrets *secrets, int json_output) {
  char err[512];
  json_t *plugins = rm_lua_plugins_load(plugin_dir, err, sizeof err);
  if (!plugins) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  json_t *names = secrets ? rm_secrets_names(secrets) : NULL;
  rm_validate_opts o = {lookup_plugin, plugins, inputs, names};
  json_t *problems = rm_workflow_validate(wf, &o);
  int rc = 0;
  if (!problems) {
    fprintf(stderr, "%s: out of memory while validating\n", file);
    rc = -1;
  } else if (json_array_size(problems) > 0) {
    if (json_output) {
      json_t *doc = json_pack("{s:b, s:s, s:O}", "valid", 0, "file", file, "problems", problems);
      json_dumpf(doc, stdout, JSON_INDENT(2));
      fputc('\n', stdout);
      json_decref(doc);
    } else {
      size_t n = rm_cli_print_problems(stderr, file, problems);
      fprintf(stderr, "%s: %zu problem%s; nothing was run\n", file, n, n == 1 ? "" : "s");
    }
    rc = -1;
  }
  json_decref(problems);
  json_decref(names);
  json_decref(plugins);
  return rc;
}
