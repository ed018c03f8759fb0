/* Files compiled into the binary (lua/restmon/ and plugins/ sources): see
 * scripts/embed-files. The table ends with a NULL path. */
#ifndef RM_UTIL_EMBEDDED_H
#define RM_UTIL_EMBEDDED_H

#include <stddef.h>

typedef struct rm_embedded_file {
  const char *path; /* relative to the source tree, e.g. "lua/restmon/extract.lua" */
  const char *data; /* NUL-terminated */
  size_t len;
} rm_embedded_file;

extern const rm_embedded_file rm_embedded_files[];

/* The embedded file at path, or NULL. */
const rm_embedded_file *rm_embedded_find(const char *path);

#endif
