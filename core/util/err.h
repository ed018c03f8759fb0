/* Error codes shared by every subsystem.
 *
 * C functions return 0 or a negative RM_E* code; rm_strerror() gives its
 * text and rm_errname() its stable name ("E_TIMEOUT"), which is what Lua
 * code and run records see. The numbers are pinned: they may be stored. */
#ifndef RM_UTIL_ERR_H
#define RM_UTIL_ERR_H

enum rm_err {
  RM_OK = 0,
  RM_ENOMEM = -1,      /* out of memory */
  RM_EINVAL = -2,      /* invalid argument or definition */
  RM_EIO = -3,         /* input/output error (file, socket) */
  RM_ETIMEOUT = -4,    /* a deadline passed */
  RM_ECANCELED = -5,   /* cancelled by the caller */
  RM_ENOTFOUND = -6,   /* a named thing does not exist */
  RM_EPARSE = -7,      /* malformed input (JSON, XML, expression) */
  RM_EHTTP = -8,       /* transport-level HTTP error */
  RM_ETOOBIG = -9,     /* a size cap was exceeded */
  RM_EBUDGET = -10,    /* a sandbox CPU budget was exhausted */
  RM_EMEMLIMIT = -11,  /* a sandbox memory cap was reached */
  RM_ELUA = -12,       /* a Lua error in a plugin or rule */
  RM_EDENIED = -13,    /* refused by the sandbox or a policy */
  RM_EEXIST = -14,     /* already exists */
  RM_ECONFLICT = -15,  /* a concurrent change won (version, lease, state) */
  RM_EDB = -16,        /* the database failed or is unreachable */
  RM_EVERSION = -17,   /* data from a newer version than this binary */
};

/* Human text for an error code ("timed out"). Never NULL; static storage. */
const char *rm_strerror(int err);
/* Stable symbolic name ("E_TIMEOUT"). Never NULL; static storage. */
const char *rm_errname(int err);

#endif
