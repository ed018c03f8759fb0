#include "util/text.h"

#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <stdint.h>
#include <time.h>

#include "util/err.h"

size_t rm_utf8_seq_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) len = 2;
  else if (c >= 0xE0 && c <= 0xEF) len = 3;
  else if (c >= 0xF0 && c <= 0xF4) len = 4;
  else return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
  if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
  if (c == 0xF0 && s[1] < 0x90) return 0;  /* overlong */
  if (c == 0xF4 && s[1] >= 0x90) return 0; /* > U+10FFFF */
  return len;
}

size_t rm_utf8_valid_prefix(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    size_t len = rm_utf8_seq_len(p + i, n - i);
    if (!len) break;
    i += len;
  }
  return i;
}

char *rm_utf8_sanitize(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  char *out = malloc(3 * n + 1); /* each bad byte grows to 3 */
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    size_t len = rm_utf8_seq_len(p + i, n - i);
    if (len && !(len == 1 && p[i] == 0)) {
      memcpy(out + o, p + i, len);
      o += len;
      i += len;
    } else {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
    }
  }
  out[o] = '\0';
  return out;
}

char *rm_base64_encode(const void *data, size_t n, bool url_safe) {
  static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char *alphabet = url_safe ? url : std;
  const unsigned char *d = data;
  char *out = malloc(4 * (n / 3 + 1) + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)d[i] << 16;
    if (i + 1 < n) v |= (unsigned)d[i + 1] << 8;
    if (i + 2 < n) v |= d[i + 2];
    out[o++] = alphabet[(v >> 18) & 63];
    out[o++] = alphabet[(v >> 12) & 63];
    if (i + 1 < n) out[o++] = alphabet[(v >> 6) & 63];
    else if (!url_safe) out[o++] = '=';
    if (i + 2 < n) out[o++] = alphabet[v & 63];
    else if (!url_safe) out[o++] = '=';
  }
  out[o] = '\0';
  return out;
}

void rm_uuid_format(const unsigned char u[16], char out[37]) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[u[i] >> 4];
    out[o++] = hex[u[i] & 15];
  }
  out[o] = '\0';
}

int rm_random_bytes(void *buf, size_t n) {
  unsigned char *p = buf;
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(p + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return RM_EIO;
    got += (size_t)r;
  }
  return 0;
}

uint64_t rm_fnv1a(const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

int rm_uuid_v7(char out[37]) {
  unsigned char u[16];
  struct timespec ts;
  if (rm_random_bytes(u + 6, 10) || clock_gettime(CLOCK_REALTIME, &ts)) return RM_EIO;
  uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
  for (int i = 5; i >= 0; i--, ms >>= 8) u[i] = (unsigned char)(ms & 0xff);
  u[6] = (unsigned char)((u[6] & 0x0f) | 0x70);
  u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
  rm_uuid_format(u, out);
  return 0;
}

int rm_uuid_v4(char out[37]) {
  unsigned char u[16];
  if (rm_random_bytes(u, sizeof u)) return RM_EIO;
  u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
  u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
  rm_uuid_format(u, out);
  return 0;
}
