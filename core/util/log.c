#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "util/json_str.h"
#include "util/iso_time.h"

/* Process-wide logger settings: set once at start-up from the command line
 * or configuration, read by every log call on the loop thread. */
static struct {
  enum rm_log_level level;
  enum rm_log_format format;
  rm_log_scrub_fn scrub;
  void *scrub_ud;
} logger = {RM_LOG_INFO, RM_LOG_TEXT, NULL, NULL};

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void rm_log_configure(enum rm_log_level level, enum rm_log_format format) {
  logger.level = level;
  logger.format = format;
}

void rm_log_set_scrubber(rm_log_scrub_fn fn, void *ud) {
  logger.scrub = fn;
  logger.scrub_ud = ud;
}

enum rm_log_level rm_log_level_get(void) { return logger.level; }

int rm_log_level_parse(const char *s) {
  for (int i = 0; i <= RM_LOG_OFF; i++)
    if (strcmp(s, level_names[i]) == 0) return i;
  return -1;
}

/* Writes the line with one fwrite so lines from concurrent writers never
 * interleave mid-line. */
static void emit(enum rm_log_level level, const char *component, const char *msg,
                 const char *const *kv) {
  char ts[32];
  rm_buf line = RM_BUF_INIT;
  rm_iso_now(ts);
  if (logger.format == RM_LOG_JSON) {
    rm_buf_printf(&line, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":", ts,
                  level_names[level]);
    rm_json_str_append(&line, component);
    rm_buf_puts(&line, ",\"msg\":");
    rm_json_str_append(&line, msg);
    for (const char *const *p = kv; p && p[0] && p[1]; p += 2) {
      rm_buf_putc(&line, ',');
      rm_json_str_append(&line, p[0]);
      rm_buf_putc(&line, ':');
      rm_json_str_append(&line, p[1]);
    }
    rm_buf_puts(&line, "}\n");
  } else {
    rm_buf_printf(&line, "%s %-5s [%s] %s", ts, level_names[level], component, msg);
    for (const char *const *p = kv; p && p[0] && p[1]; p += 2)
      rm_buf_printf(&line, " %s=%s", p[0], p[1]);
    rm_buf_putc(&line, '\n');
  }
  char *text = line.data;
  char *clean = logger.scrub && text ? logger.scrub(logger.scrub_ud, text) : NULL;
  if (clean) text = clean;
  if (text) fwrite(text, 1, strlen(text), stderr);
  free(clean);
  rm_buf_free(&line);
}

void rm_logkv(enum rm_log_level level, const char *component, const char *msg,
              const char *const *kv) {
  if (level < logger.level || level >= RM_LOG_OFF) return;
  emit(level, component, msg, kv);
}

void rm_log(enum rm_log_level level, const char *component, const char *fmt, ...) {
  if (level < logger.level || level >= RM_LOG_OFF) return;
  rm_buf msg = RM_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  rm_buf_vprintf(&msg, fmt, ap);
  va_end(ap);
  emit(level, component, msg.data ? msg.data : "", NULL);
  rm_buf_free(&msg);
}
