/* I-Regexp (RFC 9485) for match() and search(): a validating translation
 * to PCRE2 syntax, compilation, and matching under the limits of the
 * query's match context.
 *
 * The translation follows the RFC 9485 section 5 mapping: every literal
 * character is written so PCRE2 cannot read it as syntax, "." becomes
 * [^\n\r], groups become non-capturing, and an unescaped "^" or "$"
 * outside a class is an anchor, as the section 5.4 engine mapping (and
 * the compliance test suite) treat them. Anything outside the RFC 9485
 * grammar (backreferences, lookarounds, \d, lazy quantifiers, ...) makes
 * the pattern invalid, and match()/search() then yield false. */
#include <stdio.h>
#include <string.h>

#include "jsonpath/internal.h"
#include "util/err.h"

struct xlate {
  const char *s;
  size_t len, pos;
  rm_buf *out;
  int oom;
};

static int peek(const struct xlate *x) {
  return x->pos < x->len ? (unsigned char)x->s[x->pos] : -1;
}

static void emit(struct xlate *x, const char *s) {
  if (rm_buf_puts(x->out, s)) x->oom = 1;
}

/* A character that stands for itself, in or outside a class. */
static void emit_literal(struct xlate *x, uint32_t cp) {
  char tmp[16];
  if ((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
    snprintf(tmp, sizeof tmp, "%c", (char)cp);
  else if (cp > 0x20 && cp < 0x7F) /* backslash + punctuation is always literal */
    snprintf(tmp, sizeof tmp, "\\%c", (char)cp);
  else
    snprintf(tmp, sizeof tmp, "\\x{%X}", (unsigned)cp);
  emit(x, tmp);
}

/* Reads one character; 0 at the end or on malformed UTF-8. */
static int next_char(struct xlate *x, uint32_t *cp) {
  size_t k = rm__jp_utf8_decode(x->s + x->pos, x->len - x->pos, cp);
  x->pos += k;
  return k > 0;
}

/* The general categories RFC 9485 charProp allows. */
static int valid_category(const char *s, size_t n) {
  static const char *const cats[] = {
      "L",  "Ll", "Lm", "Lo", "Lt", "Lu", "M",  "Mc", "Me", "Mn", "N",  "Nd",
      "Nl", "No", "P",  "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "Z",  "Zl",
      "Zp", "Zs", "S",  "Sc", "Sk", "Sm", "So", "C",  "Cc", "Cf", "Cn", "Co",
  };
  for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++)
    if (strlen(cats[i]) == n && !memcmp(cats[i], s, n)) return 1;
  return 0;
}

/* After a backslash: a SingleCharEsc (*cp set, returns 1), or \p{..} /
 * \P{..} (emitted, returns 2). 0 if neither. */
static int escape(struct xlate *x, uint32_t *cp) {
  int c = peek(x);
  if (c < 0) return 0;
  x->pos++;
  if (c == 'p' || c == 'P') {
    if (peek(x) != '{') return 0;
    size_t name = ++x->pos;
    while (peek(x) >= 'A' && peek(x) <= 'z') x->pos++;
    if (peek(x) != '}' || !valid_category(x->s + name, x->pos - name)) return 0;
    x->pos++;
    char tmp[16];
    snprintf(tmp, sizeof tmp, "\\%c{%.*s}", c, (int)(x->pos - 1 - name), x->s + name);
    emit(x, tmp);
    return 2;
  }
  if (c == 'n' || c == 'r' || c == 't') {
    *cp = c == 'n' ? '\n' : c == 'r' ? '\r' : '\t';
    return 1;
  }
  if (c && strchr("()*+-.?[\\]^{|}", c)) {
    *cp = (uint32_t)c;
    return 1;
  }
  return 0;
}

/* CCchar: any character but "-", "[", "\", "]", or a SingleCharEsc. */
static int class_char(struct xlate *x, uint32_t *cp) {
  int c = peek(x);
  if (c < 0 || c == '-' || c == '[' || c == ']') return 0;
  if (c == '\\') {
    x->pos++;
    return escape(x, cp) == 1;
  }
  return next_char(x, cp);
}

/* charClassExpr after "[":  ["^"] ("-" / CCE1) *CCE1 ["-"] "]" */
static int char_class(struct xlate *x) {
  emit(x, "[");
  if (peek(x) == '^') {
    x->pos++;
    emit(x, "^");
  }
  int items = 0;
  if (peek(x) == '-') {
    x->pos++;
    emit(x, "\\-");
    items++;
  }
  for (;;) {
    int c = peek(x);
    if (c == ']') break;
    if (c == '-') { /* only as the last item */
      x->pos++;
      if (peek(x) != ']') return 0;
      emit(x, "\\-");
      items++;
      break;
    }
    if (c == '\\' && x->pos + 1 < x->len && (x->s[x->pos + 1] == 'p' || x->s[x->pos + 1] == 'P')) {
      uint32_t unused;
      x->pos++;
      if (escape(x, &unused) != 2) return 0;
      items++;
      continue;
    }
    uint32_t lo, hi;
    if (!class_char(x, &lo)) return 0;
    emit_literal(x, lo);
    items++;
    if (peek(x) == '-' && x->pos + 1 < x->len && x->s[x->pos + 1] != ']') {
      x->pos++;
      if (!class_char(x, &hi) || hi < lo) return 0;
      emit(x, "-");
      emit_literal(x, hi);
    }
  }
  x->pos++;
  emit(x, "]");
  return items > 0;
}

/* range-quantifier after "{":  QuantExact [ "," [ QuantExact ] ] "}" */
static int range_quantifier(struct xlate *x) {
  size_t start = x->pos;
  unsigned long lo = 0, hi = 0;
  int digits = 0, has_hi = 0;
  while (peek(x) >= '0' && peek(x) <= '9') {
    if (lo < 100000) lo = lo * 10 + (unsigned long)(peek(x) - '0');
    x->pos++;
    digits++;
  }
  if (!digits) return 0;
  if (peek(x) == ',') {
    x->pos++;
    while (peek(x) >= '0' && peek(x) <= '9') {
      if (hi < 100000) hi = hi * 10 + (unsigned long)(peek(x) - '0');
      x->pos++;
      has_hi = 1;
    }
  }
  if (peek(x) != '}' || (has_hi && hi < lo)) return 0;
  x->pos++;
  char tmp[64];
  snprintf(tmp, sizeof tmp, "{%.*s}", (int)(x->pos - 1 - start), x->s + start);
  emit(x, tmp);
  return 1;
}

/* i-regexp = branch *("|" branch); branch = *piece; piece = atom
 * [quantifier]. Groups are tracked with a counter, so nesting costs no
 * stack. */
static int translate(struct xlate *x) {
  int depth = 0, can_repeat = 0;
  while (x->pos < x->len) {
    int c = peek(x);
    uint32_t cp;
    switch (c) {
      case '(':
        x->pos++;
        emit(x, "(?:");
        depth++;
        can_repeat = 0;
        continue;
      case ')':
        if (!depth) return 0;
        x->pos++;
        emit(x, ")");
        depth--;
        can_repeat = 1;
        continue;
      case '|':
        x->pos++;
        emit(x, "|");
        can_repeat = 0;
        continue;
      case '*':
      case '+':
      case '?':
        if (!can_repeat) return 0;
        x->pos++;
        emit(x, c == '*' ? "*" : c == '+' ? "+" : "?");
        can_repeat = 0;
        continue;
      case '{':
        x->pos++;
        if (!can_repeat || !range_quantifier(x)) return 0;
        can_repeat = 0;
        continue;
      case '.':
        x->pos++;
        emit(x, "[^\\n\\r]");
        can_repeat = 1;
        continue;
      case '[':
        x->pos++;
        if (!char_class(x)) return 0;
        can_repeat = 1;
        continue;
      case '^':
      case '$':
        x->pos++;
        emit(x, c == '^' ? "^" : "$");
        can_repeat = 0;
        continue;
      case ']':
      case '}':
        return 0;
      case '\\': {
        x->pos++;
        int k = escape(x, &cp);
        if (!k) return 0;
        if (k == 1) emit_literal(x, cp);
        can_repeat = 1;
        continue;
      }
      default:
        if (!next_char(x, &cp)) return 0;
        emit_literal(x, cp);
        can_repeat = 1;
        continue;
    }
  }
  return depth == 0;
}

int rm__jp_iregexp_translate(const char *re, size_t len, rm_buf *out) {
  struct xlate x = {re, len, 0, out, 0};
  int ok = translate(&x);
  if (x.oom) return RM_ENOMEM;
  return ok ? 0 : RM_EPARSE;
}

int rm__jp_regex_compile(const char *re, size_t len, int full, pcre2_code **out) {
  rm_buf b = RM_BUF_INIT;
  int rc = rm_buf_puts(&b, full ? "\\A(?:" : "(?:");
  if (!rc) rc = rm__jp_iregexp_translate(re, len, &b);
  if (!rc) rc = rm_buf_puts(&b, full ? ")\\z" : ")");
  if (rc) {
    rm_buf_free(&b);
    return rc;
  }
  int errcode;
  PCRE2_SIZE erroff;
  *out = pcre2_compile((PCRE2_SPTR)b.data, b.len, PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &errcode,
                       &erroff, NULL);
  rm_buf_free(&b);
  /* Valid I-Regexps PCRE2 still refuses (a repeat count above 65535, say)
   * count as invalid too. */
  return *out ? 0 : RM_EPARSE;
}

int rm__jp_regex_match(const pcre2_code *code, pcre2_match_context *mctx, const char *s,
                       size_t len) {
  pcre2_match_data *md = pcre2_match_data_create(1, NULL);
  if (!md) return RM_ENOMEM;
  int rc = pcre2_match(code, (PCRE2_SPTR)s, len, 0, 0, md, mctx);
  pcre2_match_data_free(md);
  /* Hitting a limit, like invalid UTF-8, is "no match", never a hang. */
  if (rc == PCRE2_ERROR_NOMEMORY) return RM_ENOMEM;
  return rc >= 0;
}
