/* The timeline `restmon run` prints: one line per attempt of every step, so
 * an operator sees in seconds which step broke and why. Every string comes
 * from the record, which may hold what a server sent, so all of it goes
 * through rm__report_text before it reaches the terminal. */
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "report/text.h"
#include "util/err.h"

enum {
  NAME_W_MAX = 28,   /* longer task names push their line out, uncut */
  VALUE_MAX = 60,    /* code points of a variable or assertion value */
  REASON_MAX = 400,
  URL_MAX = 120,
  FIELD_MAX = 40,    /* methods, codes, header names, formats */
  HEADER_MAX = 200,
  OUTPUT_LINES = 5,
  OUTPUT_LINE_MAX = 120,
};

#define DETAIL "      " /* indentation of the lines under a step */

typedef struct look {
  const char *sym, *sgr, *word, *verdict;
} look;

static const look LOOKS[] = {
    [RM__REPORT_UNKNOWN] = {"?", "35", "status unknown", "UNKNOWN"},
    [RM__REPORT_SUCCEEDED] = {"✓", "32", "succeeded", "SUCCEEDED"},
    [RM__REPORT_DEGRADED] = {"!", "33", "degraded", "DEGRADED"},
    [RM__REPORT_FAILED] = {"✗", "31", "failed", "FAILED"},
    [RM__REPORT_SKIPPED] = {"-", "2", "skipped", "SKIPPED"},
    [RM__REPORT_CANCELLED] = {"⊘", "33", "cancelled", "CANCELLED"},
};

static const look RETRIED = {"↻", "33", "retried", "RETRIED"};

typedef struct tl {
  rm__report_out *o;
  const rm_report_opts *opts;
  size_t name_w;
  const char *prev_url; /* the last URL shown, to shorten a repeated origin */
} tl;

static void put(tl *t, const char *s) { rm__report_puts(t->o, s); }

static void text(tl *t, const char *s, size_t max) { rm__report_textz(t->o, s, max); }

static void colored(tl *t, const char *sgr, const char *s) {
  rm__report_sgr(t->o, sgr);
  put(t, s);
  rm__report_sgr(t->o, "0");
}

/* "scheme://host:port" of url, as a length; 0 when url has no scheme. */
static size_t origin_len(const char *url) {
  const char *p = strstr(url, "://");
  if (!p) return 0;
  p += 3;
  return (size_t)(p + strcspn(p, "/?#") - url);
}

/* A URL whose origin was on the line before is shown as "…/path". */
static void short_url(tl *t, const char *url) {
  size_t n = origin_len(url);
  if (n && url[n] && t->prev_url && origin_len(t->prev_url) == n &&
      memcmp(url, t->prev_url, n) == 0) {
    put(t, "…");
    text(t, url + n, URL_MAX);
  } else {
    text(t, url, URL_MAX);
  }
  t->prev_url = url;
}

/* "E_TIMEOUT: connect timed out", in red. */
static void error_text(tl *t, const json_t *err) {
  const char *code = rm__report_str(err, "code"), *msg = rm__report_str(err, "message");
  rm__report_sgr(t->o, "31");
  text(t, code, FIELD_MAX);
  if (code && msg) put(t, ": ");
  text(t, msg, REASON_MAX);
  if (!code && !msg) put(t, "error");
  rm__report_sgr(t->o, "0");
}

static void http_status(tl *t, const json_t *status) {
  if (json_is_integer(status))
    rm__report_printf(t->o, "%lld", (long long)json_integer_value(status));
  else rm__report_value(t->o, status, FIELD_MAX);
}

/* "POST http://host/login → 200" or "→ E_TIMEOUT: …". */
static void exchange_brief(tl *t, const json_t *ex, bool dry_run) {
  const json_t *req = rm__report_obj(ex, "request"), *resp = rm__report_obj(ex, "response");
  const json_t *err = rm__report_obj(ex, "error");
  const json_t *status = json_object_get(resp, "status");
  const char *method = rm__report_str(req, "method"), *url = rm__report_str(req, "url");
  if (method) {
    text(t, method, FIELD_MAX);
    put(t, " ");
  }
  if (url) short_url(t, url);
  else put(t, "(no url)");
  put(t, " → ");
  if (status) http_status(t, status);
  if (status && err) put(t, " ");
  if (err) error_text(t, err);
  if (!status && !err) put(t, dry_run ? "not sent (dry run)" : "no response");
}

static void headers(tl *t, const char *prefix, const json_t *h) {
  const char *name;
  json_t *v;
  json_object_foreach((json_t *)h, name, v) {
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    for (size_t i = 0; i < n; i++) {
      const json_t *one = json_is_array(v) ? json_array_get(v, i) : v;
      put(t, DETAIL);
      put(t, prefix);
      text(t, name, FIELD_MAX);
      put(t, ": ");
      if (json_is_string(one))
        rm__report_text(t->o, json_string_value(one), json_string_length(one), HEADER_MAX, NULL);
      else rm__report_value(t->o, one, HEADER_MAX);
      rm__report_newline(t->o);
    }
  }
}

/* Shows s line by line under prefix: at most max code points in all (0: no
 * limit), max_lines lines (0: no limit), line_max per line. True when
 * something was left out. */
static bool lines(tl *t, const char *prefix, const char *s, size_t n, size_t max,
                  size_t max_lines, size_t line_max) {
  size_t used = 0, count = 0, i = 0;
  while (i < n) {
    if ((max_lines && count == max_lines) || (max && used >= max)) return true;
    const char *nl = memchr(s + i, '\n', n - i);
    size_t len = nl ? (size_t)(nl - (s + i)) : n - i, shown = len;
    if (shown && s[i + shown - 1] == '\r') shown--;
    size_t budget = max ? max - used : 0;
    bool by_total = true, cut;
    if (line_max && (!budget || line_max < budget)) budget = line_max, by_total = false;
    put(t, DETAIL);
    put(t, prefix);
    used += rm__report_text(t->o, s + i, shown, budget, &cut);
    rm__report_newline(t->o);
    if (cut && by_total) return true;
    count++;
    i += len + (nl ? 1 : 0);
  }
  return false;
}

static void body(tl *t, const char *prefix, const json_t *b, const json_t *owner) {
  if (t->opts->body_preview <= 0 || !b || json_is_null(b)) return;
  char *dumped = NULL;
  const char *s;
  size_t n;
  if (json_is_string(b)) {
    s = json_string_value(b), n = json_string_length(b);
  } else {
    dumped = json_dumps(b, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!dumped) {
      t->o->err = t->o->err ? t->o->err : RM_ENOMEM;
      return;
    }
    s = dumped, n = strlen(dumped);
  }
  double size;
  if (json_is_string(json_object_get(owner, "body_encoding"))) {
    put(t, DETAIL);
    put(t, prefix);
    if (!rm__report_num(owner, "size", &size)) size = (double)n * 3 / 4;
    rm__report_printf(t->o, "(binary, %.0f bytes; base64 in the run record)", size);
    rm__report_newline(t->o);
  } else if (n == 0) {
    put(t, DETAIL);
    put(t, prefix);
    put(t, "(empty body)");
    rm__report_newline(t->o);
  } else if (lines(t, prefix, s, n, (size_t)t->opts->body_preview, 0, 0) ||
             json_is_true(json_object_get(owner, "truncated"))) {
    put(t, DETAIL);
    put(t, prefix);
    if (!rm__report_num(owner, "size", &size)) size = (double)n;
    rm__report_printf(t->o, "(%.0f bytes in all)", size);
    rm__report_newline(t->o);
  }
  free(dumped);
}

/* Verbose: request and response heads, body previews and timings. */
static void exchange_full(tl *t, const json_t *ex) {
  const json_t *req = rm__report_obj(ex, "request"), *resp = rm__report_obj(ex, "response");
  const json_t *tm = rm__report_obj(ex, "timings");
  if (req) {
    put(t, DETAIL "> ");
    text(t, rm__report_str(req, "method"), FIELD_MAX);
    put(t, " ");
    text(t, rm__report_str(req, "url"), 0);
    rm__report_newline(t->o);
    headers(t, "> ", rm__report_obj(req, "headers"));
    body(t, "> ", json_object_get(req, "body"), req);
  }
  if (resp) {
    const char *version = rm__report_str(resp, "http_version");
    put(t, DETAIL "< ");
    if (version) {
      put(t, "HTTP/");
      text(t, version, FIELD_MAX);
      put(t, " ");
    }
    http_status(t, json_object_get(resp, "status"));
    rm__report_newline(t->o);
    headers(t, "< ", rm__report_obj(resp, "headers"));
    body(t, "< ", json_object_get(resp, "body"), resp);
  }
  if (tm) {
    static const struct {
      const char *key, *label;
    } phases[] = {{"dns_ms", "dns"},           {"connect_ms", "connect"}, {"tls_ms", "tls"},
                  {"first_byte_ms", "first byte"}, {"total_ms", "total"}};
    put(t, DETAIL "timings");
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++) {
      double ms;
      if (!rm__report_num(tm, phases[i].key, &ms)) continue;
      rm__report_printf(t->o, "  %s ", phases[i].label);
      rm__report_duration(t->o, ms);
    }
    rm__report_newline(t->o);
  }
}

static void extracted(tl *t, const json_t *vars) {
  const char *name;
  json_t *v;
  json_object_foreach((json_t *)vars, name, v) {
    put(t, DETAIL);
    text(t, name, FIELD_MAX);
    put(t, " = ");
    rm__report_value(t->o, v, VALUE_MAX);
    rm__report_newline(t->o);
  }
}

/* "assert $.qty eq 2 ✗ got 3"; passed ones only when verbose. */
static void assertions(tl *t, const json_t *list) {
  for (size_t i = 0; i < json_array_size(list); i++) {
    const json_t *a = json_array_get(list, i);
    const json_t *passed = json_object_get(a, "passed");
    const json_t *expected = json_object_get(a, "expected");
    const json_t *actual = json_object_get(a, "actual");
    const char *subject = rm__report_str(a, "subject"), *op = rm__report_str(a, "op");
    const char *msg = rm__report_str(a, "message");
    if (json_is_true(passed) && !t->opts->verbose) continue;
    put(t, DETAIL "assert ");
    if (subject || op) {
      text(t, subject ? subject : "?", URL_MAX);
      put(t, " ");
      text(t, op ? op : "?", FIELD_MAX);
      if (expected) {
        put(t, " ");
        rm__report_value(t->o, expected, VALUE_MAX);
      }
    } else {
      text(t, msg ? msg : "(undescribed)", REASON_MAX);
      msg = NULL;
    }
    put(t, " ");
    if (json_is_true(passed)) {
      colored(t, "32", "✓");
    } else {
      colored(t, "31", json_is_false(passed) ? "✗" : "?");
      if (actual) {
        put(t, " got ");
        rm__report_value(t->o, actual, VALUE_MAX);
      } else if (msg) {
        put(t, " ");
        text(t, msg, REASON_MAX);
      }
    }
    rm__report_newline(t->o);
  }
}

static bool same_error(const json_t *a, const json_t *b) {
  const char *ca = rm__report_str(a, "code"), *cb = rm__report_str(b, "code");
  const char *ma = rm__report_str(a, "message"), *mb = rm__report_str(b, "message");
  return (ca && cb ? !strcmp(ca, cb) : ca == cb) && (ma && mb ? !strcmp(ma, mb) : ma == mb);
}

static void output(tl *t, const json_t *out) {
  const json_t *content = json_object_get(out, "content");
  const char *format = rm__report_str(out, "format");
  put(t, DETAIL "output ");
  text(t, format ? format : "(no format)", FIELD_MAX);
  if (json_is_string(content)) {
    const char *s = json_string_value(content);
    size_t n = json_string_length(content), nl = 0;
    for (size_t i = 0; i < n; i++) nl += s[i] == '\n';
    if (n && s[n - 1] != '\n') nl++;
    rm__report_printf(t->o, ", %zu bytes, %zu line%s", n, nl, nl == 1 ? "" : "s");
    rm__report_newline(t->o);
    if (t->opts->verbose && lines(t, "| ", s, n, 0, OUTPUT_LINES, OUTPUT_LINE_MAX)) {
      put(t, DETAIL "| …");
      rm__report_newline(t->o);
    }
  } else {
    rm__report_newline(t->o);
  }
}

/* Logs at warn and error level always, the rest when verbose. */
static void logs(tl *t, const json_t *list) {
  for (size_t i = 0; i < json_array_size(list); i++) {
    const json_t *l = json_array_get(list, i);
    const char *level = rm__report_str(l, "level");
    bool loud = level && (!strcmp(level, "warn") || !strcmp(level, "warning") ||
                          !strcmp(level, "error"));
    if (!loud && !t->opts->verbose) continue;
    put(t, DETAIL "log ");
    text(t, level ? level : "?", FIELD_MAX);
    put(t, ": ");
    text(t, rm__report_str(l, "message"), REASON_MAX);
    rm__report_newline(t->o);
  }
}

/* The lines under an attempt: every exchange when there were several, and
 * for the attempt that decided the step (or any, when verbose) the
 * extracted variables, assertions, error, output and logs. */
static void attempt_details(tl *t, const json_t *a, bool decisive, bool dry_run) {
  const json_t *exs = rm__report_arr(a, "exchanges"), *err = rm__report_obj(a, "error");
  size_t nex = json_array_size(exs);
  bool err_shown = false;
  for (size_t i = 0; nex > 1 && i < nex; i++) {
    const json_t *ex = json_array_get(exs, i);
    double ms;
    put(t, DETAIL);
    exchange_brief(t, ex, dry_run);
    if (rm__report_num(rm__report_obj(ex, "timings"), "total_ms", &ms)) {
      put(t, "  ");
      rm__report_duration(t->o, ms);
    }
    rm__report_newline(t->o);
  }
  for (size_t i = 0; i < nex; i++) {
    const json_t *ex_err = rm__report_obj(json_array_get(exs, i), "error");
    if (err && ex_err && same_error(err, ex_err)) err_shown = true;
    if (t->opts->verbose) exchange_full(t, json_array_get(exs, i));
  }
  if (!decisive && !t->opts->verbose) return;
  extracted(t, rm__report_obj(a, "extracted"));
  assertions(t, rm__report_arr(a, "assertions"));
  if (err && !err_shown) {
    put(t, DETAIL "error ");
    error_text(t, err);
    rm__report_newline(t->o);
  }
  if (rm__report_obj(a, "output")) output(t, rm__report_obj(a, "output"));
  logs(t, rm__report_arr(a, "logs"));
}

/* "  ✓ login            " : symbol and task name, padded to the column. */
static void head(tl *t, const look *lk, const char *name) {
  put(t, "  ");
  rm__report_sgr(t->o, lk->sgr);
  put(t, lk->sym);
  put(t, " ");
  size_t w = rm__report_textz(t->o, name, 0);
  rm__report_sgr(t->o, "0");
  rm__report_pad(t->o, t->name_w > w ? t->name_w - w : 0);
}

/* "failed: reason" with the word (or, for skipped steps, all of it) in the
 * status colour. */
static void verdict(tl *t, const look *lk, const char *word, const char *reason) {
  bool all = lk == &LOOKS[RM__REPORT_SKIPPED];
  rm__report_sgr(t->o, lk->sgr);
  put(t, word);
  if (!all) rm__report_sgr(t->o, "0");
  if (reason) {
    put(t, ": ");
    text(t, reason, REASON_MAX);
  }
  if (all) rm__report_sgr(t->o, "0");
}

static void attempt_line(tl *t, const char *name, const json_t *a, size_t index, size_t n,
                         const look *step_look, bool dry_run) {
  const json_t *retry = rm__report_obj(a, "retry"), *exs = rm__report_arr(a, "exchanges");
  const json_t *num = json_object_get(a, "attempt");
  rm__report_status st = rm__report_status_of(a);
  bool last = index + 1 == n;
  size_t nex = json_array_size(exs);
  double ms;
  head(t, last ? step_look : retry ? &RETRIED : &LOOKS[st], name);
  if (n > 1) {
    if (json_is_integer(num) && json_integer_value(num) > 0)
      rm__report_printf(t->o, "  attempt %lld/%zu", (long long)json_integer_value(num), n);
    else rm__report_printf(t->o, "  attempt %zu/%zu", index + 1, n);
  }
  if (nex == 1) {
    put(t, "  ");
    exchange_brief(t, json_array_get(exs, 0), dry_run);
  } else if (nex > 1) {
    rm__report_printf(t->o, "  %zu requests", nex);
  }
  if (rm__report_num(a, "duration_ms", &ms) ||
      (nex == 1 &&
       rm__report_num(rm__report_obj(json_array_get(exs, 0), "timings"), "total_ms", &ms))) {
    put(t, "  ");
    rm__report_duration(t->o, ms);
  }
  if (!last || retry) {
    const char *reason = rm__report_str(a, "reason");
    if (st != RM__REPORT_SUCCEEDED && (reason || st != RM__REPORT_UNKNOWN)) {
      put(t, "  ");
      verdict(t, &LOOKS[st], LOOKS[st].word, reason);
    }
    if (retry) {
      const char *why = rm__report_str(retry, "reason");
      put(t, st != RM__REPORT_SUCCEEDED ? "; retry" : "  retry");
      if (rm__report_num(retry, "delay_ms", &ms)) {
        put(t, " in ");
        rm__report_duration(t->o, ms);
      }
      if (why) {
        put(t, ": ");
        text(t, why, REASON_MAX);
      }
    }
  }
  rm__report_newline(t->o);
}

static void next_list(tl *t, const json_t *next) {
  for (size_t i = 0; i < json_array_size(next); i++) {
    put(t, i ? ", " : " ");
    const char *task = json_string_value(json_array_get(next, i));
    text(t, task ? task : "?", FIELD_MAX);
  }
}

/* Why the step ended as it did and where the workflow went from it; shown
 * unless the step plainly succeeded. */
static void decision(tl *t, const json_t *step, const look *lk, rm__report_status st,
                     bool inline_) {
  const char *edge = rm__report_str(step, "edge"), *reason = rm__report_str(step, "reason");
  const json_t *next = rm__report_arr(step, "next");
  bool on_failure = edge && !strcmp(edge, "failure");
  if (st == RM__REPORT_SUCCEEDED && !on_failure && !t->opts->verbose && !inline_) return;
  if (st == RM__REPORT_SUCCEEDED && !reason && !on_failure && !inline_) return;
  put(t, inline_ ? "  " : DETAIL);
  verdict(t, lk, lk->word, reason);
  if (on_failure) {
    put(t, "; failure edge");
    if (json_array_size(next)) {
      put(t, " to");
      next_list(t, next);
    }
  } else if (t->opts->verbose && edge && !strcmp(edge, "none")) {
    put(t, "; workflow stops here");
  } else if (t->opts->verbose && json_array_size(next)) {
    put(t, "; next");
    next_list(t, next);
  }
  rm__report_newline(t->o);
}

static void step_block(tl *t, const json_t *step, bool dry_run) {
  const char *name = rm__report_str(step, "task");
  const json_t *atts = rm__report_arr(step, "attempts");
  rm__report_status st = rm__report_status_of(step);
  const look *lk = &LOOKS[st];
  size_t n = json_array_size(atts);
  if (!name) name = json_is_object(step) ? "(unnamed task)" : "(invalid step)";
  if (n == 0) {
    head(t, lk, name);
    decision(t, step, lk, st, true);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const json_t *a = json_array_get(atts, i);
    attempt_line(t, name, a, i, n, lk, dry_run);
    attempt_details(t, a, i + 1 == n, dry_run);
  }
  decision(t, step, lk, st, false);
}

void rm__report_step(rm__report_out *o, const json_t *step, const rm_report_opts *opts,
                     size_t name_w, bool dry_run) {
  tl t = {o, opts, name_w, NULL};
  step_block(&t, step, dry_run);
}

/* "  4 tasks: 2 succeeded, 1 failed, 1 skipped; 6 attempts, 6 requests",
 * from the record's summary where it has the figure. */
static void counts(tl *t, const json_t *run, const json_t *steps) {
  static const char *keys[] = {
      [RM__REPORT_UNKNOWN] = "unknown",  [RM__REPORT_SUCCEEDED] = "succeeded",
      [RM__REPORT_DEGRADED] = "degraded", [RM__REPORT_FAILED] = "failed",
      [RM__REPORT_SKIPPED] = "skipped",   [RM__REPORT_CANCELLED] = "cancelled",
  };
  const json_t *sum = rm__report_obj(run, "summary");
  double by[RM__REPORT_NSTATUS] = {0}, tasks, attempts = 0, requests = 0, v;
  for (size_t i = 0; i < json_array_size(steps); i++) {
    const json_t *s = json_array_get(steps, i), *atts = rm__report_arr(s, "attempts");
    by[rm__report_status_of(s)]++;
    attempts += (double)json_array_size(atts);
    for (size_t j = 0; j < json_array_size(atts); j++)
      requests += (double)json_array_size(rm__report_arr(json_array_get(atts, j), "exchanges"));
  }
  if (!rm__report_num(sum, "tasks", &tasks)) tasks = (double)json_array_size(steps);
  for (size_t i = RM__REPORT_SUCCEEDED; i < RM__REPORT_NSTATUS; i++)
    if (rm__report_num(sum, keys[i], &v)) by[i] = v;
  rm__report_num(sum, "attempts", &attempts);
  rm__report_num(sum, "requests", &requests);
  if (tasks <= 0) return;
  rm__report_printf(t->o, "  %.0f task%s:", tasks, tasks == 1 ? "" : "s");
  const char *sep = " ";
  for (size_t i = RM__REPORT_SUCCEEDED; i < RM__REPORT_NSTATUS; i++) {
    if (by[i] <= 0) continue;
    rm__report_printf(t->o, "%s%.0f %s", sep, by[i], keys[i]);
    sep = ", ";
  }
  if (by[RM__REPORT_UNKNOWN] > 0)
    rm__report_printf(t->o, "%s%.0f of unknown status", sep, by[RM__REPORT_UNKNOWN]);
  rm__report_printf(t->o, "; %.0f attempt%s, %.0f request%s", attempts, attempts == 1 ? "" : "s",
                    requests, requests == 1 ? "" : "s");
  rm__report_newline(t->o);
}

static void header(tl *t, const json_t *run, const look *lk, bool dry_run) {
  const json_t *wf = rm__report_obj(run, "workflow");
  const char *name = rm__report_str(wf, "name"), *id = rm__report_str(run, "run_id");
  double ms;
  rm__report_sgr(t->o, "1");
  text(t, name ? name : "(unnamed workflow)", 0);
  rm__report_sgr(t->o, "0");
  put(t, "  ");
  rm__report_sgr(t->o, "1");
  colored(t, lk->sgr, lk->verdict);
  if (rm__report_num(run, "duration_ms", &ms)) {
    put(t, " in ");
    rm__report_duration(t->o, ms);
  }
  if (dry_run) colored(t, "33", "  (dry run)");
  if (id) {
    put(t, "  run ");
    text(t, id, FIELD_MAX);
  }
  rm__report_newline(t->o);
  if (!t->opts->verbose) return;
  const char *started = rm__report_str(run, "started_at");
  const char *trigger = rm__report_str(rm__report_obj(run, "trigger"), "type");
  const char *source = rm__report_str(wf, "source");
  if (started || trigger || source) {
    static const char *labels[] = {"  started ", "  trigger ", "  source "};
    const char *values[] = {started, trigger, source};
    for (size_t i = 0; i < 3; i++) {
      if (!values[i]) continue;
      put(t, labels[i]);
      text(t, values[i], URL_MAX);
    }
    rm__report_newline(t->o);
  }
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)rm__report_obj(run, "inputs"), key, v) {
    put(t, "  input ");
    text(t, key, FIELD_MAX);
    put(t, " = ");
    rm__report_value(t->o, v, VALUE_MAX);
    rm__report_newline(t->o);
  }
}

int rm_report_timeline(FILE *f, const json_t *run, const rm_report_opts *opts) {
  static const rm_report_opts defaults = {false, false, 400};
  if (!f || !json_is_object(run)) return RM_EINVAL;
  if (!opts) opts = &defaults;
  rm__report_out o = {RM_BUF_INIT, 0, opts->color};
  tl t = {&o, opts, 0, NULL};
  const json_t *steps = rm__report_arr(run, "steps");
  rm__report_status st = rm__report_status_of(run);
  bool dry_run = json_is_true(json_object_get(run, "dry_run"));
  for (size_t i = 0; i < json_array_size(steps); i++) {
    size_t w = rm__report_textz(NULL, rm__report_str(json_array_get(steps, i), "task"), 0);
    if (w > t.name_w) t.name_w = w > NAME_W_MAX ? NAME_W_MAX : w;
  }
  header(&t, run, &LOOKS[st], dry_run);
  for (size_t i = 0; i < json_array_size(steps); i++)
    step_block(&t, json_array_get(steps, i), dry_run);
  if (json_array_size(steps) == 0) put(&t, "  (no steps)\n");
  counts(&t, run, steps);
  rm__report_sgr(&o, "1");
  verdict(&t, &LOOKS[st], LOOKS[st].verdict, rm__report_str(run, "reason"));
  rm__report_newline(&o);
  int rc = rm__report_flush(&o, f);
  rm_buf_free(&o.buf);
  return rc;
}
