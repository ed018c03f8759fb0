#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"

/* The known settings and their defaults (restmon.conf documents them). */
static const struct {
  const char *key;
  const char *def;
} known[] = {
    {"database", "sqlite:var/restmon.db"},
    {"database.threads", "2"},
    {"database.retry_ms", "30000"},
    {"executor.concurrency", "16"},
    {"executor.lease_ms", "15000"},
    {"runs.record_body_bytes", "65536"},
    {"retention.succeeded_days", "30"},
    {"retention.failed_days", "90"},
    {"log.level", "info"},
    {"log.format", "text"},
    {"listen", "127.0.0.1:8080"},
    {"tls.cert_file", ""},
    {"tls.key_file", ""},
    {"tls.client_ca_file", ""},
    {"web.dir", "web/dist"},
    {"vault.key_file", "var/master.key"},
    {"auth.session_ttl_s", "43200"},
    {"notify.attempts", "5"},
    {"notify.backoff_ms", "1000"},
    {"notify.max_delay_ms", "60000"},
    {"serve.sync_ms", "2000"},
};
enum { NKNOWN = sizeof known / sizeof known[0] };

struct rm_config {
  char *path;
  char *file_value[NKNOWN];
  char file_source[NKNOWN][300];
  char env_source[NKNOWN][80];
};

static int index_of(const char *key) {
  for (int i = 0; i < NKNOWN; i++)
    if (strcmp(known[i].key, key) == 0) return i;
  return -1;
}

static void env_name(const char *key, char *out, size_t n) {
  size_t k = (size_t)snprintf(out, n, "RESTMON_");
  for (const char *p = key; *p && k + 1 < n; p++)
    out[k++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
  out[k] = '\0';
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
  return s;
}

static int parse_file(rm_config *c, FILE *f, char *err, size_t errlen) {
  char line[4096];
  int lineno = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    if (!strchr(line, '\n') && !feof(f)) {
      snprintf(err, errlen, "%s:%d: line longer than %zu characters", c->path, lineno, sizeof line - 2);
      return RM_EINVAL;
    }
    char *s = trim(line);
    if (*s == '\0' || *s == '#') continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      snprintf(err, errlen, "%s:%d: expected \"key = value\", got \"%.60s\"", c->path, lineno, s);
      return RM_EINVAL;
    }
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    int i = index_of(key);
    if (i < 0) {
      snprintf(err, errlen, "%s:%d: unknown setting \"%.60s\" (see restmon.conf for the known ones)",
               c->path, lineno, key);
      return RM_EINVAL;
    }
    free(c->file_value[i]);
    if (!(c->file_value[i] = strdup(value))) return RM_ENOMEM;
    snprintf(c->file_source[i], sizeof c->file_source[i], "%s:%d", c->path, lineno);
  }
  return 0;
}

int rm_config_load(rm_config **out, const char *path, char *err, size_t errlen) {
  *out = NULL;
  rm_config *c = calloc(1, sizeof *c);
  if (!c) return RM_ENOMEM;
  for (int i = 0; i < NKNOWN; i++) env_name(known[i].key, c->env_source[i], sizeof c->env_source[i]);
  bool required = true;
  if (!path) path = getenv("RESTMON_CONFIG");
  if (!path || !*path) {
    path = "restmon.conf";
    required = false;
  }
  FILE *f = fopen(path, "r");
  if (!f && (required || errno != ENOENT)) {
    snprintf(err, errlen, "%s: cannot read the configuration: %s", path, strerror(errno));
    free(c);
    return RM_EIO;
  }
  if (f) {
    c->path = strdup(path);
    int rc = c->path ? parse_file(c, f, err, errlen) : RM_ENOMEM;
    fclose(f);
    if (rc) {
      rm_config_free(c);
      return rc;
    }
  }
  *out = c;
  return 0;
}

void rm_config_free(rm_config *c) {
  if (!c) return;
  for (int i = 0; i < NKNOWN; i++) free(c->file_value[i]);
  free(c->path);
  free(c);
}

const char *rm_config_str(const rm_config *c, const char *key) {
  int i = index_of(key);
  if (i < 0) return NULL;
  const char *env = getenv(c->env_source[i]);
  if (env && *env) return env;
  return c->file_value[i] ? c->file_value[i] : known[i].def;
}

const char *rm_config_source(const rm_config *c, const char *key) {
  static __thread char buf[120];
  int i = index_of(key);
  if (i < 0) return "unknown";
  const char *env = getenv(c->env_source[i]);
  if (env && *env) {
    snprintf(buf, sizeof buf, "environment (%s)", c->env_source[i]);
    return buf;
  }
  return c->file_value[i] ? c->file_source[i] : "default";
}

const char *rm_config_path(const rm_config *c) { return c->path; }

const char *rm_config_key_at(size_t i) { return i < NKNOWN ? known[i].key : NULL; }

int rm_config_u64(const rm_config *c, const char *key, uint64_t *out, char *err, size_t errlen) {
  const char *v = rm_config_str(c, key);
  if (!v) {
    snprintf(err, errlen, "unknown setting \"%s\"", key);
    return RM_EINVAL;
  }
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (!isdigit((unsigned char)*v) || *end || errno) {
    snprintf(err, errlen, "%s = \"%s\" (%s): expected a whole number >= 0", key, v, rm_config_source(c, key));
    return RM_EINVAL;
  }
  *out = (uint64_t)n;
  return 0;
}

int rm_config_days_ms(const rm_config *c, const char *key, uint64_t *out, char *err, size_t errlen) {
  const char *v = rm_config_str(c, key);
  char *end = NULL;
  double d = v ? strtod(v, &end) : -1;
  if (!v || end == v || *end || d < 0) {
    snprintf(err, errlen, "%s = \"%s\" (%s): expected a number of days >= 0", key, v ? v : "",
             rm_config_source(c, key));
    return RM_EINVAL;
  }
  *out = (uint64_t)(d * 86400000.0);
  return 0;
}
