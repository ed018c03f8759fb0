/* Structured logging to stderr: text or JSON lines, with levels.
 *
 * Every line passes through an optional scrubber (set by the secret vault)
 * before it is written, so no secret value reaches a log. */
#ifndef RM_UTIL_LOG_H
#define RM_UTIL_LOG_H

#include <stddef.h>

enum rm_log_level {
  RM_LOG_DEBUG = 0,
  RM_LOG_INFO = 1,
  RM_LOG_WARN = 2,
  RM_LOG_ERROR = 3,
  RM_LOG_OFF = 4,
};

enum rm_log_format { RM_LOG_TEXT = 0, RM_LOG_JSON = 1 };

/* Scrubs a message; returns a malloc'ed copy (caller frees) or NULL when
 * nothing needed changing. */
typedef char *(*rm_log_scrub_fn)(void *ud, const char *msg);

void rm_log_configure(enum rm_log_level level, enum rm_log_format format);
void rm_log_set_scrubber(rm_log_scrub_fn fn, void *ud);
/* "debug", "info", "warn", "error", "off" -> level; -1 if unknown. */
int rm_log_level_parse(const char *s);
enum rm_log_level rm_log_level_get(void);

/* Log one event. `component` is a short subsystem name ("http", "engine").
 * Extra key/value string pairs may follow fmt's arguments? No: keep the
 * message self-contained; use rm_logkv for structured fields. */
void rm_log(enum rm_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like rm_log with structured fields: kv is a NULL-terminated list of
 * alternating keys and values (strings). */
void rm_logkv(enum rm_log_level level, const char *component, const char *msg,
              const char *const *kv);

#define rm_log_debug(c, ...) rm_log(RM_LOG_DEBUG, c, __VA_ARGS__)
#define rm_log_info(c, ...) rm_log(RM_LOG_INFO, c, __VA_ARGS__)
#define rm_log_warn(c, ...) rm_log(RM_LOG_WARN, c, __VA_ARGS__)
#define rm_log_error(c, ...) rm_log(RM_LOG_ERROR, c, __VA_ARGS__)

#endif
