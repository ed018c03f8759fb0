/* Compact JSON text of a jansson value, byte for byte what
 * json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(p))
 * writes (keys in insertion order, no escaped '/', control characters as
 * \uXXXX), several times faster: the store writes every step record,
 * run definition and signal machine through it, and the API every
 * answer. */
#ifndef RM_UTIL_JSON_DUMP_H
#define RM_UTIL_JSON_DUMP_H

#include <jansson.h>

#include "util/buf.h"

/* Appends v to b; precision is the significant digits of reals (1-17;
 * 0 means 17, jansson's default). 0, or RM_ENOMEM (b then holds a
 * partial text), or RM_EINVAL for a value nested deeper than jansson
 * would write. */
int rm_json_dump(rm_buf *b, const json_t *v, int precision);

/* The text of v (caller frees), or NULL when out of memory or v is NULL. */
char *rm_json_dumps(const json_t *v, int precision);

#endif
