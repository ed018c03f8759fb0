/* The notify module: the text of notifications for channel plugins, the
 * same code the built-in channel types use (notify/render.h).
 *
 *   notify.render(template, data [, escape]) -> string
 *   notify.render_json(template, data) -> value
 *   notify.escape(text, escape) -> string
 *   notify.cut(text, max_bytes) -> string
 *   notify.title(message [, escape]) -> string   "[severity] title"
 *   notify.body(message [, escape]) -> string    text, then "name: value" lines
 *   notify.fields(message [, escape]) -> {{name =, value =}, ...}
 *
 * escape is "none" (the default), "html", "markdownv2", "markdown" or
 * "slack"; it applies to the values, never to a template's own text. A
 * message's fields come in the order of message.field_order when it has
 * one (Lua tables have no order; the notifier gives channel plugins one),
 * else by name. cut makes any string valid UTF-8 first (bad bytes become
 * U+FFFD) and never cuts a character or an "&entity;" in two. data that
 * cannot be JSON (a function, a cycle) gives nil, "E_INVALID: ...".
 *
 * C memory lives in a box whose __gc frees it while Lua may raise (the
 * sandbox's memory cap), as in mod_json.c. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "lua/json_bridge.h"
#include "lua/modules.h"
#include "notify/render.h"
#include "util/text.h"

#define BOX_MT "restmon.notify.box"

typedef struct box {
  json_t *data;
  char *text, *text2;
} box;

static void box_clear_texts(box *b) {
  free(b->text);
  free(b->text2);
  b->text = b->text2 = NULL;
}

static int box_gc(lua_State *L) {
  box *b = lua_touserdata(L, 1);
  json_decref(b->data);
  b->data = NULL;
  box_clear_texts(b);
  return 0;
}

static box *box_new(lua_State *L) { return rm_lua_new_box(L, sizeof(box), BOX_MT, box_gc); }

static enum rm_notify_escape opt_escape(lua_State *L, int idx) {
  const char *name = luaL_optstring(L, idx, "none");
  int esc = rm_notify_escape_parse(name);
  if (esc < 0) luaL_argerror(L, idx, "escape must be none, html, markdownv2, markdown or slack");
  return (enum rm_notify_escape)esc;
}

static int invalid(lua_State *L, const char *what, const char *why) {
  lua_pushnil(L);
  lua_pushfstring(L, "E_INVALID: %s: %s", what, why);
  return 2;
}

/* Pushes b->text as the result (NULL: out of memory, raised). */
static int push_text(lua_State *L, box *b) {
  if (!b->text) return luaL_error(L, "notify: out of memory");
  lua_pushstring(L, b->text);
  return 1;
}

/* msg.fields reordered as msg.field_order names them (the rest after). */
static void order_fields(json_t *msg) {
  json_t *fields = json_object_get(msg, "fields"), *order = json_object_get(msg, "field_order"), *v;
  if (!json_is_object(fields) || !json_is_array(order)) return;
  json_t *sorted = json_object();
  size_t i;
  json_array_foreach(order, i, v) {
    const char *k = json_string_value(v);
    json_t *f = k ? json_object_get(fields, k) : NULL;
    if (f) json_object_set(sorted, k, f);
  }
  const char *k;
  json_object_foreach(fields, k, v) if (!json_object_get(sorted, k)) json_object_set(sorted, k, v);
  json_object_set_new(msg, "fields", sorted);
}

/* b->data = the JSON form of the value at idx; false after pushing nil
 * and the error. */
static bool take_json(lua_State *L, int idx, box *b, const char *what) {
  char err[200];
  b->data = rm_lua_to_json(L, idx, err, sizeof err);
  if (!b->data) invalid(L, what, err);
  return b->data != NULL;
}

static int l_render(lua_State *L) {
  const char *tmpl = luaL_checkstring(L, 1);
  luaL_checkany(L, 2);
  enum rm_notify_escape esc = opt_escape(L, 3);
  box *b = box_new(L);
  if (!take_json(L, 2, b, "data")) return 2;
  b->text = rm_notify_render_text(tmpl, b->data, esc);
  return push_text(L, b);
}

static int l_render_json(lua_State *L) {
  luaL_checkany(L, 1);
  luaL_checkany(L, 2);
  box *t = box_new(L), *d = box_new(L);
  if (!take_json(L, 1, t, "template") || !take_json(L, 2, d, "data")) return 2;
  json_t *out = rm_notify_render_json(t->data, d->data);
  json_decref(t->data);
  t->data = out;
  if (!out) return luaL_error(L, "notify: out of memory");
  rm_lua_push_json(L, out);
  return 1;
}

static int l_escape(lua_State *L) {
  const char *s = luaL_checkstring(L, 1);
  enum rm_notify_escape esc = opt_escape(L, 2);
  box *b = box_new(L);
  rm_buf out = RM_BUF_INIT;
  if (rm_notify_escape_text(&out, s, esc) == 0) b->text = rm_buf_steal(&out);
  rm_buf_free(&out);
  return push_text(L, b);
}

static int l_cut(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Number max = luaL_checknumber(L, 2);
  if (max < 0) max = 0;
  box *b = box_new(L);
  char *valid = rm_utf8_sanitize(s, n);
  b->text = valid ? rm_notify_cut(valid, max > 1e9 ? (size_t)1e9 : (size_t)max) : NULL;
  free(valid);
  return push_text(L, b);
}

/* The message at 1 as JSON with its fields in order, in a box. */
static box *message(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  box *b = box_new(L);
  if (!take_json(L, 1, b, "message")) return NULL;
  order_fields(b->data);
  return b;
}

static int l_title(lua_State *L) {
  enum rm_notify_escape esc = opt_escape(L, 2);
  box *b = message(L);
  if (!b) return 2;
  b->text = rm_notify_default_title(b->data, esc);
  return push_text(L, b);
}

static int l_body(lua_State *L) {
  enum rm_notify_escape esc = opt_escape(L, 2);
  box *b = message(L);
  if (!b) return 2;
  b->text = rm_notify_default_body(b->data, esc);
  return push_text(L, b);
}

/* Sets b->text and b->text2 to the escaped name and value text of one
 * field; false when out of memory. */
static bool field_texts(box *b, const char *k, const json_t *v, enum rm_notify_escape esc) {
  rm_buf name = RM_BUF_INIT, value = RM_BUF_INIT;
  box_clear_texts(b);
  if (rm_notify_escape_text(&name, k, esc) == 0 && rm_notify_value_text(&value, v, esc) == 0) {
    b->text = rm_buf_steal(&name);
    b->text2 = rm_buf_steal(&value);
  }
  rm_buf_free(&name);
  rm_buf_free(&value);
  return b->text && b->text2;
}

static int l_fields(lua_State *L) {
  enum rm_notify_escape esc = opt_escape(L, 2);
  box *b = message(L);
  if (!b) return 2;
  json_t *fields = json_object_get(b->data, "fields"), *v;
  lua_createtable(L, (int)json_object_size(fields), 0);
  int list = lua_gettop(L), i = 0;
  const char *k;
  json_object_foreach(fields, k, v) {
    if (!field_texts(b, k, v, esc)) return luaL_error(L, "notify: out of memory");
    lua_createtable(L, 0, 2);
    lua_pushstring(L, b->text);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, b->text2);
    lua_setfield(L, -2, "value");
    lua_rawseti(L, list, ++i);
  }
  box_clear_texts(b);
  return 1;
}

int rm_lua_open_notify(lua_State *L) {
  static const luaL_Reg fns[] = {{"render", l_render}, {"render_json", l_render_json}, {"escape", l_escape},
                                 {"cut", l_cut},       {"title", l_title},             {"body", l_body},
                                 {"fields", l_fields}, {NULL, NULL}};
  lua_createtable(L, 0, 7);
  for (const luaL_Reg *f = fns; f->name; f++) {
    lua_pushcfunction(L, f->func);
    lua_setfield(L, -2, f->name);
  }
  return 1;
}
