/* The xml module over libxml2: xpath, escape, encode.
 *
 * Untrusted documents: the parser never touches the network
 * (XML_PARSE_NONET), loads no external DTD, substitutes no entities, and
 * refuses any entity declaration outright, which closes XXE and the
 * billion-laughs family at the first <!ENTITY. Errors are captured by a
 * structured handler that writes into the per-call state, so nothing
 * goes to stderr and no global handler is touched.
 *
 * All libxml2 objects of a call live in a userdata whose __gc frees them,
 * so a Lua error raised mid-call (memory cap) strands nothing. */
#include <lauxlib.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/json_bridge.h"
#include "lua/modules.h"

#define CALL_MT "restmon.xml.call"
#define MAX_TEXT ((size_t)64 << 20)
#define XPATH_OP_LIMIT 10000000UL
#define PARSE_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOCDATA)

typedef struct xml_call {
  xmlParserCtxtPtr ctxt;
  xmlDocPtr doc;
  xmlXPathContextPtr xp;
  xmlXPathObjectPtr obj;
  xmlChar *str;       /* a node's string value being pushed */
  json_t *value;      /* xml.encode input */
  int line;           /* of the first error */
  char msg[256];      /* first error, "" when none */
} xml_call;

static void call_release(xml_call *c) {
  xmlFree(c->str);
  xmlXPathFreeObject(c->obj);
  xmlXPathFreeContext(c->xp);
  xmlFreeDoc(c->doc);
  xmlFreeParserCtxt(c->ctxt);
  json_decref(c->value);
  c->str = NULL;
  c->obj = NULL;
  c->xp = NULL;
  c->doc = NULL;
  c->ctxt = NULL;
  c->value = NULL;
}

static int call_gc(lua_State *L) {
  call_release(luaL_checkudata(L, 1, CALL_MT));
  return 0;
}

static xml_call *call_new(lua_State *L) {
  xml_call *c = lua_newuserdata(L, sizeof *c);
  memset(c, 0, sizeof *c);
  if (luaL_newmetatable(L, CALL_MT)) {
    lua_pushcfunction(L, call_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, CALL_MT);
    lua_setfield(L, -2, "__metatable");
  }
  lua_setmetatable(L, -2);
  return c;
}

static void record(xml_call *c, int line, const char *msg) {
  if (c->msg[0]) return;
  c->line = line;
  snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown error");
  size_t n = strlen(c->msg);
  while (n > 0 && (c->msg[n - 1] == '\n' || c->msg[n - 1] == ' ')) c->msg[--n] = '\0';
}

/* Parser errors arrive with the parser context as data (its userData);
 * the call state hangs off ctxt->_private. */
static void on_parse_error(void *data, xmlErrorPtr e) {
  xmlParserCtxtPtr ctxt = data;
  if (e->level >= XML_ERR_ERROR) record(ctxt->_private, e->line, e->message);
}

/* libxml2 hands XPath errors to a context's handler with only a code
 * (the text lives in a private table), so the text is ours. Indexed by
 * xmlXPathError. */
static const char *const xpath_errors[] = {
    "ok",
    "number encoding",
    "unfinished literal",
    "start of literal",
    "expected $ for variable reference",
    "undefined variable",
    "invalid predicate",
    "invalid expression",
    "missing closing parenthesis or bracket",
    "unknown function",
    "invalid number of operands",
    "invalid type",
    "invalid number of arguments",
    "invalid context size",
    "invalid context position",
    "out of memory",
    "syntax error",
    "resource error",
    "sub-resource error",
    "undefined namespace prefix",
    "encoding error",
    "invalid character",
    "invalid or incomplete context",
    "stack usage error",
    "variables are not allowed",
    "expression does too much work",
    "expression nests too deeply",
};

static void on_xpath_error(void *data, xmlErrorPtr e) {
  int code = e->code - XML_XPATH_EXPRESSION_OK;
  int n = (int)(sizeof xpath_errors / sizeof xpath_errors[0]);
  char msg[128];
  snprintf(msg, sizeof msg, "at offset %d: %s", e->int1,
           code >= 0 && code < n ? xpath_errors[code] : "error");
  record(data, 0, msg);
}

/* libxml2 also prints some XPath diagnostics through its generic error
 * function (thread-local). It is silenced only while libxml2 runs and
 * put back before control returns to Lua. */
static void discard_generic(void *ctx, const char *fmt, ...) {
  (void)ctx, (void)fmt;
}

static void refuse_entity(void *data, const xmlChar *name, int type, const xmlChar *public_id,
                          const xmlChar *system_id, xmlChar *content) {
  (void)name, (void)type, (void)public_id, (void)system_id, (void)content;
  xmlParserCtxtPtr ctxt = data;
  record(ctxt->_private, xmlSAX2GetLineNumber(ctxt), "entity declarations are not allowed");
  xmlStopParser(ctxt);
  ctxt->wellFormed = 0;
}

/* Parses text into c->doc. 0, or pushes nil and the error and returns 2. */
static int parse(lua_State *L, xml_call *c, const char *text, size_t len) {
  if (len > MAX_TEXT) {
    lua_pushnil(L);
    lua_pushfstring(L, "E_TOOBIG: XML text is over the %d MiB limit", (int)(MAX_TEXT >> 20));
    return 2;
  }
  c->ctxt = xmlNewParserCtxt();
  if (!c->ctxt) luaL_error(L, "out of memory");
  c->ctxt->_private = c;
  c->ctxt->sax->serror = on_parse_error;
  c->ctxt->sax->entityDecl = refuse_entity;
  c->doc = xmlCtxtReadMemory(c->ctxt, text, (int)len, NULL, NULL, PARSE_OPTIONS);
  if (!c->doc || c->msg[0]) {
    record(c, 0, "not well-formed");
    lua_pushnil(L);
    lua_pushfstring(L, "E_PARSE: line %d: %s", c->line, c->msg);
    return 2;
  }
  return 0;
}

/* Registers prefix = uri pairs from the table at idx. */
static void register_namespaces(lua_State *L, xml_call *c, int idx) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      luaL_argerror(L, idx, "namespaces map prefix strings to URI strings");
    xmlXPathRegisterNs(c->xp, (const xmlChar *)lua_tostring(L, -2),
                       (const xmlChar *)lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

/* xml.xpath(text, expr [, namespaces]) -> strings | scalar | nil, err */
static int l_xpath(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  const char *expr = luaL_checkstring(L, 2);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  xml_call *c = call_new(L);
  if (parse(L, c, text, len)) return 2;

  c->xp = xmlXPathNewContext(c->doc);
  if (!c->xp) luaL_error(L, "out of memory");
  c->xp->error = on_xpath_error;
  c->xp->userData = c;
  c->xp->opLimit = XPATH_OP_LIMIT;
  if (lua_istable(L, 3)) register_namespaces(L, c, 3);
  xmlGenericErrorFunc saved = xmlGenericError;
  void *saved_ctx = xmlGenericErrorContext;
  xmlSetGenericErrorFunc(NULL, discard_generic);
  c->obj = xmlXPathEvalExpression((const xmlChar *)expr, c->xp);
  xmlSetGenericErrorFunc(saved_ctx, saved);
  if (!c->obj) {
    record(c, 0, "invalid expression");
    lua_pushnil(L);
    lua_pushfstring(L, "E_XPATH: %s", c->msg);
    return 2;
  }

  switch (c->obj->type) {
  case XPATH_NODESET: {
    xmlNodeSetPtr set = c->obj->nodesetval;
    int n = set ? set->nodeNr : 0;
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
      c->str = xmlXPathCastNodeToString(set->nodeTab[i]);
      lua_pushstring(L, c->str ? (const char *)c->str : "");
      xmlFree(c->str);
      c->str = NULL;
      lua_rawseti(L, -2, i + 1);
    }
    rm_lua_push_array_mt(L);
    lua_setmetatable(L, -2);
    break;
  }
  case XPATH_BOOLEAN:
    lua_pushboolean(L, c->obj->boolval);
    break;
  case XPATH_NUMBER:
    lua_pushnumber(L, c->obj->floatval);
    break;
  case XPATH_STRING:
    lua_pushstring(L, c->obj->stringval ? (const char *)c->obj->stringval : "");
    break;
  default:
    lua_pushnil(L);
    lua_pushliteral(L, "E_XPATH: unsupported result type");
    return 2;
  }
  call_release(c);
  return 1;
}

/* ---- escaping and encoding ------------------------------------------ */

/* Length of the valid UTF-8 sequence at s, or 0. XML 1.0 also forbids
 * most C0 controls, U+FFFE and U+FFFF: those count as invalid too. */
static size_t xml_char_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  if (c < 0x20) return (c == '\t' || c == '\n' || c == '\r') ? 1 : 0;
  if (c < 0x80) return 1;
  size_t len;
  unsigned cp;
  if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
  else return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF) return 0;
  return len;
}

/* Appends s escaped for text and attribute values. Returns the offset of
 * the first byte XML cannot carry, or (size_t)-1 when all went in. */
static size_t add_escaped(luaL_Buffer *b, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    switch (p[i]) {
    case '&': luaL_addlstring(b, "&amp;", 5); i++; continue;
    case '<': luaL_addlstring(b, "&lt;", 4); i++; continue;
    case '>': luaL_addlstring(b, "&gt;", 4); i++; continue;
    case '"': luaL_addlstring(b, "&quot;", 6); i++; continue;
    case '\'': luaL_addlstring(b, "&apos;", 6); i++; continue;
    case '\r': luaL_addlstring(b, "&#13;", 5); i++; continue;
    default: break;
    }
    size_t len = xml_char_len(p + i, n - i);
    if (!len) return i;
    luaL_addlstring(b, s + i, len);
    i += len;
  }
  return (size_t)-1;
}

/* xml.escape(s) -> escaped | nil, err */
static int l_escape(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t bad = add_escaped(&b, s, n);
  if (bad != (size_t)-1) {
    lua_pushnil(L);
    lua_pushfstring(L, "E_INVALID: byte %d at offset %d is not allowed in XML",
                    (int)(unsigned char)s[bad], (int)bad);
    return 2;
  }
  luaL_pushresult(&b);
  return 1;
}

typedef struct enc {
  luaL_Buffer b;
  char err[256];
} enc;

static int valid_name(const char *name) {
  return name[0] && xmlValidateName((const xmlChar *)name, 0) == 0;
}

static int cmp_keys(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int put_element(enc *e, const char *name, json_t *v);

/* Writes the content of an element: children for an object (in key
 * order), <item> children for an array, text for a scalar. */
static int put_content(enc *e, const char *name, json_t *v) {
  char num[40];
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    size_t n = json_object_size(v), i = 0;
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys) return snprintf(e->err, sizeof e->err, "out of memory"), -1;
    const char *k;
    size_t klen;
    json_t *child;
    json_object_keylen_foreach(v, k, klen, child) {
      if (strlen(k) != klen) {
        free(keys);
        snprintf(e->err, sizeof e->err, "a key of <%.64s> holds a NUL byte", name);
        return -1;
      }
      keys[i++] = k;
    }
    qsort(keys, n, sizeof *keys, cmp_keys);
    int rc = 0;
    for (i = 0; i < n && !rc; i++) {
      json_t *item = json_object_get(v, keys[i]);
      if (json_is_array(item)) {
        for (size_t j = 0; j < json_array_size(item) && !rc; j++)
          rc = put_element(e, keys[i], json_array_get(item, j));
      } else {
        rc = put_element(e, keys[i], item);
      }
    }
    free(keys);
    return rc;
  }
  case JSON_ARRAY:
    for (size_t j = 0; j < json_array_size(v); j++)
      if (put_element(e, "item", json_array_get(v, j))) return -1;
    return 0;
  case JSON_STRING: {
    size_t bad = add_escaped(&e->b, json_string_value(v), json_string_length(v));
    if (bad == (size_t)-1) return 0;
    snprintf(e->err, sizeof e->err, "text of <%.64s> has a byte XML cannot carry at offset %zu",
             name, bad);
    return -1;
  }
  case JSON_INTEGER:
    snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    break;
  case JSON_REAL:
    for (int prec = 15; prec <= 17; prec++) {
      snprintf(num, sizeof num, "%.*g", prec, json_real_value(v));
      if (strtod(num, NULL) == json_real_value(v)) break;
    }
    break;
  case JSON_TRUE:
    snprintf(num, sizeof num, "true");
    break;
  case JSON_FALSE:
    snprintf(num, sizeof num, "false");
    break;
  default:
    return 0;
  }
  luaL_addstring(&e->b, num);
  return 0;
}

static int put_element(enc *e, const char *name, json_t *v) {
  if (!valid_name(name)) {
    snprintf(e->err, sizeof e->err, "\"%.64s\" is not a valid XML name", name);
    return -1;
  }
  luaL_addchar(&e->b, '<');
  luaL_addstring(&e->b, name);
  if (json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0) ||
      (json_is_array(v) && json_array_size(v) == 0)) {
    luaL_addlstring(&e->b, "/>", 2);
    return 0;
  }
  luaL_addchar(&e->b, '>');
  if (put_content(e, name, v)) return -1;
  luaL_addlstring(&e->b, "</", 2);
  luaL_addstring(&e->b, name);
  luaL_addchar(&e->b, '>');
  return 0;
}

/* xml.encode(root_name, value) -> text | nil, err
 * Objects become child elements in key order, an array under a key
 * repeats that key's element, an array as the root value (or nested in
 * another array) becomes <item> children, null an empty element. */
static int l_encode(lua_State *L) {
  const char *root = luaL_checkstring(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  xml_call *c = call_new(L);
  char err[320];
  c->value = rm_lua_to_json(L, 2, err, sizeof err);
  if (!c->value) {
    lua_pushnil(L);
    lua_pushfstring(L, "E_INVALID: %s", err);
    return 2;
  }
  enc e = {.err = ""};
  luaL_buffinit(L, &e.b);
  luaL_addstring(&e.b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  if (put_element(&e, root, c->value)) {
    lua_pushnil(L);
    lua_pushfstring(L, "E_INVALID: %s", e.err);
    return 2;
  }
  luaL_pushresult(&e.b);
  return 1;
}

static const luaL_Reg xml_funcs[] = {
    {"xpath", l_xpath},
    {"escape", l_escape},
    {"encode", l_encode},
    {NULL, NULL},
};

int rm_lua_open_xml(lua_State *L) {
  xmlInitParser();
  luaL_newlib(L, xml_funcs);
  return 1;
}
