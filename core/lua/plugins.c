/* The plugins: built into the binary, then from the admin's folder. */
#include "lua/plugins.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lua/channel.h"
#include "util/buf.h"
#include "util/embedded.h"

/* Checks a manifest's shape; writes why into err. */
static int check_manifest(const json_t *m, const char *name, const char *where, char *err,
                          size_t errlen) {
  if (!json_is_object(m)) {
    snprintf(err, errlen, "%s: manifest must be a JSON object", where);
    return -1;
  }
  const char *mname = json_string_value(json_object_get(m, "name"));
  if (!mname || strcmp(mname, name) != 0) {
    snprintf(err, errlen, "%s: \"name\" must be \"%s\" (the folder's name)", where, name);
    return -1;
  }
  const json_t *kind = json_object_get(m, "kind");
  if (kind && !(json_is_string(kind) && (strcmp(json_string_value(kind), "task") == 0 ||
                                         strcmp(json_string_value(kind), "channel") == 0))) {
    snprintf(err, errlen, "%s: \"kind\" must be \"task\" (the default) or \"channel\"", where);
    return -1;
  }
  if (rm_lua_plugin_is_channel(m)) return rm__lua_check_channel_manifest(m, name, where, err, errlen);
  json_t *fields = json_object_get(m, "fields");
  if (fields && !json_is_array(fields)) {
    snprintf(err, errlen, "%s: \"fields\" must be an array", where);
    return -1;
  }
  size_t i;
  json_t *f;
  json_array_foreach(fields, i, f) {
    if (!json_is_string(json_object_get(f, "name")) || !json_is_string(json_object_get(f, "type"))) {
      snprintf(err, errlen, "%s: fields[%zu] needs a \"name\" and a \"type\"", where, i);
      return -1;
    }
  }
  return 0;
}

static int add_plugin(json_t *all, const char *name, const char *manifest_text,
                      const char *code, const char *path, char *err, size_t errlen) {
  json_error_t je;
  char where[512];
  snprintf(where, sizeof where, "plugin '%s' (%s/manifest.json)", name, path);
  json_t *m = json_loads(manifest_text, 0, &je);
  if (!m) {
    snprintf(err, errlen, "%s: line %d: %s", where, je.line, je.text);
    return -1;
  }
  if (check_manifest(m, name, where, err, errlen)) {
    json_decref(m);
    return -1;
  }
  char lua_path[512];
  snprintf(lua_path, sizeof lua_path, "%s/plugin.lua", path);
  json_object_set_new(all, name, json_pack("{s:o, s:s, s:s}", "manifest", m, "code", code, "path", lua_path));
  return 0;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  rm_buf b = RM_BUF_INIT;
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) rm_buf_append(&b, chunk, n);
  fclose(f);
  return rm_buf_steal(&b);
}

static int load_builtin(json_t *all, char *err, size_t errlen) {
  for (const rm_embedded_file *f = rm_embedded_files; f->path; f++) {
    const char *p = f->path;
    if (strncmp(p, "plugins/", 8) != 0) continue;
    const char *slash = strchr(p + 8, '/');
    if (!slash || strcmp(slash, "/manifest.json") != 0) continue;
    char name[128], dir[256], lua[300];
    snprintf(name, sizeof name, "%.*s", (int)(slash - (p + 8)), p + 8);
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - p), p);
    snprintf(lua, sizeof lua, "%s/plugin.lua", dir);
    const rm_embedded_file *code = rm_embedded_find(lua);
    if (!code) {
      snprintf(err, errlen, "built-in plugin '%s' has no plugin.lua", name);
      return -1;
    }
    if (add_plugin(all, name, f->data, code->data, dir, err, errlen)) return -1;
  }
  return 0;
}

static int load_dir(json_t *all, const char *dir, char *err, size_t errlen) {
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT) return 0;
    snprintf(err, errlen, "plugin folder %s: %s", dir, strerror(errno));
    return -1;
  }
  struct dirent *e;
  int rc = 0;
  while (rc == 0 && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[1024], mpath[1100], lpath[1100];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    snprintf(mpath, sizeof mpath, "%s/manifest.json", path);
    snprintf(lpath, sizeof lpath, "%s/plugin.lua", path);
    char *manifest = read_file(mpath);
    char *code = read_file(lpath);
    if (!manifest || !code) {
      snprintf(err, errlen, "plugin folder %s needs manifest.json and plugin.lua", path);
      rc = -1;
    } else {
      rc = add_plugin(all, e->d_name, manifest, code, path, err, errlen);
    }
    free(manifest);
    free(code);
  }
  closedir(d);
  return rc;
}

bool rm_lua_plugin_is_channel(const json_t *manifest) {
  const char *kind = json_string_value(json_object_get(manifest, "kind"));
  return kind && strcmp(kind, "channel") == 0;
}

json_t *rm_lua_plugins_load(const char *dir, char *err, size_t errlen) {
  json_t *all = json_object();
  if (!all) return NULL;
  if (load_builtin(all, err, errlen) || (dir && load_dir(all, dir, err, errlen))) {
    json_decref(all);
    return NULL;
  }
  return all;
}
