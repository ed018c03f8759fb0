/* The query grammar of RFC 9535: root and current identifiers, child and
 * descendant segments, and the name, wildcard, index, slice and filter
 * selectors. Filter expressions are parsed by expr.c. */
#include <string.h>

#include "jsonpath/internal.h"
#include "util/err.h"

static int is_int_start(int c) { return c == '-' || (c >= '0' && c <= '9'); }

/* index-selector or slice-selector:
 *   [start S] ":" S [end S] [":" [S step]] */
static int parse_index_or_slice(struct rm__jp_parser *p, struct rm__jp_selector *sel) {
  int64_t first = 0;
  int has_first = 0, rc;
  if (rm__jp_peek(p) != ':') {
    if ((rc = rm__jp_lex_int(p, &first))) return rc;
    has_first = 1;
    size_t save = p->pos;
    rm__jp_skip_blank(p);
    if (rm__jp_peek(p) != ':') {
      p->pos = save;
      sel->kind = RM__JP_SEL_INDEX;
      sel->u.index = first;
      return 0;
    }
  }
  sel->kind = RM__JP_SEL_SLICE;
  sel->u.slice.start = first;
  sel->u.slice.has_start = (unsigned char)has_first;
  sel->u.slice.step = 1;
  p->pos++; /* ':' */
  rm__jp_skip_blank(p);
  if (is_int_start(rm__jp_peek(p))) {
    if ((rc = rm__jp_lex_int(p, &sel->u.slice.end))) return rc;
    sel->u.slice.has_end = 1;
    rm__jp_skip_blank(p);
  }
  if (rm__jp_peek(p) == ':') {
    p->pos++;
    size_t save = p->pos;
    rm__jp_skip_blank(p);
    if (is_int_start(rm__jp_peek(p))) {
      if ((rc = rm__jp_lex_int(p, &sel->u.slice.step))) return rc;
    } else {
      p->pos = save;
    }
  }
  return 0;
}

static int parse_selector(struct rm__jp_parser *p, struct rm__jp_selector *sel) {
  int c = rm__jp_peek(p);
  if (c == '\'' || c == '"') {
    sel->kind = RM__JP_SEL_NAME;
    return rm__jp_lex_string(p, &sel->u.name.s, &sel->u.name.len);
  }
  if (c == '*') {
    p->pos++;
    sel->kind = RM__JP_SEL_WILDCARD;
    return 0;
  }
  if (c == '?') {
    p->pos++;
    rm__jp_skip_blank(p);
    sel->kind = RM__JP_SEL_FILTER;
    return rm__jp_parse_filter(p, &sel->u.filter);
  }
  if (c == ':' || is_int_start(c)) return parse_index_or_slice(p, sel);
  if (c < 0) return rm__jp_fail(p, p->pos, "expected a selector, found the end of the query");
  return rm__jp_fail(p, p->pos, "expected a selector");
}

/* Grows a selector array kept in the arena (segments rarely hold more
 * than a few selectors). */
static int push_selector(struct rm__jp_parser *p, struct rm__jp_segment *seg, size_t *cap,
                         struct rm__jp_selector **slot) {
  if (seg->nsel == *cap) {
    size_t ncap = *cap ? *cap * 2 : 2;
    struct rm__jp_selector *n = rm__jp_alloc(p->arena, ncap * sizeof *n);
    if (!n) return rm__jp_oom(p);
    if (seg->nsel) memcpy(n, seg->sel, seg->nsel * sizeof *n);
    seg->sel = n;
    *cap = ncap;
  }
  *slot = &seg->sel[seg->nsel++];
  return 0;
}

/* bracketed-selection = "[" S selector *(S "," S selector) S "]".
 * *tight is set when it is exactly "[" selector "]", the only form a
 * singular query admits. */
static int parse_bracketed(struct rm__jp_parser *p, struct rm__jp_segment *seg, int *tight) {
  size_t open = p->pos, cap = 0;
  int rc;
  if ((rc = rm__jp_enter(p))) return rc;
  p->pos++;
  *tight = !rm__jp_is_blank(rm__jp_peek(p));
  for (;;) {
    rm__jp_skip_blank(p);
    struct rm__jp_selector *sel = NULL;
    if ((rc = push_selector(p, seg, &cap, &sel)) || (rc = parse_selector(p, sel))) return rc;
    if (rm__jp_is_blank(rm__jp_peek(p))) *tight = 0;
    rm__jp_skip_blank(p);
    int c = rm__jp_peek(p);
    if (c == ']') break;
    if (c != ',') {
      if (c < 0) return rm__jp_fail(p, p->pos, "expected ']' to close '[' at offset %zu", open);
      return rm__jp_fail(p, p->pos, "expected ']'");
    }
    p->pos++;
  }
  p->pos++;
  rm__jp_leave(p);
  return 0;
}

/* The part after "." or "..": a member name or "*". */
static int parse_dot_selector(struct rm__jp_parser *p, struct rm__jp_segment *seg) {
  struct rm__jp_selector *sel = rm__jp_alloc(p->arena, sizeof *sel);
  if (!sel) return rm__jp_oom(p);
  seg->sel = sel;
  seg->nsel = 1;
  if (rm__jp_peek(p) == '*') {
    p->pos++;
    sel->kind = RM__JP_SEL_WILDCARD;
    return 0;
  }
  if (rm__jp_is_blank(rm__jp_peek(p)))
    return rm__jp_fail(p, p->pos, "blank space is not allowed after '.'");
  sel->kind = RM__JP_SEL_NAME;
  return rm__jp_lex_member_name(p, &sel->u.name.s, &sel->u.name.len);
}

/* One segment at the current '[' or '.'; *singular is cleared unless it is
 * a name or index segment in the form RFC 9535 allows in singular queries. */
static int parse_segment(struct rm__jp_parser *p, struct rm__jp_segment *seg, int *singular) {
  int rc, tight = 0;
  if (rm__jp_peek(p) == '[') {
    if ((rc = parse_bracketed(p, seg, &tight))) return rc;
  } else if (rm__jp_peek_at(p, 1) == '.') {
    p->pos += 2;
    seg->descendant = 1;
    if (rm__jp_peek(p) == '[') {
      if ((rc = parse_bracketed(p, seg, &tight))) return rc;
    } else if ((rc = parse_dot_selector(p, seg))) {
      return rc;
    }
  } else {
    p->pos++;
    if ((rc = parse_dot_selector(p, seg))) return rc;
    tight = 1;
  }
  enum rm__jp_sel_kind k = seg->sel[0].kind;
  if (!tight || seg->descendant || seg->nsel != 1 ||
      (k != RM__JP_SEL_NAME && k != RM__JP_SEL_INDEX))
    *singular = 0;
  return 0;
}

int rm__jp_parse_query(struct rm__jp_parser *p, struct rm__jp_query *q) {
  int rc;
  q->relative = rm__jp_peek(p) == '@';
  q->singular = 1;
  p->pos++;
  size_t cap = 0;
  for (;;) {
    size_t save = p->pos;
    rm__jp_skip_blank(p);
    int c = rm__jp_peek(p);
    if (c != '[' && c != '.') {
      p->pos = save;
      break;
    }
    if (q->nseg == cap) {
      size_t ncap = cap ? cap * 2 : 4;
      struct rm__jp_segment *n = rm__jp_alloc(p->arena, ncap * sizeof *n);
      if (!n) return rm__jp_oom(p);
      if (q->nseg) memcpy(n, q->seg, q->nseg * sizeof *n);
      q->seg = n;
      cap = ncap;
    }
    struct rm__jp_segment *seg = &q->seg[q->nseg++];
    if ((rc = parse_segment(p, seg, &q->singular))) return rc;
  }
  return 0;
}

int rm__jp_parse(struct rm__jp_parser *p, struct rm__jp_query *q) {
  if (rm__jp_peek(p) != '$') {
    if (rm__jp_is_blank(rm__jp_peek(p)))
      return rm__jp_fail(p, p->pos, "blank space is not allowed before '$'");
    return rm__jp_fail(p, p->pos, "expected '$'");
  }
  int rc = rm__jp_parse_query(p, q);
  if (rc) return rc;
  if (p->pos < p->len) {
    size_t at = p->pos;
    rm__jp_skip_blank(p);
    if (p->pos == p->len) return rm__jp_fail(p, at, "blank space is not allowed after the query");
    return rm__jp_fail(p, p->pos, "expected '[' or '.'");
  }
  return 0;
}
