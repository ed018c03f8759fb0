/* Appending JSON string literals (quoted, escaped) to an rm_buf. */
#ifndef RM_UTIL_JSON_STR_H
#define RM_UTIL_JSON_STR_H

#include <stddef.h>

#include "util/buf.h"

/* Appends s as a quoted JSON string; bytes that are not valid UTF-8 are
 * written as U+FFFD. 0 or RM_ENOMEM. */
int rm_json_str_append(rm_buf *b, const char *s);
int rm_json_strn_append(rm_buf *b, const char *s, size_t n);

#endif
