/* rm_tz: TZif parsing (RFC 8536), the POSIX TZ footer rule, offset
 * lookups, local-to-UTC resolution and the zone registry. */
#include "sched/tz.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"

#define ABBR_MAX 15
#define MAX_TRANS 100000
#define MAX_FILE (1 << 20)
#define T_LIMIT ((int64_t)1 << 50)
/* RFC 8536's bounds for a UTC offset; local_to_utc's search relies on them. */
#define OFF_MIN (-89999)
#define OFF_MAX 93599
#define HDR_LEN 44

/* A day of the POSIX rule: 'J' Jn (1-365, no Feb 29), 'n' n (0-365),
 * 'M' Mm.w.d; time is local seconds after midnight (-167h..167h). */
struct tz_date {
  char kind;
  uint8_t month, week, wday;
  uint16_t day;
  int32_t time;
};

struct tz_rule {
  int32_t std_off, dst_off; /* seconds east of UTC */
  bool has_dst;
  struct tz_date start, end; /* into DST (in standard time), out of it (in DST) */
  char std_abbr[ABBR_MAX + 1], dst_abbr[ABBR_MAX + 1];
};

struct tz_type {
  int32_t off;
  bool isdst;
  uint8_t abbr; /* index into chars */
};

struct rm_tz {
  char name[RM_TZ_NAME_MAX + 1];
  uint32_t ntrans, ntypes;
  int64_t *trans;  /* ascending */
  uint8_t *idx;    /* type of each transition */
  struct tz_type *types;
  char *chars;
  bool has_rule;   /* the footer governs from the last transition on */
  struct tz_rule rule;
};

int rm__sched_errf(char *err, size_t errlen, int code, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

int64_t rm_tz_floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && a < 0); }
unsigned rm_tz_weekday(int64_t days) { return (unsigned)(((days + 4) % 7 + 7) % 7); }
static int64_t clamp_t(int64_t t) { return t < -T_LIMIT ? -T_LIMIT : t > T_LIMIT ? T_LIMIT : t; }
static bool is_leap(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

/* Howard Hinnant's days_from_civil / civil_from_days. */
int64_t rm_tz_days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void rm_tz_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
  *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

unsigned rm_tz_month_days(int64_t y, unsigned m) {
  static const unsigned char len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : len[(m - 1) % 12];
}

/* ---- the POSIX TZ footer ---- */

/* An abbreviation: 3+ letters, or <...> of letters, digits, '+', '-'. */
static bool parse_abbr(const char **pp, char out[ABBR_MAX + 1]) {
  const char *p = *pp;
  size_t n = 0;
  bool quoted = *p == '<';
  p += quoted;
  while (quoted ? (isalnum((unsigned char)*p) || *p == '+' || *p == '-') : isalpha((unsigned char)*p)) {
    if (n == ABBR_MAX) return false;
    out[n++] = *p++;
  }
  if (quoted && *p++ != '>') return false;
  out[n] = '\0';
  *pp = p;
  return n >= 3;
}

static bool parse_num(const char **pp, int maxdigits, int *out) {
  const char *p = *pp;
  int v = 0, n = 0;
  while (isdigit((unsigned char)*p) && n < maxdigits) v = v * 10 + (*p++ - '0'), n++;
  if (n == 0) return false;
  *pp = p;
  *out = v;
  return true;
}

/* [+-]h[h[h]][:mm[:ss]] with hours up to max_h, as signed seconds. */
static bool parse_hms(const char **pp, int max_h, int32_t *out) {
  const char *p = *pp;
  int sign = *p == '-' ? -1 : 1, h, m = 0, s = 0;
  p += *p == '-' || *p == '+';
  if (!parse_num(&p, 3, &h) || h > max_h) return false;
  if (*p == ':' && (p++, !parse_num(&p, 2, &m) || m > 59)) return false;
  if (*p == ':' && (p++, !parse_num(&p, 2, &s) || s > 59)) return false;
  *pp = p;
  *out = sign * (h * 3600 + m * 60 + s);
  return true;
}

static bool parse_date(const char **pp, struct tz_date *d) {
  const char *p = *pp;
  int a, b, c;
  d->time = 7200;
  if (*p == 'M') {
    p++;
    if (!parse_num(&p, 2, &a) || *p++ != '.' || !parse_num(&p, 1, &b) || *p++ != '.' ||
        !parse_num(&p, 1, &c) || a < 1 || a > 12 || b < 1 || b > 5 || c > 6)
      return false;
    *d = (struct tz_date){'M', (uint8_t)a, (uint8_t)b, (uint8_t)c, 0, 7200};
  } else {
    bool julian1 = *p == 'J';
    p += julian1;
    if (!parse_num(&p, 3, &a) || a > 365 || (julian1 && a < 1)) return false;
    *d = (struct tz_date){julian1 ? 'J' : 'n', 0, 0, 0, (uint16_t)a, 7200};
  }
  if (*p == '/' && (p++, !parse_hms(&p, 167, &d->time))) return false;
  *pp = p;
  return true;
}

/* "std offset [dst [offset] ,start[/time] ,end[/time]]"; POSIX offsets
 * count west of UTC, so they are negated. */
static bool parse_rule(const char *s, struct tz_rule *r) {
  const char *p = s;
  int32_t off;
  memset(r, 0, sizeof *r);
  if (!parse_abbr(&p, r->std_abbr) || !parse_hms(&p, 24, &off)) return false;
  r->std_off = r->dst_off = -off;
  if (*p == '\0') return true;
  if (!parse_abbr(&p, r->dst_abbr)) return false;
  r->has_dst = true;
  r->dst_off = r->std_off + 3600;
  if (*p != ',' && *p != '\0') {
    if (!parse_hms(&p, 24, &off)) return false;
    r->dst_off = -off;
  }
  if (*p++ != ',' || !parse_date(&p, &r->start) || *p++ != ',' || !parse_date(&p, &r->end)) return false;
  return *p == '\0';
}

/* Local seconds at which date d happens in year y. */
static int64_t rule_date_local(const struct tz_date *d, int64_t y) {
  int64_t day = rm_tz_days_from_civil(y, 1, 1);
  if (d->kind == 'J') {
    day += d->day - 1 + (is_leap(y) && d->day >= 60);
  } else if (d->kind == 'n') {
    day += d->day;
  } else {
    int64_t first = rm_tz_days_from_civil(y, d->month, 1);
    int64_t md = (d->wday - (int64_t)rm_tz_weekday(first) + 7) % 7 + 1 + (d->week - 1) * 7;
    while (md > rm_tz_month_days(y, d->month)) md -= 7;
    day = first + md - 1;
  }
  return day * 86400 + d->time;
}

struct rule_ev {
  int64_t t;
  bool to_dst;
};

/* The rule's transitions of years y-2..y+2, sorted, with events at the
 * same instant collapsed to the last one and no-op events dropped (an
 * all-year DST rule ends one year where it starts the next). Returns the
 * count. */
static int rule_events(const struct tz_rule *r, int64_t y, struct rule_ev ev[10]) {
  struct rule_ev raw[10];
  int n = 0, k = 0;
  for (int64_t yy = y - 2; yy <= y + 2; yy++) {
    raw[n++] = (struct rule_ev){rule_date_local(&r->start, yy) - r->std_off, true};
    raw[n++] = (struct rule_ev){rule_date_local(&r->end, yy) - r->dst_off, false};
  }
  for (int i = 1; i < n; i++) /* stable insertion sort */
    for (int j = i; j > 0 && raw[j - 1].t > raw[j].t; j--) {
      struct rule_ev tmp = raw[j];
      raw[j] = raw[j - 1], raw[j - 1] = tmp;
    }
  for (int i = 0; i < n; i++) {
    if (i + 1 < n && raw[i + 1].t == raw[i].t) continue;
    if (k > 0 && ev[k - 1].to_dst == raw[i].to_dst) continue;
    ev[k++] = raw[i];
  }
  return k;
}

/* Whether the rule has DST at t, and the transitions around it. The first
 * and last events of the window are not trusted as boundaries: the years
 * just outside it could cancel them. */
static bool rule_find(const struct tz_rule *r, int64_t t, int64_t *start, int64_t *end) {
  *start = INT64_MIN, *end = INT64_MAX;
  if (!r->has_dst) return false;
  int64_t y;
  unsigned m, d;
  rm_tz_civil_from_days(rm_tz_floor_div(t, 86400), &y, &m, &d);
  struct rule_ev ev[10];
  int n = rule_events(r, y, ev), k = -1;
  while (k + 1 < n && ev[k + 1].t <= t) k++;
  if (k > 0) *start = ev[k].t;
  if (k + 2 < n) *end = ev[k + 1].t;
  return k >= 0 ? ev[k].to_dst : n > 0 && !ev[0].to_dst;
}

/* ---- lookups ---- */

/* The number of transitions at or before t. */
static uint32_t table_index(const rm_tz *z, int64_t t) {
  uint32_t lo = 0, hi = z->ntrans;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (z->trans[mid] <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

static rm_tz_info type_info(const rm_tz *z, uint32_t type) {
  const struct tz_type *ty = &z->types[type];
  return (rm_tz_info){ty->off, ty->isdst, z->chars + ty->abbr};
}

static rm_tz_info rule_info(const rm_tz *z, bool dst) {
  const struct tz_rule *r = &z->rule;
  return dst ? (rm_tz_info){r->dst_off, true, r->dst_abbr} : (rm_tz_info){r->std_off, false, r->std_abbr};
}

rm_tz_info rm_tz_offset(const rm_tz *z, int64_t utc_s) {
  int64_t t = clamp_t(utc_s), s, e;
  uint32_t i = table_index(z, t);
  if (z->has_rule && i == z->ntrans) return rule_info(z, rule_find(&z->rule, t, &s, &e));
  return type_info(z, i == 0 ? 0 : z->idx[i - 1]);
}

void rm_tz_span_at(const rm_tz *z, int64_t utc_s, rm_tz_span *out) {
  int64_t t = clamp_t(utc_s);
  uint32_t i = table_index(z, t);
  out->start = i > 0 ? z->trans[i - 1] : INT64_MIN;
  out->end = i < z->ntrans ? z->trans[i] : INT64_MAX;
  if (z->has_rule && i == z->ntrans) {
    int64_t start;
    rule_find(&z->rule, t, &start, &out->end);
    if (start > out->start) out->start = start;
  }
  out->info = rm_tz_offset(z, t);
  out->prev_offset = out->start == INT64_MIN ? out->info.utc_offset : rm_tz_offset(z, out->start - 1).utc_offset;
  out->next_offset = out->end == INT64_MAX ? out->info.utc_offset : rm_tz_offset(z, out->end).utc_offset;
}

/* Every instant whose local time is local_s lies within the largest
 * offset of it, so the spans over that window hold all solutions. */
void rm_tz_local_to_utc(const rm_tz *z, int64_t local_s, rm_tz_local *out) {
  local_s = clamp_t(local_s);
  int64_t lo = local_s - OFF_MAX - 1, hi = local_s + OFF_MAX + 1;
  int found = 0;
  bool gap = false;
  rm_tz_span sp;
  for (int64_t u = lo; u <= hi; u = sp.end) {
    rm_tz_span_at(z, u, &sp);
    int64_t cand = local_s - sp.info.utc_offset;
    if (cand >= sp.start && cand < sp.end && cand >= u) {
      if (found++ == 0) out->utc_s = cand;
      out->utc_s_late = cand;
    } else if (!found && sp.start != INT64_MIN && local_s >= sp.start + sp.prev_offset &&
               local_s < sp.start + sp.info.utc_offset) {
      gap = true;
      out->utc_s = sp.start;
      out->utc_s_late = local_s - sp.prev_offset;
    }
    /* Past the clamp bound, spans stop moving. */
    if (sp.end == INT64_MAX || sp.end <= u) break;
  }
  if (found || !gap) out->kind = found > 1 ? RM_TZ_LOCAL_FOLD : RM_TZ_LOCAL_UNIQUE;
  else out->kind = RM_TZ_LOCAL_GAP;
  if (!found && !gap) out->utc_s = out->utc_s_late = local_s - rm_tz_offset(z, local_s).utc_offset;
}

/* ---- TZif ---- */

struct tzif_hdr {
  char version;
  uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static int64_t be64(const uint8_t *p) { return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4)); }

static bool read_hdr(const uint8_t *p, size_t len, struct tzif_hdr *h) {
  if (len < HDR_LEN || memcmp(p, "TZif", 4) != 0) return false;
  h->version = (char)p[4];
  h->isutcnt = be32(p + 20), h->isstdcnt = be32(p + 24), h->leapcnt = be32(p + 28);
  h->timecnt = be32(p + 32), h->typecnt = be32(p + 36), h->charcnt = be32(p + 40);
  return true;
}

static size_t block_len(const struct tzif_hdr *h, size_t tsize) {
  return (size_t)h->timecnt * (tsize + 1) + (size_t)h->typecnt * 6 + h->charcnt +
         (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

static const char *check_hdr(const struct tzif_hdr *h) {
  if (h->leapcnt) return "it has leap-second records (\"right/\" zones are not supported)";
  if (h->typecnt == 0 || h->typecnt > 256) return "the number of local time types is not 1-256";
  if (h->charcnt == 0 || h->charcnt > 256) return "the abbreviation table is not 1-256 bytes";
  if (h->timecnt > MAX_TRANS) return "it has too many transitions";
  if ((h->isstdcnt && h->isstdcnt != h->typecnt) || (h->isutcnt && h->isutcnt != h->typecnt))
    return "its indicator counts do not match its type count";
  return NULL;
}

/* Reads one data block into z. NULL, or what is wrong. */
static const char *read_block(rm_tz *z, const struct tzif_hdr *h, const uint8_t *p, size_t tsize) {
  z->ntrans = h->timecnt, z->ntypes = h->typecnt;
  z->trans = malloc(sizeof *z->trans * (h->timecnt + 1));
  z->idx = malloc(h->timecnt + 1);
  z->types = malloc(sizeof *z->types * h->typecnt);
  z->chars = malloc(h->charcnt);
  if (!z->trans || !z->idx || !z->types || !z->chars) return "";
  for (uint32_t i = 0; i < h->timecnt; i++, p += tsize) {
    z->trans[i] = tsize == 8 ? be64(p) : (int32_t)be32(p);
    if (i > 0 && z->trans[i] <= z->trans[i - 1]) return "its transition times are not ascending";
  }
  for (uint32_t i = 0; i < h->timecnt; i++, p++)
    if ((z->idx[i] = *p) >= h->typecnt) return "a transition names a missing type";
  const uint8_t *tp = p;
  memcpy(z->chars, p + h->typecnt * 6, h->charcnt);
  if (z->chars[h->charcnt - 1] != '\0') return "its abbreviations are not NUL-terminated";
  for (uint32_t i = 0; i < h->typecnt; i++, tp += 6) {
    int32_t off = (int32_t)be32(tp);
    if (off < OFF_MIN || off > OFF_MAX || tp[4] > 1 || tp[5] >= h->charcnt) return "a local time type is out of range";
    z->types[i] = (struct tz_type){off, tp[4] == 1, tp[5]};
  }
  return NULL;
}

/* The footer "\n<TZ string>\n" after the version 2+ data. */
static const char *read_footer(rm_tz *z, const uint8_t *p, const uint8_t *end) {
  const uint8_t *nl = p < end && *p == '\n' ? memchr(p + 1, '\n', (size_t)(end - p - 1)) : NULL;
  char buf[128];
  if (!nl || nl - p - 1 >= (ptrdiff_t)sizeof buf) return "its footer is missing or too long";
  memcpy(buf, p + 1, (size_t)(nl - p - 1));
  buf[nl - p - 1] = '\0';
  if (buf[0] == '\0') return NULL;
  if (!parse_rule(buf, &z->rule)) return "its POSIX TZ footer is malformed";
  z->has_rule = true;
  return NULL;
}

static const char *parse_tzif(rm_tz *z, const uint8_t *d, size_t len) {
  struct tzif_hdr h;
  const char *why;
  if (!read_hdr(d, len, &h)) return "it is not a TZif file";
  size_t off = HDR_LEN, tsize = 4;
  if (h.version >= '2') {
    off += block_len(&h, 4);
    if (off > len || !read_hdr(d + off, len - off, &h)) return "it is truncated";
    off += HDR_LEN, tsize = 8;
  }
  if ((why = check_hdr(&h))) return why;
  if (len - off < block_len(&h, tsize)) return "it is truncated";
  if ((why = read_block(z, &h, d + off, tsize))) return why;
  off += block_len(&h, tsize);
  return tsize == 8 ? read_footer(z, d + off, d + len) : NULL;
}

void rm_tz_free(rm_tz *z) {
  if (!z) return;
  free(z->trans);
  free(z->idx);
  free(z->types);
  free(z->chars);
  free(z);
}

bool rm_tz_name_valid(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > RM_TZ_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    bool comp_start = i == 0 || name[i - 1] == '/';
    if (comp_start && (c == '/' || c == '.')) return false;
    if (!isalnum((unsigned char)c) && !strchr("_+-./", c)) return false;
  }
  return name[n - 1] != '/';
}

int rm_tz_parse(const char *name, const void *data, size_t len, rm_tz **out, char *err, size_t errlen) {
  if (!rm_tz_name_valid(name))
    return rm__sched_errf(err, errlen, RM_EINVAL, "invalid time zone name \"%.*s\"", 64, name ? name : "");
  rm_tz *z = calloc(1, sizeof *z);
  if (!z) return rm__sched_errf(err, errlen, RM_ENOMEM, "out of memory");
  strcpy(z->name, name);
  const char *why = parse_tzif(z, data, len);
  if (why) {
    rm_tz_free(z);
    if (!*why) return rm__sched_errf(err, errlen, RM_ENOMEM, "out of memory");
    return rm__sched_errf(err, errlen, RM_EPARSE, "time zone \"%s\": %s", name, why);
  }
  *out = z;
  return 0;
}

const char *rm_tz_name(const rm_tz *z) { return z->name; }

/* UTC needs no file: a zone with one type and no transitions. */
static int make_utc(rm_tz **out, char *err, size_t errlen) {
  rm_tz *z = calloc(1, sizeof *z);
  if (z) z->types = calloc(1, sizeof *z->types), z->chars = strdup("UTC");
  if (!z || !z->types || !z->chars) {
    rm_tz_free(z);
    return rm__sched_errf(err, errlen, RM_ENOMEM, "out of memory");
  }
  strcpy(z->name, "UTC");
  z->ntypes = 1;
  *out = z;
  return 0;
}

/* Reads a regular file of at most MAX_FILE bytes into *buf (caller frees). */
static int read_file(const char *path, uint8_t **buf, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT || errno == ENOTDIR ? RM_ENOTFOUND : RM_EIO;
  struct stat st;
  int rc = fstat(fd, &st) != 0 ? RM_EIO : !S_ISREG(st.st_mode) ? RM_ENOTFOUND : st.st_size > MAX_FILE ? RM_EPARSE : 0;
  *buf = rc ? NULL : malloc((size_t)st.st_size + 1);
  if (!rc && !*buf) rc = RM_ENOMEM;
  for (*len = 0; !rc && *len < (size_t)st.st_size;) {
    ssize_t got = read(fd, *buf + *len, (size_t)st.st_size - *len);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) rc = RM_EIO;
    else *len += (size_t)got;
  }
  close(fd);
  if (rc) free(*buf), *buf = NULL;
  return rc;
}

int rm_tz_load(const char *root, const char *name, rm_tz **out, char *err, size_t errlen) {
  if (!rm_tz_name_valid(name))
    return rm__sched_errf(err, errlen, RM_EINVAL, "invalid time zone name \"%.*s\"", 64, name ? name : "");
  if (strcmp(name, "UTC") == 0) return make_utc(out, err, errlen);
  char path[4096];
  uint8_t *buf;
  size_t len;
  if ((size_t)snprintf(path, sizeof path, "%s/%s", root ? root : RM_TZ_DEFAULT_ROOT, name) >= sizeof path)
    return rm__sched_errf(err, errlen, RM_EINVAL, "time zone \"%s\": path too long", name);
  int rc = read_file(path, &buf, &len);
  if (rc == RM_ENOTFOUND) return rm__sched_errf(err, errlen, rc, "unknown time zone \"%s\"", name);
  if (rc == RM_EPARSE) return rm__sched_errf(err, errlen, rc, "time zone \"%s\": file too large", name);
  if (rc) return rm__sched_errf(err, errlen, rc, "time zone \"%s\": cannot read %s", name, path);
  rc = rm_tz_parse(name, buf, len, out, err, errlen);
  free(buf);
  return rc;
}

/* ---- registry ---- */

struct rm_tz_registry {
  pthread_mutex_t mu;
  char *root;
  rm_tz **zones;
  size_t n, cap;
};

rm_tz_registry *rm_tz_registry_new(const char *root) {
  rm_tz_registry *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->root = strdup(root ? root : RM_TZ_DEFAULT_ROOT);
  if (!r->root || pthread_mutex_init(&r->mu, NULL) != 0) {
    free(r->root);
    free(r);
    return NULL;
  }
  return r;
}

void rm_tz_registry_free(rm_tz_registry *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n; i++) rm_tz_free(r->zones[i]);
  free(r->zones);
  free(r->root);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

/* Looks name up or loads it; the caller holds the mutex. */
static int registry_get_locked(rm_tz_registry *r, const char *name, const rm_tz **out, char *err, size_t errlen) {
  for (size_t i = 0; i < r->n; i++)
    if (strcmp(r->zones[i]->name, name) == 0) return *out = r->zones[i], 0;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 8;
    rm_tz **zones = realloc(r->zones, cap * sizeof *zones);
    if (!zones) return rm__sched_errf(err, errlen, RM_ENOMEM, "out of memory");
    r->zones = zones, r->cap = cap;
  }
  rm_tz *z;
  int rc = rm_tz_load(r->root, name, &z, err, errlen);
  if (rc) return rc;
  r->zones[r->n++] = z;
  *out = z;
  return 0;
}

int rm_tz_registry_get(rm_tz_registry *r, const char *name, const rm_tz **out, char *err, size_t errlen) {
  pthread_mutex_lock(&r->mu);
  int rc = registry_get_locked(r, name, out, err, errlen);
  pthread_mutex_unlock(&r->mu);
  return rc;
}
