/* Signal configs: the defaults per object type, reading one from JSON
 * with a path for every problem, writing it back, and the names of the
 * signal enums (what the store and the API hold). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "signal/signal_internal.h"
#include "util/err.h"

/* Indexed by the pinned numbers (types, directions and aggregates from 1). */
const char *const rm__signal_state_names[] = {"unknown", "healthy", "degraded", "failed", NULL};
static const char *const type_names[] = {"check", "metric", "event", NULL};
static const char *const severity_names[] = {"info", "warning", "critical", NULL};
static const char *const direction_names[] = {"above", "below", NULL};
static const char *const aggregate_names[] = {"mean", "last", "min", "max", NULL};

static const char *const top_fields[] = {"id",
                                         "type",
                                         "tags",
                                         "failures_to_fail",
                                         "degradations_to_degrade",
                                         "successes_to_recover",
                                         "cooldown_s",
                                         "escalate_during_cooldown",
                                         "unknown_after",
                                         "metric",
                                         NULL};
static const char *const metric_fields[] = {"direction", "degraded", "failed", "aggregate",
                                            "window_s",  "breach_s", NULL};

#define TAGS_MAX 64
#define COOLDOWN_S_MAX 604800 /* a week */
#define WINDOW_S_MAX 86400    /* a day; also breach_s */

typedef struct word_level {
  const char *word;
  enum rm_signal_state level;
} word_level;

static const word_level results[] = {
    {"healthy", RM_SIGNAL_HEALTHY}, {"succeeded", RM_SIGNAL_HEALTHY}, {"success", RM_SIGNAL_HEALTHY},
    {"ok", RM_SIGNAL_HEALTHY},      {"degraded", RM_SIGNAL_DEGRADED}, {"failed", RM_SIGNAL_FAILED},
    {"failure", RM_SIGNAL_FAILED},  {NULL, RM_SIGNAL_UNKNOWN},
};

static const word_level severities[] = {
    {"ok", RM_SIGNAL_HEALTHY},
    {"success", RM_SIGNAL_HEALTHY},
    {"debug", RM_SIGNAL_HEALTHY},
    {"info", RM_SIGNAL_HEALTHY},
    {"informational", RM_SIGNAL_HEALTHY},
    {"notice", RM_SIGNAL_HEALTHY},
    {"warning", RM_SIGNAL_DEGRADED},
    {"warn", RM_SIGNAL_DEGRADED},
    {"minor", RM_SIGNAL_DEGRADED},
    {"error", RM_SIGNAL_FAILED},
    {"err", RM_SIGNAL_FAILED},
    {"major", RM_SIGNAL_FAILED},
    {"critical", RM_SIGNAL_FAILED},
    {"crit", RM_SIGNAL_FAILED},
    {"alert", RM_SIGNAL_FAILED},
    {"emergency", RM_SIGNAL_FAILED},
    {"emerg", RM_SIGNAL_FAILED},
    {"fatal", RM_SIGNAL_FAILED},
    {NULL, RM_SIGNAL_UNKNOWN},
};

/* ---- names ---- */

const char *rm_signal_state_name(enum rm_signal_state s) {
  return (unsigned)s <= RM_SIGNAL_FAILED ? rm__signal_state_names[s] : "invalid";
}

const char *rm_signal_type_name(enum rm_signal_type t) {
  return t >= RM_SIGNAL_CHECK && t <= RM_SIGNAL_EVENT ? type_names[t - 1] : "invalid";
}

const char *rm_signal_severity_name(enum rm_signal_severity s) {
  return (unsigned)s <= RM_SIGNAL_SEV_CRITICAL ? severity_names[s] : "invalid";
}

static int lookup(const word_level *table, const char *s, enum rm_signal_state *out) {
  for (size_t i = 0; s && table[i].word; i++)
    if (strcasecmp(table[i].word, s) == 0) {
      *out = table[i].level;
      return 0;
    }
  return RM_EINVAL;
}

int rm_signal_level_parse(const char *s, enum rm_signal_state *out) { return lookup(results, s, out); }

int rm_signal_severity_level(const char *severity, enum rm_signal_state *out) {
  return lookup(severities, severity, out);
}

/* ---- defaults ---- */

void rm_signal_config_defaults(rm_signal_config *cfg, enum rm_signal_type type) {
  bool check = type == RM_SIGNAL_CHECK;
  memset(cfg, 0, sizeof *cfg);
  cfg->type = type;
  cfg->failures_to_fail = check ? 3 : 1;
  cfg->degradations_to_degrade = check ? 3 : 1;
  cfg->successes_to_recover = check ? 2 : 1;
  cfg->cooldown_ms = 60000;
  cfg->escalate_during_cooldown = true;
  cfg->unknown_after = type == RM_SIGNAL_EVENT ? 0 : 3;
  cfg->metric.direction = RM_SIGNAL_ABOVE;
  cfg->metric.aggregate = RM_SIGNAL_AGG_MEAN;
}

/* ---- parsing ---- */

static void read_count(rm__sig_problems *p, const json_t *j, const char *key, int64_t min, uint32_t *out) {
  int64_t v;
  if (rm__sig_int(p, j, "$", key, false, min, RM_SIGNAL_COUNT_MAX, &v)) *out = (uint32_t)v;
}

static void read_seconds(rm__sig_problems *p, const json_t *j, const char *path, const char *key, int64_t max,
                         int64_t *ms) {
  int64_t v;
  if (rm__sig_int(p, j, path, key, false, 0, max, &v)) *ms = v * 1000;
}

/* A copy of the "tags" array (empty when absent); NULL when out of memory. */
static json_t *read_tags(rm__sig_problems *p, const json_t *j) {
  const json_t *v = json_object_get(j, "tags"), *t;
  json_t *out = json_array();
  size_t i;
  if (!v || !out) return out;
  if (!json_is_array(v) || json_array_size(v) > TAGS_MAX) {
    rm__sig_problem(p, "$", "tags", "must be an array of at most %d strings", TAGS_MAX);
    return out;
  }
  json_array_foreach(v, i, t) {
    size_t n = json_string_length(t);
    if (json_is_string(t) && n >= 1 && n < RM_SIGNAL_ID_MAX && strlen(json_string_value(t)) == n) {
      json_array_append_new(out, json_stringn(json_string_value(t), n));
      continue;
    }
    char path[48];
    snprintf(path, sizeof path, "$.tags[%zu]", i);
    rm__sig_problem(p, path, NULL, "must be a string of 1 to %d bytes", RM_SIGNAL_ID_MAX - 1);
  }
  return out;
}

/* The thresholds must be apart in the direction's order, or the degraded
 * one could never be reached. */
static void check_order(rm__sig_problems *p, const rm_signal_metric_rule *r) {
  if (!r->has_degraded || !r->has_failed) return;
  bool above = r->direction == RM_SIGNAL_ABOVE;
  if (above ? r->failed > r->degraded : r->failed < r->degraded) return;
  rm__sig_problem(p, "$.metric", "failed", "must be %s \"degraded\" (%g) when direction is \"%s\"",
                  above ? "greater than" : "less than", r->degraded, above ? "above" : "below");
}

static void read_metric(rm__sig_problems *p, const json_t *m, rm_signal_metric_rule *r) {
  const char *path = "$.metric";
  int i;
  if (!json_is_object(m)) {
    rm__sig_problem(p, "$", "metric", m ? "must be an object" : "required for type \"metric\": an object");
    return;
  }
  rm__sig_only(p, m, path, metric_fields);
  if (rm__sig_enum(p, m, path, "direction", false, direction_names, &i)) r->direction = i + 1;
  if (rm__sig_enum(p, m, path, "aggregate", false, aggregate_names, &i)) r->aggregate = i + 1;
  r->has_degraded = rm__sig_real(p, m, path, "degraded", false, &r->degraded);
  r->has_failed = rm__sig_real(p, m, path, "failed", false, &r->failed);
  if (!json_object_get(m, "degraded") && !json_object_get(m, "failed"))
    rm__sig_problem(p, path, NULL, "needs a \"degraded\" threshold, a \"failed\" one or both");
  check_order(p, r);
  read_seconds(p, m, path, "window_s", WINDOW_S_MAX, &r->window_ms);
  read_seconds(p, m, path, "breach_s", WINDOW_S_MAX, &r->breach_ms);
}

/* Every field but tags, into c (already holding the type's defaults). */
static void read_rules(rm__sig_problems *p, const json_t *j, rm_signal_config *c) {
  const char *id;
  int64_t count;
  if (rm__sig_str(p, j, "$", "id", true, RM_SIGNAL_ID_MAX - 1, &id)) snprintf(c->id, sizeof c->id, "%s", id);
  read_count(p, j, "failures_to_fail", 1, &c->failures_to_fail);
  read_count(p, j, "degradations_to_degrade", 1, &c->degradations_to_degrade);
  read_count(p, j, "successes_to_recover", 1, &c->successes_to_recover);
  if (rm__sig_int(p, j, "$", "unknown_after", false, 0, RM_SIGNAL_COUNT_MAX, &count))
    c->unknown_after = (uint32_t)count;
  read_seconds(p, j, "$", "cooldown_s", COOLDOWN_S_MAX, &c->cooldown_ms);
  rm__sig_bool(p, j, "$", "escalate_during_cooldown", false, &c->escalate_during_cooldown);
  const json_t *m = json_object_get(j, "metric");
  if (c->type == RM_SIGNAL_METRIC)
    read_metric(p, m, &c->metric);
  else if (m && c->type) /* with no valid type, only the type is reported */
    rm__sig_problem(p, "$", "metric", "only for type \"metric\"");
}

int rm_signal_config_parse(rm_signal_config *cfg, const json_t *j, json_t *problems, char *err, size_t errlen) {
  rm__sig_problems p;
  rm_signal_config c;
  int type = -1;
  rm__sig_problems_init(&p, problems, err, errlen);
  if (!json_is_object(j)) {
    rm__sig_problem(&p, "$", NULL, "must be an object");
    return RM_EINVAL;
  }
  rm__sig_only(&p, j, "$", top_fields);
  rm__sig_enum(&p, j, "$", "type", true, type_names, &type);
  rm_signal_config_defaults(&c, type >= 0 ? (enum rm_signal_type)(type + 1) : RM_SIGNAL_CHECK);
  if (type < 0) c.type = 0; /* no metric rules checked against a guessed type */
  read_rules(&p, j, &c);
  json_t *tags = read_tags(&p, j);
  if (!tags) return RM_ENOMEM;
  if (p.n) {
    json_decref(tags);
    return RM_EINVAL;
  }
  c.tags = tags;
  *cfg = c;
  return 0;
}

/* ---- writing ---- */

static json_t *metric_to_json(const rm_signal_metric_rule *r) {
  json_t *m = json_pack("{s:s, s:s, s:I, s:I}", "direction", direction_names[r->direction - 1], "aggregate",
                        aggregate_names[r->aggregate - 1], "window_s", (json_int_t)(r->window_ms / 1000), "breach_s",
                        (json_int_t)(r->breach_ms / 1000));
  if (m && r->has_degraded) json_object_set_new(m, "degraded", json_real(r->degraded));
  if (m && r->has_failed) json_object_set_new(m, "failed", json_real(r->failed));
  return m;
}

json_t *rm_signal_config_to_json(const rm_signal_config *cfg) {
  json_t *tags = cfg->tags ? json_deep_copy(cfg->tags) : json_array();
  json_t *j =
      json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:b, s:I}", "id", cfg->id, "type", rm_signal_type_name(cfg->type),
                "tags", tags, "failures_to_fail", (json_int_t)cfg->failures_to_fail, "degradations_to_degrade",
                (json_int_t)cfg->degradations_to_degrade, "successes_to_recover", (json_int_t)cfg->successes_to_recover,
                "cooldown_s", (json_int_t)(cfg->cooldown_ms / 1000), "escalate_during_cooldown",
                cfg->escalate_during_cooldown, "unknown_after", (json_int_t)cfg->unknown_after);
  if (!j || cfg->type != RM_SIGNAL_METRIC) return j;
  json_t *m = metric_to_json(&cfg->metric);
  if (!m || json_object_set_new(j, "metric", m) != 0) {
    json_decref(j);
    return NULL;
  }
  return j;
}

void rm_signal_config_free(rm_signal_config *cfg) {
  json_decref(cfg->tags);
  cfg->tags = NULL;
}
