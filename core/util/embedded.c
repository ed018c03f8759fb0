#include "util/embedded.h"

#include <string.h>

const rm_embedded_file *rm_embedded_find(const char *path) {
  for (const rm_embedded_file *f = rm_embedded_files; f->path; f++)
    if (strcmp(f->path, path) == 0) return f;
  return NULL;
}
