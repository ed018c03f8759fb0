/* What the reporters share: an output buffer with a sticky error, field
 * access that tolerates a run record of any shape, and the sanitising of
 * record text before it reaches a terminal or an XML file. Internal to
 * core/report. */
#ifndef RM_REPORT_TEXT_H
#define RM_REPORT_TEXT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report/report.h"
#include "util/buf.h"

/* Text being built. The first failed append is kept in err and every later
 * append is skipped, so a renderer checks once, at the end. The caller owns
 * the struct and frees buf with rm_buf_free. */
typedef struct rm__report_out {
  rm_buf buf;
  int err;
  bool color;
} rm__report_out;

void rm__report_putn(rm__report_out *o, const char *s, size_t n);
void rm__report_puts(rm__report_out *o, const char *s);
void rm__report_printf(rm__report_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void rm__report_pad(rm__report_out *o, size_t n);
/* An ANSI SGR sequence ("31", "2;32", "0") when colour is on, else nothing. */
void rm__report_sgr(rm__report_out *o, const char *code);
/* Ends the line, dropping the spaces a column layout left at its end. */
void rm__report_newline(rm__report_out *o);
/* Writes the buffer to f: 0, the buffer's error, or RM_EIO. */
int rm__report_flush(rm__report_out *o, FILE *f);

/* Appends n bytes of record text so that it cannot drive a terminal:
 * invalid UTF-8 becomes U+FFFD, control, C1 and bidi characters are shown
 * as \n, \xNN or \uNNNN. At most max code points (0: no limit), the last
 * one "…" when the text was cut; *cut (may be NULL) says whether it was.
 * With o NULL only measures. Returns the code points written. */
size_t rm__report_text(rm__report_out *o, const char *s, size_t n, size_t max,
                       bool *cut);
/* Same for a NUL-terminated string; NULL writes nothing. */
size_t rm__report_textz(rm__report_out *o, const char *s, size_t max);
/* Any JSON value as compact JSON, shortened like rm__report_text. */
void rm__report_value(rm__report_out *o, const json_t *v, size_t max);
/* A duration for people: "12.5 ms", "212 ms", "1.24 s", "2m 05s"; "?" if not finite. */
void rm__report_duration(rm__report_out *o, double ms);

/* Decodes the UTF-8 sequence at s (n > 0): its length (1-4) with *cp set,
 * or 0 when the bytes are not valid UTF-8. */
size_t rm__report_utf8(const unsigned char *s, size_t n, uint32_t *cp);

/* Fields of a record whatever its shape: NULL (or false) when the field is
 * absent, of another type, or obj is not an object. Borrowed from obj. */
const char *rm__report_str(const json_t *obj, const char *key);
const json_t *rm__report_obj(const json_t *obj, const char *key);
const json_t *rm__report_arr(const json_t *obj, const char *key);
/* A finite number (integer or real) into *out. */
bool rm__report_num(const json_t *obj, const char *key, double *out);

/* The status of a run, step or attempt, from its "status" string. */
typedef enum rm__report_status {
  RM__REPORT_UNKNOWN,
  RM__REPORT_SUCCEEDED,
  RM__REPORT_DEGRADED,
  RM__REPORT_FAILED,
  RM__REPORT_SKIPPED,
  RM__REPORT_CANCELLED,
  RM__REPORT_NSTATUS
} rm__report_status;

rm__report_status rm__report_status_of(const json_t *obj);

/* One step's block of the timeline (timeline.c): a line per attempt and the
 * details under it. name_w is the column the task names are padded to. */
void rm__report_step(rm__report_out *o, const json_t *step,
                     const rm_report_opts *opts, size_t name_w, bool dry_run);

#endif
