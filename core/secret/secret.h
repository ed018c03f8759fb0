/* rm_secrets: the secret values one run may use, the opaque tokens that
 * stand for them everywhere outside the C core, and scrubbing.
 *
 * Templates render {{secrets.NAME}} as a token "@@rmsecret-NONCE-NAME@@"
 * whose NONCE is random per process, so a server cannot forge one. Only
 * rm_secrets_inject turns tokens into values, when the HTTP request is
 * built. rm_secrets_scrub replaces tokens by "{{secrets.NAME}}" and every
 * value -- raw, JSON-escaped, URL-encoded, Base64 (standard and URL-safe,
 * at every byte alignment) -- by "***" in whatever is shown or stored. */
#ifndef RM_SECRET_H
#define RM_SECRET_H

#include <jansson.h>
#include <stddef.h>

typedef struct rm_secrets rm_secrets;

/* A new empty set (caller frees with rm_secrets_free), or NULL. */
rm_secrets *rm_secrets_new(void);
void rm_secrets_free(rm_secrets *s);

/* Adds or replaces a secret. Names are case-insensitive ([A-Za-z0-9_.-]);
 * values shorter than 3 bytes are refused (RM_EINVAL, err says why): they
 * could not be masked without masking ordinary text. */
int rm_secrets_set(rm_secrets *s, const char *name, const char *value, char *err, size_t errlen);

/* Removes a secret from what rm_secrets_inject, rm_secrets_token and
 * rm_secrets_names know (tokens already rendered stay unknown tokens),
 * while its value stays masked by the scrubbers: it may still be valid
 * somewhere and come back in a response. Up to 256 removed values are
 * kept for masking (the oldest goes first); they live until the set is
 * freed. 0, RM_ENOTFOUND (no such secret) or RM_ENOMEM. */
int rm_secrets_remove(rm_secrets *s, const char *name);

/* Loads NAME=value lines ("#" comments, blank lines, optional quotes,
 * optional "export "). 0, or a negative RM_E* with the file and line in err. */
int rm_secrets_load_file(rm_secrets *s, const char *path, char *err, size_t errlen);

size_t rm_secrets_count(const rm_secrets *s);
/* The names, as a new JSON array of strings (caller decrefs). */
json_t *rm_secrets_names(const rm_secrets *s);

/* The token for name (caller frees), or NULL when there is no such secret. */
char *rm_secrets_token(const rm_secrets *s, const char *name);

enum rm_secret_encoding {
  RM_SECRET_RAW = 0,  /* value as is */
  RM_SECRET_URL = 1,  /* percent-encoded (URLs, form bodies) */
};

/* Copy of s[0..len) with every token replaced by its value (encoded as
 * asked). Returns a malloc'ed NUL-terminated string (caller frees), its
 * length in *outlen, or NULL when out of memory. Unknown tokens stay. */
char *rm_secrets_inject(const rm_secrets *s, const char *str, size_t len,
                        enum rm_secret_encoding enc, size_t *outlen);

/* Whether str contains a token of this set. */
int rm_secrets_has_token(const rm_secrets *s, const char *str, size_t len);

/* Copy of str[0..len) fit to show: tokens become "{{secrets.NAME}}",
 * values and their encodings "***". Returns a malloc'ed string (caller
 * frees; length in *outlen if non-NULL), or NULL when out of memory. */
char *rm_secrets_scrub(const rm_secrets *s, const char *str, size_t len, size_t *outlen);

/* rm_log scrubber (util/log.h): ud is the rm_secrets. Returns a scrubbed
 * copy (caller frees), or NULL when msg holds nothing to hide. */
char *rm_secrets_log_scrub(void *ud, const char *msg);

/* Scrubs every string (and object key) inside v, in place. */
int rm_secrets_scrub_json(const rm_secrets *s, json_t *v);

#endif
