/* Application codes of the REST API: the stable five-digit `code` of the
 * response envelope, beside the HTTP status used as meant.
 *
 * The table: a code is the HTTP status times 100 plus a refinement, so the
 * first three digits always name the status it is sent with ("42201" is a
 * 422). "00000" is success. The numbers are pinned: clients store and
 * compare them; add new ones, never renumber.
 *
 *   code   status  meaning
 *   00000  2xx     ok
 *   40000  400     the request is malformed (path, header, transfer)
 *   40001  400     the body is not valid JSON (details give line/column)
 *   40002  400     a query parameter is invalid
 *   40100  401     not authenticated
 *   40300  403     authenticated but not allowed
 *   40400  404     no such resource
 *   40401  404     no such API endpoint (no route matches the path)
 *   40500  405     the endpoint exists, not with this method (Allow)
 *   40900  409     conflicts with the current state (version, lease)
 *   41300  413     the body is larger than the server accepts
 *   42200  422     a field is invalid (details name each by JSON path)
 *   42201  422     the body has fields the endpoint does not know
 *   42900  429     too many requests
 *   50000  500     internal error
 *   50300  503     not ready, or stopping
 */
#ifndef RM_API_CODES_H
#define RM_API_CODES_H

enum rm_api_code {
  RM_API_OK = 0,
  RM_API_BAD_REQUEST = 40000,
  RM_API_MALFORMED_JSON = 40001,
  RM_API_INVALID_QUERY = 40002,
  RM_API_UNAUTHENTICATED = 40100,
  RM_API_FORBIDDEN = 40300,
  RM_API_NOT_FOUND = 40400,
  RM_API_NO_ROUTE = 40401,
  RM_API_METHOD_NOT_ALLOWED = 40500,
  RM_API_CONFLICT = 40900,
  RM_API_TOO_LARGE = 41300,
  RM_API_INVALID = 42200,
  RM_API_UNKNOWN_FIELDS = 42201,
  RM_API_RATE_LIMITED = 42900,
  RM_API_INTERNAL = 50000,
  RM_API_UNAVAILABLE = 50300,
};

/* The HTTP status a code is sent with (200 for RM_API_OK). */
int rm_api_code_status(enum rm_api_code code);
/* The default message of a code ("not found"). Never NULL; static. */
const char *rm_api_code_message(enum rm_api_code code);
/* The code for an HTTP error status that no handler chose (a status h2o
 * sent on its own, such as 413 or 417): the table's code for it, else
 * RM_API_BAD_REQUEST for 4xx and RM_API_INTERNAL for 5xx. */
enum rm_api_code rm_api_code_for_status(int status);
/* The five-digit text form: "40001", "00000" for ok. */
void rm_api_code_format(enum rm_api_code code, char out[6]);

#endif
