/* The spec fields of tasks, workflows, schedules, monitors and mapping
 * rules (docs/api.md lists them), checked strictly: every unknown field,
 * nested ones too, is named; defaults are filled in so that what is
 * stored is what the scheduler and the signal engine will read. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "serve/defs.h"

/* ---- task ---- */

static void check_task(rm_dcheck *k, json_t *b) {
  const json_t *def = rm_dc_obj(k, b, "$", "definition", true);
  if (def) rm_defs_check_task_definition(k, def, "$.definition");
}

/* ---- workflow ---- */

bool rm_defs_workflow_name_ok(const char *s) {
  if (!s || !*s) return false;
  for (; *s; s++)
    if (!(isalnum((unsigned char)*s) || strchr("-_.", *s))) return false;
  return true;
}

/* The definition's own name is the workflow's: filled in when left out. */
static void check_workflow(rm_dcheck *k, json_t *b) {
  const char *name = json_string_value(json_object_get(b, "name"));
  if (name && !rm_defs_workflow_name_ok(name))
    rm_dc_add(k, "$", "name", "a workflow name uses only letters, digits, '-', '_' and '.'");
  rm_defs_check_notifications(k, b);
  json_t *def = rm_dc_obj(k, b, "$", "definition", true);
  if (!def || !name) return;
  const json_t *dn = json_object_get(def, "name");
  if (!dn) json_object_set_new(def, "name", json_string(name));
  else if (!json_is_string(dn) || strcmp(json_string_value(dn), name) != 0)
    rm_dc_add(k, "$.definition", "name", "must equal $.name ('%s'); leave it out to take it from there", name);
}

/* ---- schedule ---- */

/* An IANA zone name that exists as a compiled zone file. */
static bool tz_exists(const char *tz) {
  size_t n = strlen(tz);
  if (n == 0 || n > 64 || tz[0] == '/' || strstr(tz, "..")) return false;
  for (const char *p = tz; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p)) return false;
  char path[128], magic[4];
  snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", tz);
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  bool ok = fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0; /* a folder reads nothing */
  fclose(f);
  return ok;
}

static void check_timezone(rm_dcheck *k, json_t *b) {
  const json_t *v = json_object_get(b, "timezone");
  if (!v) {
    json_object_set_new(b, "timezone", json_string("UTC"));
    return;
  }
  if (!json_is_string(v) || !tz_exists(json_string_value(v)))
    rm_dc_add(k, "$", "timezone", "must name an IANA time zone such as \"UTC\" or \"Europe/Paris\"");
}

static void check_every(rm_dcheck *k, json_t *b) {
  static const char *const units[] = {"seconds", "minutes", "hours", "days", NULL};
  static const json_int_t max[] = {31622400, 527040, 8784, 366}; /* a leap year */
  json_t *e = rm_dc_obj(k, b, "$", "every", true);
  if (!e) return;
  rm_dc_only(k, e, "$.every", units);
  int u = rm_dc_index(units, rm_dc_one_of(k, e, "$.every", units, true));
  if (u >= 0) rm_dc_int(k, e, "$.every", units[u], true, 1, max[u], false, 0);
}

typedef struct cron_field {
  const char *what;
  int lo, hi;
  const char *const *names; /* names for lo.. (months from 1, days from 0) */
} cron_field;

static const char *const months[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                     "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const wdays[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};
static const cron_field cron_fields[] = {
    {"second", 0, 59, NULL}, {"minute", 0, 59, NULL},         {"hour", 0, 23, NULL},
    {"day of month", 1, 31, NULL}, {"month", 1, 12, months}, {"day of week", 0, 7, wdays},
};

/* A number of the field's range, or one of its names; -1 otherwise. */
static int cron_value(const char *s, size_t n, const cron_field *f) {
  if (n == 0 || n > 3) return -1;
  if (isdigit((unsigned char)s[0])) {
    int v = 0;
    for (size_t i = 0; i < n; i++) {
      if (!isdigit((unsigned char)s[i])) return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v >= f->lo && v <= f->hi ? v : -1;
  }
  for (int i = 0; f->names && f->names[i]; i++)
    if (n == 3 && strncasecmp(s, f->names[i], 3) == 0) return f->lo + i;
  return -1;
}

/* One item of a list: "*", "?", "v", "a-b", each with an optional "/step". */
static bool cron_item(const char *s, size_t n, const cron_field *f) {
  const char *slash = memchr(s, '/', n);
  size_t base = slash ? (size_t)(slash - s) : n;
  if (slash) {
    cron_field steps = {"step", 1, f->hi, NULL};
    if (cron_value(slash + 1, n - base - 1, &steps) < 0) return false;
  }
  if (base == 1 && (s[0] == '*' || (s[0] == '?' && f->lo == 1 && f->hi == 31) || (s[0] == '?' && f->names == wdays)))
    return true;
  const char *dash = memchr(s, '-', base);
  if (!dash) return cron_value(s, base, f) >= 0;
  int a = cron_value(s, (size_t)(dash - s), f), b = cron_value(dash + 1, base - (size_t)(dash - s) - 1, f);
  return a >= 0 && b >= a;
}

static void check_cron(rm_dcheck *k, const json_t *b) {
  const char *expr = rm_dc_str(k, b, "$", "cron", true), *p = expr;
  const char *starts[8];
  size_t lens[8], n = 0;
  while (p && *p) {
    while (*p == ' ' || *p == '\t') p++;
    if (!*p) break;
    size_t len = strcspn(p, " \t");
    if (n < 8) starts[n] = p, lens[n] = len;
    n++;
    p += len;
  }
  if (!expr) return;
  static const char *const macros[] = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                                       "@hourly", NULL};
  if (expr[0] == '@') {
    if (rm_dc_index(macros, expr) < 0)
      rm_dc_add(k, "$", "cron", "unknown macro: use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly");
    return;
  }
  if (n != 5 && n != 6) {
    rm_dc_add(k, "$", "cron", "must have 5 fields (minute hour day-of-month month day-of-week) or 6 (with "
                              "seconds first), not %zu", n);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const cron_field *f = &cron_fields[i + (n == 5)];
    const char *s = starts[i], *end = s + lens[i];
    bool ok = true;
    while (ok && s <= end) {
      size_t len = strcspn(s, ", \t");
      if (s + len > end) len = (size_t)(end - s);
      ok = cron_item(s, len, f);
      s += len + 1;
    }
    if (!ok)
      rm_dc_add(k, "$", "cron", "field %zu (%s) '%.*s': use *, a value %d-%d%s, a range a-b, a list a,b or a step /n",
                i + 1, f->what, (int)lens[i], starts[i], f->lo, f->hi, f->names ? " or a name (JAN, MON)" : "");
  }
}

static int digits(const char *s, int n, int lo, int hi) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v >= lo && v <= hi ? v : -1;
}

/* YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|+HH:MM|+HHMM|-...]; without an
 * offset the time is in the schedule's time zone, a date alone is its
 * midnight. */
static bool iso_offset(const char *p) {
  if (*p == 'Z' || *p == 'z') return p[1] == '\0';
  if (*p != '+' && *p != '-') return *p == '\0';
  if (digits(p + 1, 2, 0, 23) < 0) return false;
  p += 3;
  if (*p == ':') p++;
  return digits(p, 2, 0, 59) >= 0 && p[2] == '\0';
}

static bool iso_datetime(const char *s) {
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (strlen(s) < 10 || s[4] != '-' || s[7] != '-') return false;
  int y = digits(s, 4, 1970, 9999), m = digits(s + 5, 2, 1, 12), d = digits(s + 8, 2, 1, 31);
  if (y < 0 || m < 0 || d < 0 || d > mdays[m - 1]) return false;
  if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) return false;
  if (s[10] == '\0') return true;
  if (!strchr("Tt ", s[10]) || strlen(s) < 16 || s[13] != ':') return false;
  if (digits(s + 11, 2, 0, 23) < 0 || digits(s + 14, 2, 0, 59) < 0) return false;
  const char *p = s + 16;
  if (*p == ':') {
    if (digits(p + 1, 2, 0, 59) < 0) return false;
    p += 3;
    if (*p == '.') {
      p++;
      if (!isdigit((unsigned char)*p)) return false;
      while (isdigit((unsigned char)*p)) p++;
    }
  }
  return iso_offset(p);
}

static void check_at(rm_dcheck *k, const json_t *b) {
  const json_t *at = rm_dc_strs(k, b, "$", "at", true, NULL), *v;
  size_t i;
  if (json_array_size(at) > 1000) rm_dc_add(k, "$", "at", "at most 1000 date-times");
  json_array_foreach(at, i, v) if (!iso_datetime(json_string_value(v))) {
    char p[64];
    snprintf(p, sizeof p, "$.at[%zu]", i);
    rm_dc_add(k, p, NULL, "must be an ISO-8601 date-time such as \"2026-05-01T09:30:00Z\" (no offset: the "
                          "schedule's time zone)");
  }
}

static void check_schedule(rm_dcheck *k, json_t *b) {
  static const char *const kinds[] = {"every", "cron", "at", NULL};
  static const char *const policies[] = {"once", "skip", "all", NULL};
  rm_dc_bool(k, b, "$", "enabled", true);
  check_timezone(k, b);
  const char *which = rm_dc_one_of(k, b, "$", kinds, true);
  if (which && strcmp(which, "every") == 0) check_every(k, b);
  else if (which && strcmp(which, "cron") == 0) check_cron(k, b);
  else if (which) check_at(k, b);
  rm_dc_enum(k, b, "$", "missed_policy", policies, false, "once");
}

/* ---- monitor ---- */

static const char *const check_fields[] = {"workflow_id", "task_id", "schedule_id", "timeout_ms", "retries", NULL};
static const char *const metric_fields[] = {"unit",     "direction", "degraded", "failed",
                                            "window_s", "breach_s",  "source",   NULL};
static const char *const no_fields[] = {NULL};

/* The signal's rules, for every type. A check's expected interval is its
 * schedule's; a metric or event monitor states one (interval_s) to turn
 * Unknown after unknown_after silent intervals (default 3; 0 = never). */
static void check_criteria(rm_dcheck *k, json_t *b, bool check) {
  static const char *const crit[] = {"failures_to_fail", "successes_to_recover", "cooldown_s", "unknown_after",
                                     "interval_s", NULL};
  if (!json_object_get(b, "criteria")) json_object_set_new(b, "criteria", json_object());
  json_t *cr = rm_dc_obj(k, b, "$", "criteria", true);
  if (!cr) return;
  rm_dc_only(k, cr, "$.criteria", crit);
  rm_dc_int(k, cr, "$.criteria", "failures_to_fail", false, 1, 100, true, 1);
  rm_dc_int(k, cr, "$.criteria", "successes_to_recover", false, 1, 100, true, 1);
  rm_dc_int(k, cr, "$.criteria", "cooldown_s", false, 0, 86400, true, 0);
  rm_dc_int(k, cr, "$.criteria", "unknown_after", false, 0, 1000, true, 3);
  if (check && json_object_get(cr, "interval_s"))
    rm_dc_add(k, "$.criteria", "interval_s", "a check's interval is its schedule's");
  else rm_dc_int(k, cr, "$.criteria", "interval_s", false, 1, 86400, false, 0);
}

static void check_check(rm_dcheck *k, json_t *b) {
  static const char *const targets[] = {"workflow_id", "task_id", NULL};
  const char *which = rm_dc_one_of(k, b, "$", targets, true);
  if (which) rm_dc_ref(k, b, "$", which, strcmp(which, "task_id") == 0 ? "task" : "workflow", true);
  rm_dc_ref(k, b, "$", "schedule_id", "schedule", true);
  rm_dc_int(k, b, "$", "timeout_ms", false, 1, 3600000, false, 0);
  rm_dc_int(k, b, "$", "retries", false, 0, 10, true, 0);
}

/* A variable or task name of the workflow format: [A-Za-z_][A-Za-z0-9_-]*. */
static bool flow_name_ok(const char *s) {
  if (!(isalpha((unsigned char)*s) || *s == '_')) return false;
  for (s++; *s; s++)
    if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-')) return false;
  return true;
}

/* Where a metric's values come from besides pushes: a variable the runs
 * of a workflow extract (metric_source.c), optionally only one step's. */
static void check_source(rm_dcheck *k, const json_t *b) {
  static const char *const fields[] = {"workflow_id", "variable", "task", NULL};
  const json_t *src = rm_dc_obj(k, b, "$", "source", false);
  if (!src) return;
  rm_dc_only(k, src, "$.source", fields);
  rm_dc_ref(k, src, "$.source", "workflow_id", "workflow", true);
  for (int i = 1; i < 3; i++) {
    const char *v = rm_dc_str(k, src, "$.source", fields[i], i == 1);
    if (v && (strlen(v) > 100 || !flow_name_ok(v)))
      rm_dc_add(k, "$.source", fields[i], "must be a %s name of the workflow ([A-Za-z_][A-Za-z0-9_-]*, at most 100 "
                                           "characters)", i == 1 ? "variable" : "task");
  }
}

static void check_metric(rm_dcheck *k, json_t *b) {
  static const char *const dirs[] = {"above", "below", NULL};
  if (json_object_get(b, "unit")) rm_dc_str(k, b, "$", "unit", false);
  int dir = rm_dc_enum(k, b, "$", "direction", dirs, true, NULL);
  const json_t *deg = json_object_get(b, "degraded"), *fail = json_object_get(b, "failed");
  if (deg && !json_is_number(deg)) rm_dc_add(k, "$", "degraded", "must be a number");
  if (fail && !json_is_number(fail)) rm_dc_add(k, "$", "failed", "must be a number");
  if (!deg && !fail) rm_dc_add(k, "$", NULL, "a metric monitor needs a 'degraded' or a 'failed' threshold (or both)");
  if (dir >= 0 && json_is_number(deg) && json_is_number(fail)) {
    double d = json_number_value(deg), f = json_number_value(fail);
    if (dir == 0 ? d >= f : d <= f)
      rm_dc_add(k, "$", "degraded", "with direction \"%s\" the degraded threshold must be %s the failed one", dirs[dir],
                dir == 0 ? "below" : "above");
  }
  bool w = rm_dc_int(k, b, "$", "window_s", true, 1, 86400, false, 0);
  bool br = rm_dc_int(k, b, "$", "breach_s", false, 0, 86400, true, 0);
  if (w && br && json_integer_value(json_object_get(b, "breach_s")) > json_integer_value(json_object_get(b, "window_s")))
    rm_dc_add(k, "$", "breach_s", "must not exceed window_s");
  check_source(k, b);
}

static void check_monitor(rm_dcheck *k, json_t *b) {
  static const char *const types[] = {"check", "metric", "event", NULL};
  static const char *const *per_type[] = {check_fields, metric_fields, no_fields};
  int t = rm_dc_enum(k, b, "$", "type", types, true, NULL);
  if (t < 0) return;
  const char *const *lists[] = {check_fields, metric_fields};
  for (int l = 0; l < 2; l++)
    for (size_t i = 0; lists[l][i]; i++)
      if (json_object_get(b, lists[l][i]) && rm_dc_index(per_type[t], lists[l][i]) < 0) {
        rm_dc_add(k, "$", lists[l][i], "not a field of a %s monitor", types[t]);
        k->unknown++;
      }
  rm_defs_check_monitor_notify(k, b);
  check_criteria(k, b, t == 0);
  if (t == 0) check_check(k, b);
  else if (t == 1) check_metric(k, b);
}

/* ---- mapping rule: a signal transition starts a workflow ---- */

static void check_mapping(rm_dcheck *k, json_t *b) {
  static const char *const match_fields[] = {"object_id", "tag", "severity", "from", "to", NULL};
  static const char *const selectors[] = {"object_id", "tag", "severity", NULL};
  static const char *const severities[] = {"info", "warning", "critical", NULL};
  static const char *const states[] = {"healthy", "degraded", "failed", "unknown", NULL};
  rm_dc_bool(k, b, "$", "enabled", true);
  rm_dc_ref(k, b, "$", "workflow_id", "workflow", true);
  rm_dc_obj(k, b, "$", "inputs", false);
  json_t *m = rm_dc_obj(k, b, "$", "match", true);
  if (!m) return;
  rm_dc_only(k, m, "$.match", match_fields);
  const char *sel = rm_dc_one_of(k, m, "$.match", selectors, false);
  if (sel && strcmp(sel, "object_id") == 0) rm_dc_ref(k, m, "$.match", "object_id", "monitor", true);
  else if (sel && strcmp(sel, "tag") == 0) rm_dc_str(k, m, "$.match", "tag", true);
  else if (sel) rm_dc_enum(k, m, "$.match", "severity", severities, true, NULL);
  int from = rm_dc_enum(k, m, "$.match", "from", states, false, NULL);
  int to = rm_dc_enum(k, m, "$.match", "to", states, true, NULL);
  if (from >= 0 && from == to) rm_dc_add(k, "$.match", "to", "must differ from 'from': a transition changes the state");
}

/* ---- the table ---- */

static const char *const task_f[] = {"definition", NULL};
static const char *const workflow_f[] = {"definition", "notifications", NULL};
static const char *const schedule_f[] = {"enabled", "timezone", "every", "cron", "at", "missed_policy", NULL};
static const char *const monitor_f[] = {"type",    "workflow_id", "task_id",  "schedule_id", "timeout_ms",
                                        "retries", "criteria",    "unit",     "direction",   "degraded",
                                        "failed",  "window_s",    "breach_s", "notify",      "source", NULL};
static const char *const mapping_f[] = {"enabled", "match", "workflow_id", "inputs", NULL};

const rm_defkind rm__kind_task = {"task", "tasks", RM_MOD_TASKS, true, task_f, check_task, NULL};
const rm_defkind rm__kind_workflow = {"workflow", "workflows", RM_MOD_WORKFLOWS, true, workflow_f, check_workflow,
                                      rm_defs_workflow_draft};
const rm_defkind rm__kind_schedule = {"schedule", "schedules", RM_MOD_SCHEDULES, true, schedule_f, check_schedule, NULL};
const rm_defkind rm__kind_monitor = {"monitor", "monitors", RM_MOD_MONITORS, true, monitor_f, check_monitor, NULL};
const rm_defkind rm__kind_mapping = {"mapping", "mappings", RM_MOD_MONITORS, false, mapping_f, check_mapping, NULL};
