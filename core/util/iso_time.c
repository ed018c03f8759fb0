#include "util/iso_time.h"

#include <time.h>

static void two(char *p, unsigned v) {
  p[0] = (char)('0' + v / 10);
  p[1] = (char)('0' + v % 10);
}

void rm_iso_ms(int64_t ms, char out[32]) {
  int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  unsigned milli = (unsigned)(ms - secs * 1000);
  int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
  unsigned in_day = (unsigned)(secs - days * 86400);
  /* the civil date of a day count (the proleptic Gregorian calendar, eras
   * of 400 years from 0000-03-01) */
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = (int64_t)yoe + era * 400;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  unsigned d = doy - (153 * mp + 2) / 5 + 1;
  unsigned m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) y++;
  unsigned year = (unsigned)(y % 10000 + 10000) % 10000;
  two(out, year / 100);
  two(out + 2, year % 100);
  out[4] = '-';
  two(out + 5, m);
  out[7] = '-';
  two(out + 8, d);
  out[10] = 'T';
  two(out + 11, in_day / 3600);
  out[13] = ':';
  two(out + 14, in_day / 60 % 60);
  out[16] = ':';
  two(out + 17, in_day % 60);
  out[19] = '.';
  out[20] = (char)('0' + milli / 100);
  two(out + 21, milli % 100);
  out[23] = 'Z';
  out[24] = '\0';
}

void rm_iso_now(char out[32]) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  rm_iso_ms((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, out);
}
