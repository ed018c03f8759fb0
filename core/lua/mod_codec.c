/* The codec module: base64 (standard and URL-safe), percent-encoding,
 * hex, SHA-256 and HMAC-SHA-256.
 *
 * Output is built in a luaL_Buffer, so no C memory is held while Lua may
 * raise. Decoders are strict: a byte that does not belong to the
 * alphabet gives nil, "E_INVALID: ... at offset N" rather than being
 * skipped, since a silently altered secret or signature is worse than an
 * error. */
#include <lauxlib.h>
#include <openssl/evp.h>
#include <string.h>

#include "lua/modules.h"

static const char B64_STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64_URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char HEX[] = "0123456789abcdef";

static int fail_at(lua_State *L, const char *what, size_t off) {
  lua_pushnil(L);
  lua_pushfstring(L, "E_INVALID: %s at offset %d", what, (int)off);
  return 2;
}

/* Standard base64 is padded with '='; the URL-safe form is not (RFC 4648
 * section 5, as used in JWTs). */
static int b64_encode(lua_State *L, const char *alphabet, int pad) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
    char out[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63],
                   alphabet[v & 63]};
    luaL_addlstring(&b, out, 4);
  }
  if (n - i == 1) {
    unsigned v = (unsigned)s[i] << 16;
    char out[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], '=', '='};
    luaL_addlstring(&b, out, pad ? 4 : 2);
  } else if (n - i == 2) {
    unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
    char out[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63], '='};
    luaL_addlstring(&b, out, pad ? 4 : 3);
  }
  luaL_pushresult(&b);
  return 1;
}

static int b64_value(const char *alphabet, unsigned char c) {
  const char *p = c ? strchr(alphabet, c) : NULL;
  return p ? (int)(p - alphabet) : -1;
}

/* Accepts input with or without padding; padding, when present, must be
 * complete and only at the end. */
static int b64_decode(lua_State *L, const char *alphabet) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  size_t end = n;
  while (end > 0 && n - end < 2 && s[end - 1] == '=') end--;
  if (end != n && n % 4 != 0) return fail_at(L, "incomplete base64 padding", end);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  unsigned acc = 0;
  int bits = 0;
  for (size_t i = 0; i < end; i++) {
    int v = b64_value(alphabet, s[i]);
    if (v < 0) return fail_at(L, "invalid base64 character", i);
    acc = (acc << 6 | (unsigned)v) & 0xFFFFFF;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      luaL_addchar(&b, (char)((acc >> bits) & 0xFF));
    }
  }
  if (end % 4 == 1) return fail_at(L, "truncated base64", end);
  luaL_pushresult(&b);
  return 1;
}

static int l_base64_encode(lua_State *L) { return b64_encode(L, B64_STD, 1); }
static int l_base64_decode(lua_State *L) { return b64_decode(L, B64_STD); }
static int l_base64url_encode(lua_State *L) { return b64_encode(L, B64_URL, 0); }
static int l_base64url_decode(lua_State *L) { return b64_decode(L, B64_URL); }

static int is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

static int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* codec.url_encode(s): every byte but RFC 3986 unreserved ones as %XX. */
static int l_url_encode(lua_State *L) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i++) {
    if (is_unreserved(s[i])) {
      luaL_addchar(&b, (char)s[i]);
    } else {
      char esc[3] = {'%', "0123456789ABCDEF"[s[i] >> 4], "0123456789ABCDEF"[s[i] & 15]};
      luaL_addlstring(&b, esc, 3);
    }
  }
  luaL_pushresult(&b);
  return 1;
}

/* codec.url_decode(s): %XX to bytes; '+' stays '+' (that is form
 * encoding, not RFC 3986). */
static int l_url_decode(lua_State *L) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '%') {
      luaL_addchar(&b, (char)s[i]);
      continue;
    }
    int hi = i + 1 < n ? hex_value(s[i + 1]) : -1;
    int lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) return fail_at(L, "bad percent escape", i);
    luaL_addchar(&b, (char)(hi << 4 | lo));
    i += 2;
  }
  luaL_pushresult(&b);
  return 1;
}

static void push_hex(lua_State *L, const unsigned char *p, size_t n) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i++) {
    char pair[2] = {HEX[p[i] >> 4], HEX[p[i] & 15]};
    luaL_addlstring(&b, pair, 2);
  }
  luaL_pushresult(&b);
}

static int l_hex_encode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  push_hex(L, (const unsigned char *)s, n);
  return 1;
}

static int l_hex_decode(lua_State *L) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  if (n % 2) return fail_at(L, "odd-length hex", n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i += 2) {
    int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
    if (hi < 0 || lo < 0) return fail_at(L, "invalid hex digit", hi < 0 ? i : i + 1);
    luaL_addchar(&b, (char)(hi << 4 | lo));
  }
  luaL_pushresult(&b);
  return 1;
}

/* Computes SHA-256 of argument 1, or HMAC-SHA-256 keyed by argument 1
 * over argument 2, into md (32 bytes). Raises on a library failure:
 * that is not bad input. */
static void digest(lua_State *L, int hmac, unsigned char md[32]) {
  size_t n, klen = 0;
  const char *key = NULL;
  if (hmac) key = luaL_checklstring(L, 1, &klen);
  const char *s = luaL_checklstring(L, hmac ? 2 : 1, &n);
  int ok;
  if (hmac) {
    size_t outlen = 0;
    ok = EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen, (const unsigned char *)s, n,
                   md, 32, &outlen) != NULL &&
         outlen == 32;
  } else {
    unsigned int outlen = 0;
    ok = EVP_Digest(s, n, md, &outlen, EVP_sha256(), NULL) == 1 && outlen == 32;
  }
  if (!ok) luaL_error(L, "OpenSSL failed to compute %s", hmac ? "HMAC-SHA-256" : "SHA-256");
}

static int l_sha256(lua_State *L) {
  unsigned char md[32];
  digest(L, 0, md);
  lua_pushlstring(L, (const char *)md, sizeof md);
  return 1;
}

static int l_sha256_hex(lua_State *L) {
  unsigned char md[32];
  digest(L, 0, md);
  push_hex(L, md, sizeof md);
  return 1;
}

static int l_hmac_sha256(lua_State *L) {
  unsigned char md[32];
  digest(L, 1, md);
  lua_pushlstring(L, (const char *)md, sizeof md);
  return 1;
}

static int l_hmac_sha256_hex(lua_State *L) {
  unsigned char md[32];
  digest(L, 1, md);
  push_hex(L, md, sizeof md);
  return 1;
}

static const luaL_Reg codec_funcs[] = {
    {"base64_encode", l_base64_encode},
    {"base64_decode", l_base64_decode},
    {"base64url_encode", l_base64url_encode},
    {"base64url_decode", l_base64url_decode},
    {"url_encode", l_url_encode},
    {"url_decode", l_url_decode},
    {"hex_encode", l_hex_encode},
    {"hex_decode", l_hex_decode},
    {"sha256", l_sha256},
    {"sha256_hex", l_sha256_hex},
    {"hmac_sha256", l_hmac_sha256},
    {"hmac_sha256_hex", l_hmac_sha256_hex},
    {NULL, NULL},
};

int rm_lua_open_codec(lua_State *L) {
  luaL_newlib(L, codec_funcs);
  return 1;
}
