/* Syntax checks of the expressions a workflow holds: JSONPath, XPath,
 * PCRE2 patterns and Lua chunks. Each is compiled and thrown away. */
#include <lauxlib.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <libxml/xpath.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "engine/validate_internal.h"
#include "jsonpath/jsonpath.h"
#include "util/err.h"

int rm__check_jsonpath(rm__vctx *c, const char *path, const char *expr) {
  char err[256] = "";
  rm_jsonpath *q = NULL;
  int rc = rm_jsonpath_compile(expr, &q, err, sizeof err);
  if (rc == 0) {
    rm_jsonpath_free(q);
    return 0;
  }
  if (rc == RM_ENOMEM)
    c->oom = 1;
  else
    rm__problem(c, path, "invalid JSONPath '%s': %s", expr, err[0] ? err : rm_strerror(rc));
  return rc;
}

/* libxml2 reports XPath errors to a context's handler by code only. */
static const char *const xpath_messages[] = {
    [XPATH_NUMBER_ERROR] = "number encoding",
    [XPATH_UNFINISHED_LITERAL_ERROR] = "unfinished literal",
    [XPATH_START_LITERAL_ERROR] = "start of literal",
    [XPATH_VARIABLE_REF_ERROR] = "expected $ for variable reference",
    [XPATH_UNDEF_VARIABLE_ERROR] = "undefined variable",
    [XPATH_INVALID_PREDICATE_ERROR] = "invalid predicate",
    [XPATH_EXPR_ERROR] = "invalid expression",
    [XPATH_UNCLOSED_ERROR] = "missing closing curly brace",
    [XPATH_UNKNOWN_FUNC_ERROR] = "unregistered function",
    [XPATH_INVALID_OPERAND] = "invalid operand",
    [XPATH_INVALID_TYPE] = "invalid type",
    [XPATH_INVALID_ARITY] = "invalid number of arguments",
    [XPATH_UNDEF_PREFIX_ERROR] = "undefined namespace prefix",
    [XPATH_ENCODING_ERROR] = "encoding error",
    [XPATH_INVALID_CHAR_ERROR] = "character out of XML range",
    [XPATH_STACK_ERROR] = "stack usage error",
    [XPATH_OP_LIMIT_EXCEEDED] = "operation limit exceeded",
    [XPATH_RECURSION_LIMIT_EXCEEDED] = "recursion limit exceeded",
};

typedef struct xpath_error {
  int seen;
  int offset;
  char msg[200];
} xpath_error;

#if LIBXML_VERSION >= 21200
static void on_xpath_error(void *ud, const xmlError *e) {
#else
static void on_xpath_error(void *ud, xmlErrorPtr e) {
#endif
  xpath_error *x = ud;
  if (x->seen || !e) return;
  x->seen = 1;
  x->offset = e->int1;
  int code = e->code - XML_XPATH_EXPRESSION_OK;
  const char *text = code > 0 && (size_t)code < sizeof xpath_messages / sizeof xpath_messages[0]
                         ? xpath_messages[code]
                         : NULL;
  snprintf(x->msg, sizeof x->msg, "%s", e->message ? e->message : text ? text : "syntax error");
  size_t n = strlen(x->msg);
  while (n > 0 && (x->msg[n - 1] == '\n' || x->msg[n - 1] == ' ')) x->msg[--n] = '\0';
}

/* Errors go to a handler of this one context, so nothing is printed and
 * no process-wide libxml2 setting changes. */
int rm__check_xpath(rm__vctx *c, const char *path, const char *expr) {
  xmlInitParser();
  xmlXPathContextPtr ctx = xmlXPathNewContext(NULL);
  if (!ctx) {
    c->oom = 1;
    return RM_ENOMEM;
  }
  xpath_error x = {0, 0, ""};
  ctx->error = on_xpath_error;
  ctx->userData = &x;
  xmlXPathCompExprPtr comp = xmlXPathCtxtCompile(ctx, (const xmlChar *)expr);
  xmlXPathFreeContext(ctx);
  if (comp) {
    xmlXPathFreeCompExpr(comp);
    return 0;
  }
  if (x.seen)
    rm__problem(c, path, "invalid XPath '%s': %s at offset %d", expr, x.msg, x.offset);
  else
    rm__problem(c, path, "invalid XPath '%s'", expr);
  return RM_EPARSE;
}

int rm__check_regex(rm__vctx *c, const char *path, const json_t *pattern, const json_t *group,
                    const char *group_path) {
  int ec = 0;
  PCRE2_SIZE off = 0;
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)json_string_value(pattern),
                                 json_string_length(pattern), PCRE2_UTF, &ec, &off, NULL);
  if (!re) {
    PCRE2_UCHAR msg[256];
    if (pcre2_get_error_message(ec, msg, sizeof msg) < 0)
      snprintf((char *)msg, sizeof msg, "error %d", ec);
    rm__problem(c, path, "invalid regex at offset %zu: %s", (size_t)off, (const char *)msg);
    return RM_EPARSE;
  }
  int rc = 0;
  uint32_t groups = 0;
  pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &groups);
  if (json_is_integer(group) &&
      (json_integer_value(group) < 0 || json_integer_value(group) > (json_int_t)groups)) {
    rm__problem(c, group_path,
                "group %" JSON_INTEGER_FORMAT
                " does not exist (the pattern has %u capture group%s)",
                json_integer_value(group), (unsigned)groups, groups == 1 ? "" : "s");
    rc = RM_EINVAL;
  } else if (json_is_string(group) &&
             pcre2_substring_number_from_name(re, (PCRE2_SPTR)json_string_value(group)) < 0) {
    rm__problem(c, group_path, "the pattern has no group named '%s'", json_string_value(group));
    rc = RM_EINVAL;
  }
  pcre2_code_free(re);
  return rc;
}

int rm__check_lua(rm__vctx *c, const char *path, const json_t *code) {
  const char *src = json_string_value(code);
  size_t len = json_string_length(code);
  if (len > 0 && src[0] == 27) {
    rm__problem(c, path, "precompiled Lua chunks are not allowed");
    return RM_EDENIED;
  }
  if (!c->L) c->L = luaL_newstate();
  if (!c->L) return 0; /* no state to compile in: the check is skipped */
  int rc = luaL_loadbuffer(c->L, src, len, "=lua");
  if (rc == 0) {
    lua_pop(c->L, 1);
    return 0;
  }
  const char *msg = lua_tostring(c->L, -1);
  if (rc == LUA_ERRMEM || !msg) {
    c->oom = 1;
  } else if (strncmp(msg, "lua:", 4) == 0) {
    const char *colon = strchr(msg + 4, ':');
    int line_len = colon ? (int)(colon - msg - 4) : 0;
    rm__problem(c, path, "Lua syntax error on line %.*s:%s", line_len, msg + 4,
                colon ? colon + 1 : msg);
  } else {
    rm__problem(c, path, "Lua syntax error: %s", msg);
  }
  lua_pop(c->L, 1);
  return RM_ELUA;
}

void rm__syntax_free(rm__vctx *c) {
  if (c->L) lua_close(c->L);
  c->L = NULL;
}
