/* A bump allocator for the many small, same-lifetime objects of a compiled
 * query (and of one evaluation's node paths), plus a list of destructors
 * for what the arena does not own directly. */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "jsonpath/internal.h"
#include "util/err.h"

#define CHUNK_SIZE 4096

struct rm__jp_chunk {
  struct rm__jp_chunk *next;
  size_t used, size;
  alignas(max_align_t) unsigned char data[];
};

struct rm__jp_cleanup {
  struct rm__jp_cleanup *next;
  void (*fn)(void *);
  void *p;
};

static size_t align_up(size_t n) {
  const size_t a = alignof(max_align_t);
  return (n + a - 1) / a * a;
}

void *rm__jp_alloc(rm__jp_arena *a, size_t n) {
  n = align_up(n ? n : 1);
  struct rm__jp_chunk *c = a->chunks;
  if (!c || c->size - c->used < n) {
    size_t size = n > CHUNK_SIZE ? n : CHUNK_SIZE;
    c = malloc(sizeof *c + size);
    if (!c) return NULL;
    c->used = 0;
    c->size = size;
    /* A chunk made for one big object goes behind the current one so the
     * current one's free space is not wasted. */
    if (a->chunks && size > CHUNK_SIZE) {
      c->next = a->chunks->next;
      a->chunks->next = c;
    } else {
      c->next = a->chunks;
      a->chunks = c;
    }
  }
  void *p = c->data + c->used;
  c->used += n;
  memset(p, 0, n);
  return p;
}

int rm__jp_defer(rm__jp_arena *a, void (*fn)(void *), void *p) {
  struct rm__jp_cleanup *c = rm__jp_alloc(a, sizeof *c);
  if (!c) {
    fn(p);
    return RM_ENOMEM;
  }
  c->fn = fn;
  c->p = p;
  c->next = a->cleanups;
  a->cleanups = c;
  return 0;
}

void rm__jp_arena_free(rm__jp_arena *a) {
  for (struct rm__jp_cleanup *c = a->cleanups; c; c = c->next) c->fn(c->p);
  a->cleanups = NULL;
  struct rm__jp_chunk *c = a->chunks;
  while (c) {
    struct rm__jp_chunk *next = c->next;
    free(c);
    c = next;
  }
  a->chunks = NULL;
}
