/* rm_lua_channel: notification channel types written as Lua plugins
 * (docs/plugins.md, "Channel plugins").
 *
 * A channel plugin is a folder plugins/<name>/ whose manifest.json says
 * "kind": "channel" and lists the channel's settings as "fields", and
 * whose plugin.lua returns a table with send(ctx). The fields follow the
 * task plugins' schema -- {"name", "type": text | number | boolean | date
 * | time | datetime | list | map | object | json | password, or a list of
 * those, "required", "default", "options", "label", "help"} -- plus, for
 * channels: "format": "url" on a text field (an http:// or https:// URL
 * without user:password@), and on a password field (whose setting is the
 * NAME of a vault secret) "value_pattern" (a PCRE2 the secret's value
 * must match, e.g. an https URL or a bot token) with "value_hint" (what
 * the error says it should hold: "an https:// URL"). Manifests are
 * checked when the plugins load (channel_manifest.c): the server refuses
 * to start on a bad one, naming the plugin and the field. A channel
 * plugin's name is [a-z0-9][a-z0-9_-]* of at most 63 bytes and not
 * "webhook" or "email" (built in).
 *
 * One attempt runs plugin.send(ctx) on a coroutine of a host VM, under
 * the host's CPU budget and memory cap and a wall-clock deadline, its
 * http.request calls putting in the values of spec->secrets' tokens.
 * What send returns or raises is turned into t->result by the runtime
 * library (lua/restmon/channel.lua):
 *
 *   {"kind": "delivered", "status"?}       it returned true or {delivered = true}
 *   {"kind": "response", "status", "answer", "retry_after"?}
 *                                          it returned http.request's response:
 *                                          the notifier judges the status
 *   {"kind": "failed", "code", "error"}    it returned nil, "E_CODE: message"
 *   {"kind": "retry", "error", "status"?, "retry_after_ms"?}
 *                                          it returned {retry = true, ...}
 *   {"kind": "refused", "error", "status"?} it returned {error = ...}: permanent
 *   {"kind": "raised", "error"}            a Lua error
 *
 * and t->exchanges holds its HTTP exchanges (requests with tokens, not
 * values). When a limit stops it, t->result is NULL and t->err / errmsg
 * say which ("channel 'ops' (plugin discord): CPU budget of ...").
 * The notifier (notify/notify_plugin.c) judges the attempt. */
#ifndef RM_LUA_CHANNEL_H
#define RM_LUA_CHANNEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lua/host.h"
#include "secret/secret.h"

#define RM_LUA_CHANNEL_NAME_MAX 63

/* What one attempt runs. Every pointer is borrowed until the callback. */
typedef struct rm_lua_channel_spec {
  const char *type;          /* the plugin */
  const char *channel;       /* the channel's name, for logs and errors */
  const json_t *ctx;         /* what send(ctx) gets: {message, channel, settings} */
  const rm_secrets *secrets; /* the values of the tokens in ctx; may be NULL */
  uint64_t timeout_ms;       /* wall clock of the attempt; 0 = 10000 */
} rm_lua_channel_spec;

/* One attempt, allocated by the caller. The callback gets &a->task. */
typedef struct rm_lua_channel_attempt {
  rm_lua_task task; /* first: the callback's t is the attempt; t->data is the caller's */
  /* Private. */
  rm_lua_task_spec spec;
  const json_t *ctx;
  char what[RM_LUA_CHANNEL_NAME_MAX + 240];
} rm_lua_channel_attempt;

/* Starts the attempt: 0, or a negative RM_E* (then cb never runs). Either
 * way release it with rm_lua_task_cleanup(&a->task, closed_cb) -- after
 * the callback when there is one -- and free a in closed_cb;
 * rm_lua_task_cancel(&a->task) stops it (the callback runs at once). */
int rm_lua_channel_start(rm_lua_host *h, rm_lua_channel_attempt *a, const rm_lua_channel_spec *spec,
                         rm_lua_task_cb cb);

/* The manifest of channel plugin `type` (borrowed), or NULL. */
const json_t *rm_lua_host_channel(rm_lua_host *h, const char *type);
/* Every channel plugin: a new array of their manifests (borrowed
 * references copied in), sorted by name. */
json_t *rm_lua_host_channels(rm_lua_host *h);

/* The field called name of a manifest (borrowed), or NULL. */
const json_t *rm_lua_channel_field(const json_t *manifest, const char *name);
/* Whether a secret's value (len bytes) is what a password field asks for
 * (its value_pattern; true when it has none). */
bool rm_lua_channel_value_ok(const json_t *field, const char *value, size_t len);

/* For plugins.c: checks a channel plugin's manifest; 0, or -1 with why
 * (where, then the field) in err. */
int rm__lua_check_channel_manifest(const json_t *m, const char *name, const char *where, char *err,
                                   size_t errlen);

#endif
