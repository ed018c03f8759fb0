/* The machines a connection last wrote to signals, parsed, by object id:
 * an observation whose row still holds exactly the text written last
 * takes the machine from here instead of parsing its JSON again (that
 * parse was a third of a check's store work). Exact text comparison keeps
 * it correct whatever happened meanwhile: a rolled-back write, another
 * process's write, or a row changed by hand all read back as a different
 * text and are parsed. SQLite only: PostgreSQL hands jsonb back
 * normalized, never as written.
 *
 * Bounded: at most MEMO_MAX machines (a few kilobytes each); a new one
 * beyond that empties the memo first. One per connection (a connection is
 * used by one thread at a time), so it needs no lock. */
#include <stdlib.h>
#include <string.h>

#include "signal/signal.h"
#include "store/store_internal.h"
#include "util/text.h"

#define MEMO_MAX 4096
#define SLOTS (MEMO_MAX * 2) /* open addressing, at most half full */

typedef struct memo_entry {
  char *id;   /* NULL: free slot */
  char *text; /* the machine's JSON as written */
  size_t len;
  rm_signal *sig;
} memo_entry;

typedef struct memo {
  memo_entry slots[SLOTS];
  size_t n;
} memo;

static void memo_clear(memo *m) {
  for (size_t i = 0; i < SLOTS; i++) {
    free(m->slots[i].id), free(m->slots[i].text), free(m->slots[i].sig);
    m->slots[i] = (memo_entry){0};
  }
  m->n = 0;
}

static void memo_free(void *p) {
  memo_clear(p);
  free(p);
}

/* The slot holding id, or the free slot where it would go. */
static memo_entry *find(memo *m, const char *id) {
  size_t i = (size_t)(rm_fnv1a(id, strlen(id)) % SLOTS);
  while (m->slots[i].id && strcmp(m->slots[i].id, id) != 0) i = (i + 1) % SLOTS;
  return &m->slots[i];
}

bool rm__sigmemo_get(rm__conn *c, const char *id, const char *text, size_t len, rm_signal *out) {
  memo *m = c->memo_free == memo_free ? c->memo : NULL;
  if (!m || !id || !text) return false;
  const memo_entry *e = find(m, id);
  if (!e->id || e->len != len || memcmp(e->text, text, len) != 0) return false;
  *out = *e->sig;
  return true;
}

static memo *memo_of(rm__conn *c) {
  if (c->memo_free == memo_free) return c->memo;
  if (c->memo_free) return NULL; /* the connection memoizes something else */
  memo *m = calloc(1, sizeof *m);
  if (m) c->memo = m, c->memo_free = memo_free;
  return m;
}

void rm__sigmemo_put(rm__conn *c, const char *id, char *text, const rm_signal *sig) {
  memo *m = id && text ? memo_of(c) : NULL;
  memo_entry *e = m ? find(m, id) : NULL;
  if (e && !e->id && m->n == MEMO_MAX) {
    memo_clear(m);
    e = find(m, id);
  }
  if (e && !e->id) {
    e->id = strdup(id);
    e->sig = malloc(sizeof *e->sig);
    if (!e->id || !e->sig) {
      free(e->id), free(e->sig);
      *e = (memo_entry){0};
      e = NULL;
    } else {
      m->n++;
    }
  }
  if (!e) {
    free(text);
    return;
  }
  free(e->text);
  e->text = text, e->len = strlen(text), *e->sig = *sig;
}
