/* JUnit XML, the format Jenkins, GitLab and most CI systems read: a
 * <testsuite> per run, a <testcase> per step. A failed step carries the
 * decision reason and its attempts in <failure>; every step with attempts
 * gets the plain timeline of them in <system-out>. */
#include <ctype.h>
#include <string.h>

#include "report/report.h"
#include "report/text.h"
#include "util/err.h"

/* Body previews in a failure's details; CI logs are read after the fact, so
 * they get what an operator would ask for with --verbose. */
enum { FAILURE_BODY_PREVIEW = 400 };

static const char WORKFLOW_CASE[] = "(workflow)";

typedef struct tally {
  size_t tests, failures, errors, skipped;
  double secs;
} tally;

/* Escapes text for XML 1.0: markup characters become entities, and what
 * XML 1.0 cannot hold at all (C0 controls, U+FFFE/U+FFFF, invalid UTF-8)
 * becomes U+FFFD. In attributes, whitespace is kept as character
 * references because parsers would normalise it to spaces. */
static void xml(rm__report_out *o, const char *s, size_t n, bool attr) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, start = 0;
  while (i < n) {
    uint32_t cp;
    size_t len = rm__report_utf8(p + i, n - i, &cp);
    const char *rep = NULL;
    if (len == 0) {
      rep = "\xEF\xBF\xBD";
      len = 1;
    } else if (cp == '&') rep = "&amp;";
    else if (cp == '<') rep = "&lt;";
    else if (cp == '>') rep = "&gt;";
    else if (cp == '"' && attr) rep = "&quot;";
    else if (cp == '\n' && attr) rep = "&#10;";
    else if (cp == '\t' && attr) rep = "&#9;";
    else if (cp == '\r') rep = "&#13;";
    else if ((cp < 0x20 && cp != '\n' && cp != '\t') || cp == 0xFFFE || cp == 0xFFFF)
      rep = "\xEF\xBF\xBD";
    if (rep) {
      rm__report_putn(o, s + start, i - start);
      rm__report_puts(o, rep);
      start = i + len;
    }
    i += len;
  }
  rm__report_putn(o, s + start, n - start);
}

static void xmlz(rm__report_out *o, const char *s, bool attr) {
  if (s) xml(o, s, strlen(s), attr);
}

/* ` name="value"` */
static void attr(rm__report_out *o, const char *name, const char *value) {
  rm__report_printf(o, " %s=\"", name);
  xmlz(o, value, true);
  rm__report_puts(o, "\"");
}

static void secs(rm__report_out *o, const char *name, double s) {
  rm__report_printf(o, " %s=\"%.3f\"", name, s > 0 ? s : 0);
}

static double seconds_of(const json_t *obj) {
  double ms;
  return rm__report_num(obj, "duration_ms", &ms) && ms > 0 ? ms / 1000 : 0;
}

/* The status of the extra "(workflow)" case a run needs when it failed or
 * was cancelled with no failed step to show for it (a definition error, a
 * run-level timeout), so that CI does not pass it; UNKNOWN when none. */
static rm__report_status workflow_case(const json_t *run, size_t failed_steps) {
  rm__report_status st = rm__report_status_of(run);
  if (failed_steps || (st != RM__REPORT_FAILED && st != RM__REPORT_CANCELLED))
    return RM__REPORT_UNKNOWN;
  return st;
}

static void count_run(const json_t *run, tally *c) {
  const json_t *steps = rm__report_arr(run, "steps");
  tally t = {0, 0, 0, 0, 0};
  if (!json_is_object(run)) {
    t.tests = t.errors = 1;
  } else {
    t.tests = json_array_size(steps);
    for (size_t i = 0; i < t.tests; i++) {
      switch (rm__report_status_of(json_array_get(steps, i))) {
        case RM__REPORT_FAILED: t.failures++; break;
        case RM__REPORT_SKIPPED:
        case RM__REPORT_CANCELLED: t.skipped++; break;
        case RM__REPORT_UNKNOWN: t.errors++; break;
        default: break;
      }
    }
    switch (workflow_case(run, t.failures)) {
      case RM__REPORT_FAILED: t.tests++, t.failures++; break;
      case RM__REPORT_CANCELLED: t.tests++, t.errors++; break;
      default: break;
    }
    t.secs = seconds_of(run);
  }
  c->tests += t.tests, c->failures += t.failures, c->errors += t.errors;
  c->skipped += t.skipped, c->secs += t.secs;
}

static void counts_attrs(rm__report_out *o, const tally *c) {
  rm__report_printf(o, " tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\"", c->tests,
                    c->failures, c->errors, c->skipped);
  secs(o, "time", c->secs);
}

/* The step's timeline block as the text of an element. */
static void step_text(rm__report_out *o, const json_t *step, bool verbose, bool dry_run) {
  rm_report_opts opts = {false, verbose, verbose ? FAILURE_BODY_PREVIEW : 0};
  rm__report_out b = {RM_BUF_INIT, 0, false};
  rm__report_step(&b, step, &opts, 0, dry_run);
  if (b.err && !o->err) o->err = b.err;
  if (!b.err && b.buf.len) {
    rm__report_puts(o, "\n");
    xml(o, b.buf.data, b.buf.len, false);
  }
  rm_buf_free(&b.buf);
}

/* "skipped: reason" as one attribute value. */
static void message_attr(rm__report_out *o, const char *prefix, const char *reason) {
  rm__report_puts(o, " message=\"");
  xmlz(o, prefix, true);
  if (prefix && reason) rm__report_puts(o, ": ");
  xmlz(o, reason, true);
  rm__report_puts(o, "\"");
}

static void step_case(rm__report_out *o, const json_t *step, size_t index, const char *classname,
                      bool dry_run) {
  const char *name = rm__report_str(step, "task"), *reason = rm__report_str(step, "reason");
  const char *status = rm__report_str(step, "status");
  rm__report_status st = rm__report_status_of(step);
  rm__report_puts(o, "    <testcase");
  attr(o, "classname", classname);
  if (name) attr(o, "name", name);
  else rm__report_printf(o, " name=\"(step %zu)\"", index + 1);
  secs(o, "time", seconds_of(step));
  rm__report_puts(o, ">\n");
  switch (st) {
    case RM__REPORT_FAILED:
      rm__report_puts(o, "      <failure");
      message_attr(o, reason ? NULL : "failed", reason);
      rm__report_puts(o, " type=\"failed\">");
      step_text(o, step, true, dry_run);
      rm__report_puts(o, "      </failure>\n");
      break;
    case RM__REPORT_SKIPPED:
    case RM__REPORT_CANCELLED:
      rm__report_puts(o, "      <skipped");
      message_attr(o, st == RM__REPORT_SKIPPED ? "skipped" : "cancelled", reason);
      rm__report_puts(o, "/>\n");
      break;
    case RM__REPORT_UNKNOWN:
      rm__report_puts(o, "      <error type=\"invalid-record\"");
      if (!json_is_object(step)) message_attr(o, "step is not a JSON object", NULL);
      else if (status) message_attr(o, "unknown step status", status);
      else message_attr(o, "step has no status", NULL);
      rm__report_puts(o, "/>\n");
      break;
    default:
      break;
  }
  if (json_array_size(rm__report_arr(step, "attempts"))) {
    rm__report_puts(o, "      <system-out>");
    step_text(o, step, false, dry_run);
    rm__report_puts(o, "      </system-out>\n");
  }
  rm__report_puts(o, "    </testcase>\n");
}

static void run_case(rm__report_out *o, const json_t *run, rm__report_status st,
                     const char *classname) {
  const char *reason = rm__report_str(run, "reason"), *id = rm__report_str(run, "run_id");
  const char *word = st == RM__REPORT_FAILED ? "failed" : "cancelled";
  rm__report_puts(o, "    <testcase");
  attr(o, "classname", classname);
  attr(o, "name", WORKFLOW_CASE);
  secs(o, "time", seconds_of(run));
  rm__report_puts(o, st == RM__REPORT_FAILED ? ">\n      <failure" : ">\n      <error");
  message_attr(o, reason ? NULL : word, reason);
  rm__report_printf(o, " type=\"%s\">run ", word);
  xmlz(o, id ? id : "?", false);
  rm__report_printf(o, " %s", word);
  if (reason) rm__report_puts(o, ": ");
  xmlz(o, reason, false);
  rm__report_puts(o, st == RM__REPORT_FAILED ? "</failure>\n" : "</error>\n");
  rm__report_puts(o, "    </testcase>\n");
}

/* "2026-11-23T10:00:00" from the record's ISO 8601 time: the JUnit schema
 * takes neither fractions nor a zone. False when s is not such a time. */
static bool timestamp(const char *s, char out[20]) {
  static const char pattern[] = "dddd-dd-ddTdd:dd:dd";
  if (!s || strlen(s) < 19) return false;
  for (size_t i = 0; i < 19; i++)
    if (pattern[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pattern[i]) return false;
  memcpy(out, s, 19);
  out[19] = '\0';
  return true;
}

static void properties(rm__report_out *o, const json_t *run) {
  const struct {
    const char *name, *value;
  } props[] = {
      {"run_id", rm__report_str(run, "run_id")},
      {"status", rm__report_str(run, "status")},
      {"reason", rm__report_str(run, "reason")},
      {"trigger", rm__report_str(rm__report_obj(run, "trigger"), "type")},
      {"source", rm__report_str(rm__report_obj(run, "workflow"), "source")},
      {"dry_run", json_is_true(json_object_get(run, "dry_run")) ? "true" : NULL},
  };
  bool any = false;
  for (size_t i = 0; i < sizeof props / sizeof props[0]; i++) {
    if (!props[i].value) continue;
    if (!any) rm__report_puts(o, "    <properties>\n");
    any = true;
    rm__report_puts(o, "      <property");
    attr(o, "name", props[i].name);
    attr(o, "value", props[i].value);
    rm__report_puts(o, "/>\n");
  }
  if (any) rm__report_puts(o, "    </properties>\n");
}

static const char *run_name(const json_t *run) {
  const char *name = rm__report_str(rm__report_obj(run, "workflow"), "name");
  if (name) return name;
  return json_is_object(run) ? "(unnamed workflow)" : "(invalid run record)";
}

/* nth > 0 numbers the suite: the runs of a --repeat batch share a name. */
static void suite(rm__report_out *o, const json_t *run, size_t nth) {
  const json_t *steps = rm__report_arr(run, "steps");
  const char *name = run_name(run);
  bool dry_run = json_is_true(json_object_get(run, "dry_run"));
  tally c = {0, 0, 0, 0, 0};
  char ts[20];
  rm_buf classname = RM_BUF_INIT;
  count_run(run, &c);
  if (rm_buf_puts(&classname, "restmon.") || rm_buf_puts(&classname, name)) {
    o->err = o->err ? o->err : RM_ENOMEM;
    rm_buf_free(&classname);
    return;
  }
  rm__report_puts(o, "  <testsuite name=\"");
  xmlz(o, name, true);
  if (nth) rm__report_printf(o, " #%zu", nth);
  rm__report_puts(o, "\"");
  counts_attrs(o, &c);
  if (timestamp(rm__report_str(run, "started_at"), ts)) attr(o, "timestamp", ts);
  rm__report_puts(o, ">\n");
  properties(o, run);
  if (!json_is_object(run)) {
    rm__report_puts(o, "    <testcase");
    attr(o, "classname", classname.data);
    attr(o, "name", WORKFLOW_CASE);
    rm__report_puts(o, " time=\"0.000\">\n      <error type=\"invalid-record\" "
                       "message=\"run record is not a JSON object\"/>\n    </testcase>\n");
  }
  size_t failed = 0;
  for (size_t i = 0; i < json_array_size(steps); i++) {
    const json_t *step = json_array_get(steps, i);
    failed += rm__report_status_of(step) == RM__REPORT_FAILED;
    step_case(o, step, i, classname.data, dry_run);
  }
  rm__report_status extra = workflow_case(run, failed);
  if (extra != RM__REPORT_UNKNOWN) run_case(o, run, extra, classname.data);
  rm__report_puts(o, "  </testsuite>\n");
  rm_buf_free(&classname);
}

/* How many runs carry each workflow name, to number those that repeat. */
static int name_counts(const json_t *runs, size_t n, json_t *counts) {
  for (size_t i = 0; i < n; i++) {
    const json_t *run = json_is_array(runs) ? json_array_get(runs, i) : runs;
    const char *name = run_name(run);
    json_int_t k = json_integer_value(json_object_get(counts, name));
    if (json_object_set_new_nocheck(counts, name, json_integer(k + 1))) return RM_ENOMEM;
  }
  return 0;
}

int rm_report_junit(FILE *f, const json_t *runs) {
  if (!f || !(json_is_array(runs) || json_is_object(runs))) return RM_EINVAL;
  size_t n = json_is_array(runs) ? json_array_size(runs) : 1;
  json_t *total = json_object(), *seen = json_object();
  rm__report_out o = {RM_BUF_INIT, 0, false};
  tally all = {0, 0, 0, 0, 0};
  if (!total || !seen) o.err = RM_ENOMEM;
  else o.err = name_counts(runs, n, total);
  for (size_t i = 0; i < n; i++)
    count_run(json_is_array(runs) ? json_array_get(runs, i) : runs, &all);
  rm__report_puts(&o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"restmon\"");
  counts_attrs(&o, &all);
  rm__report_puts(&o, ">\n");
  for (size_t i = 0; i < n && !o.err; i++) {
    const json_t *run = json_is_array(runs) ? json_array_get(runs, i) : runs;
    const char *name = run_name(run);
    json_int_t nth = 0;
    if (json_integer_value(json_object_get(total, name)) > 1) {
      nth = json_integer_value(json_object_get(seen, name)) + 1;
      if (json_object_set_new_nocheck(seen, name, json_integer(nth))) o.err = RM_ENOMEM;
    }
    suite(&o, run, (size_t)nth);
  }
  rm__report_puts(&o, "</testsuites>\n");
  int rc = rm__report_flush(&o, f);
  rm_buf_free(&o.buf);
  json_decref(total);
  json_decref(seen);
  return rc;
}
