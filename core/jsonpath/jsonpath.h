/* JSONPath (RFC 9535) over jansson values.
 *
 * Complete RFC 9535: root/current identifiers, name/wildcard/index/slice/
 * filter selectors, descendant segments, comparisons and logical
 * expressions with the RFC's type rules, and the function extensions
 * length(), count(), value(), match(), search() (I-Regexp, RFC 9485,
 * translated to PCRE2). Invalid queries are rejected at compile time with
 * the offset of the error. */
#ifndef RM_JSONPATH_H
#define RM_JSONPATH_H

#include <jansson.h>
#include <stddef.h>

typedef struct rm_jsonpath rm_jsonpath;

/* Compiles expr. On success *out is a new query (free with
 * rm_jsonpath_free) and 0 is returned; on a syntax error RM_EPARSE with a
 * message such as "at offset 4: expected ']'" in err. */
int rm_jsonpath_compile(const char *expr, rm_jsonpath **out, char *err, size_t errlen);

/* Evaluates q against doc (borrowed). *out receives a new JSON array (caller
 * decrefs) holding the selected nodes' values in document order (object
 * members in insertion order). When paths is non-NULL it receives a new
 * array of the nodes' normalized paths ("$['a'][0]"). 0 or RM_ENOMEM. */
int rm_jsonpath_query(const rm_jsonpath *q, json_t *doc, json_t **out, json_t **paths);

void rm_jsonpath_free(rm_jsonpath *q);

#endif
