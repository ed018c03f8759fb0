/* UTC times as ISO-8601 text with milliseconds, "2026-11-23T19:25:02.356Z":
 * the form every stored and answered time takes. Formatted by arithmetic
 * (no gmtime_r, no printf): several are written for every run. */
#ifndef RM_UTIL_ISO_TIME_H
#define RM_UTIL_ISO_TIME_H

#include <stdint.h>

/* ms since the epoch (before it too, floored) into out (24 characters and
 * a NUL); years are written modulo 10000, as "%04u" of them would. */
void rm_iso_ms(int64_t ms, char out[32]);

/* The wall clock now, the same way. */
void rm_iso_now(char out[32]);

#endif
