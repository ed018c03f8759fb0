/* restmon.conf: "key = value" lines, "#" comments, keys as dotted names.
 * Every setting can also come from the environment: RESTMON_ and the key
 * upper-cased with dots as underscores (database -> RESTMON_DATABASE,
 * executor.lease_ms -> RESTMON_EXECUTOR_LEASE_MS); the environment wins.
 * The known settings, their defaults and meaning are in restmon.conf at
 * the repository root; an unknown key is an error naming file and line. */
#ifndef RM_CONFIG_H
#define RM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rm_config rm_config;

/* Loads path; NULL path: $RESTMON_CONFIG, else ./restmon.conf when it
 * exists, else only defaults and the environment. 0 or RM_E* with file
 * and line in err. */
int rm_config_load(rm_config **out, const char *path, char *err, size_t errlen);
void rm_config_free(rm_config *c);

/* The value of key (environment, file, default); never NULL for a known
 * key. */
const char *rm_config_str(const rm_config *c, const char *key);
/* As a number; *out unchanged and RM_EINVAL (err names key and source)
 * when it is not a whole number >= 0. */
int rm_config_u64(const rm_config *c, const char *key, uint64_t *out, char *err, size_t errlen);
/* A number of days (fractions allowed, >= 0) as milliseconds; RM_EINVAL
 * with key, value and source in err otherwise. */
int rm_config_days_ms(const rm_config *c, const char *key, uint64_t *out, char *err, size_t errlen);
/* Where the value came from: "environment (RESTMON_X)", "FILE:LINE" or "default". */
const char *rm_config_source(const rm_config *c, const char *key);
/* The file loaded, or NULL. */
const char *rm_config_path(const rm_config *c);
/* The i-th known key (table order), or NULL past the last. */
const char *rm_config_key_at(size_t i);

#endif
