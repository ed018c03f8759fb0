/* rm_token: session tokens, API keys and the HTTP headers that carry them.
 *
 * A token is 32 random bytes as URL-safe base64 without padding (43
 * characters). It is shown once; the store keeps only its SHA-256 (hex),
 * so a copy of the database logs nobody in. A slow hash is not needed:
 * 256 random bits cannot be guessed, unlike passwords.
 *
 * An API key is "rmk_<id>_<secret>": id is 8 characters of [a-z2-7]
 * (40 bits) stored in clear to find the key, secret is a token whose hash
 * is compared in constant time. The fixed id length lets the secret
 * contain '_'. The "rmk_" prefix lets secret scanners recognise leaked
 * keys and lets a Bearer credential be told apart from a session token. */
#ifndef RM_AUTH_TOKEN_H
#define RM_AUTH_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define RM_TOKEN_BYTES 32
#define RM_TOKEN_LEN 43      /* characters, without the NUL */
#define RM_TOKEN_HASH_LEN 64 /* hex digits, without the NUL */

#define RM_APIKEY_PREFIX "rmk_"
#define RM_APIKEY_ID_LEN 8
#define RM_APIKEY_LEN (4 + RM_APIKEY_ID_LEN + 1 + RM_TOKEN_LEN) /* 56 */

#define RM_SESSION_COOKIE "restmon_session"

/* A new token into out. 0, or RM_EIO when the system has no randomness. */
int rm_token_new(char out[RM_TOKEN_LEN + 1]);

/* Whether s[0..n) looks like a token: 43 characters of [A-Za-z0-9_-]. */
bool rm_token_well_formed(const char *s, size_t n);

/* The SHA-256 of token s[0..n) as lowercase hex: what the store keeps and
 * what a session is looked up by. 0, or RM_ENOMEM. */
int rm_token_hash(const char *s, size_t n, char out[RM_TOKEN_HASH_LEN + 1]);

/* Constant-time comparison of two hashes from rm_token_hash; false when
 * either is NULL or not RM_TOKEN_HASH_LEN long. */
bool rm_token_hash_equal(const char *a, const char *b);

typedef struct rm_apikey {
  char id[RM_APIKEY_ID_LEN + 1];
  char secret[RM_TOKEN_LEN + 1];
} rm_apikey;

/* A new API key: the text to show once into key, and into id and hash
 * what to store. 0, RM_EIO (no randomness) or RM_ENOMEM. */
int rm_apikey_new(char key[RM_APIKEY_LEN + 1], char id[RM_APIKEY_ID_LEN + 1],
                  char hash[RM_TOKEN_HASH_LEN + 1]);

/* Splits s[0..n) ("rmk_<id>_<secret>", nothing around it) into out.
 * 0, or RM_EPARSE for anything else. */
int rm_apikey_parse(const char *s, size_t n, rm_apikey *out);

/* Whether k's secret hashes to stored_hash (from rm_apikey_new), compared
 * in constant time. 0, RM_EDENIED, or RM_ENOMEM. */
int rm_apikey_verify(const rm_apikey *k, const char *stored_hash);

/* The credential of an Authorization header value "Bearer <token68>":
 * the scheme in any case, one or more spaces, surrounding spaces and
 * tabs ignored. *cred points into value (borrowed, not NUL-terminated),
 * *len is its length. 0; RM_ENOTFOUND when value is NULL, empty or
 * another scheme (a 401 without an error code); RM_EPARSE when it is
 * Bearer but malformed (a 401 with error="invalid_request"). */
int rm_auth_bearer(const char *value, const char **cred, size_t *len);

/* The value of cookie name in a Cookie header value ("a=1; b=2"), with
 * the quotes of a quoted value removed. *val points into header
 * (borrowed), *len is its length. 0; RM_ENOTFOUND; RM_EPARSE when the
 * name appears more than once: a sibling subdomain can plant a second
 * cookie of the same name, and picking one would let it fix a session.
 * HTTP/2 clients may split cookies over several headers: join them with
 * "; " first. */
int rm_auth_cookie(const char *header, const char *name, const char **val, size_t *len);

/* rm_auth_cookie for RM_SESSION_COOKIE, which must also be a well-formed
 * token (RM_EPARSE otherwise). */
int rm_auth_session_cookie(const char *header, const char **tok, size_t *len);

/* The Set-Cookie header value that sets the session cookie to token, for
 * max_age_s seconds (or, when max_age_s <= 0, until the browser closes),
 * or that clears it when token is NULL. Path=/, HttpOnly, SameSite=Lax
 * (Strict would log users out when they follow a link from a
 * notification), and Secure unless secure is false (plain-HTTP
 * development). Unsafe methods authenticated by the cookie still need a
 * CSRF check (Origin, or a custom header) in the API layer. 0, RM_EINVAL
 * when token is not well-formed, or RM_ETOOBIG when n is too small (128
 * bytes is enough). */
int rm_auth_session_set_cookie(char *out, size_t n, const char *token, long max_age_s, bool secure);

#endif
