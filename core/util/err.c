#include "util/err.h"

static const struct {
  int code;
  const char *name;
  const char *text;
} errors[] = {
    {RM_OK, "OK", "success"},
    {RM_ENOMEM, "E_NOMEM", "out of memory"},
    {RM_EINVAL, "E_INVALID", "invalid argument"},
    {RM_EIO, "E_IO", "input/output error"},
    {RM_ETIMEOUT, "E_TIMEOUT", "timed out"},
    {RM_ECANCELED, "E_CANCELED", "cancelled"},
    {RM_ENOTFOUND, "E_NOTFOUND", "not found"},
    {RM_EPARSE, "E_PARSE", "malformed input"},
    {RM_EHTTP, "E_HTTP", "HTTP transport error"},
    {RM_ETOOBIG, "E_TOOBIG", "size limit exceeded"},
    {RM_EBUDGET, "E_BUDGET", "CPU budget exhausted"},
    {RM_EMEMLIMIT, "E_MEMLIMIT", "memory limit reached"},
    {RM_ELUA, "E_LUA", "Lua error"},
    {RM_EDENIED, "E_DENIED", "not allowed"},
    {RM_EEXIST, "E_EXIST", "already exists"},
    {RM_ECONFLICT, "E_CONFLICT", "conflicting change"},
    {RM_EDB, "E_DB", "database error"},
    {RM_EVERSION, "E_VERSION", "unsupported version"},
};

const char *rm_strerror(int err) {
  for (unsigned i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (errors[i].code == err) return errors[i].text;
  return "unknown error";
}

const char *rm_errname(int err) {
  for (unsigned i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (errors[i].code == err) return errors[i].name;
  return "E_UNKNOWN";
}
