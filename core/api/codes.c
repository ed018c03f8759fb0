#include "api/codes.h"


int rm_api_code_status(enum rm_api_code code) {
  return code == RM_API_OK ? 200 : (int)code / 100;
}

/* A switch without default: -Wswitch (in -Wall) names any code added to
 * the enum without a message here. */
const char *rm_api_code_message(enum rm_api_code code) {
  switch (code) {
  case RM_API_OK: return "ok";
  case RM_API_BAD_REQUEST: return "malformed request";
  case RM_API_MALFORMED_JSON: return "request body is not valid JSON";
  case RM_API_INVALID_QUERY: return "invalid query parameter";
  case RM_API_UNAUTHENTICATED: return "authentication required";
  case RM_API_FORBIDDEN: return "not allowed";
  case RM_API_NOT_FOUND: return "not found";
  case RM_API_NO_ROUTE: return "no such API endpoint";
  case RM_API_METHOD_NOT_ALLOWED: return "method not allowed";
  case RM_API_CONFLICT: return "conflicts with the current state";
  case RM_API_TOO_LARGE: return "request body too large";
  case RM_API_INVALID: return "validation failed";
  case RM_API_UNKNOWN_FIELDS: return "unknown fields";
  case RM_API_RATE_LIMITED: return "too many requests";
  case RM_API_INTERNAL: return "internal error";
  case RM_API_UNAVAILABLE: return "service unavailable";
  }
  return "error";
}

enum rm_api_code rm_api_code_for_status(int status) {
  switch (status) {
  case 400: return RM_API_BAD_REQUEST;
  case 401: return RM_API_UNAUTHENTICATED;
  case 403: return RM_API_FORBIDDEN;
  case 404: return RM_API_NOT_FOUND;
  case 405: return RM_API_METHOD_NOT_ALLOWED;
  case 409: return RM_API_CONFLICT;
  case 413: return RM_API_TOO_LARGE;
  case 422: return RM_API_INVALID;
  case 429: return RM_API_RATE_LIMITED;
  case 503: return RM_API_UNAVAILABLE;
  default: return status < 500 ? RM_API_BAD_REQUEST : RM_API_INTERNAL;
  }
}

void rm_api_code_format(enum rm_api_code code, char out[6]) {
  unsigned v = (unsigned)code % 100000u;
  for (int i = 4; i >= 0; i--, v /= 10) out[i] = (char)('0' + v % 10);
  out[5] = '\0';
}
