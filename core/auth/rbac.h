/* rm_rbac: who may do what. One static table in rbac.c, indexed by module
 * and action, is the single source of truth; rm_rbac_markdown prints it
 * as docs/permissions.md, and the unit tests hold both to an independent
 * statement of the rules.
 *
 * The table says what a role may do to a kind of object. Two further
 * checks belong to the caller: rm_rbac_visible for private objects, and
 * state (only a finished run can be rerun, only a failed one resumed;
 * that is a 409, not a 403). Actions on one's own account (log out,
 * change one's password) are not in the table: every role has them. */
#ifndef RM_AUTH_RBAC_H
#define RM_AUTH_RBAC_H

#include <stdbool.h>
#include <stdio.h>

/* Stored as the string form; the numbers are pinned. 0 is no role, so a
 * zeroed struct grants nothing. */
enum rm_role {
  RM_ROLE_NONE = 0,
  RM_ROLE_ADMIN = 1,
  RM_ROLE_FULL_DESIGNER = 2,
  RM_ROLE_SUPER_OPERATOR = 3,
  RM_ROLE_READ_ONLY_OPERATOR = 4,
  RM_ROLE_READ_ONLY_DESIGNER = 5,
};
#define RM_ROLE_COUNT 6 /* NONE included */

enum rm_module {
  RM_MOD_TASKS = 0,
  RM_MOD_WORKFLOWS = 1,
  RM_MOD_RUNS = 2,
  RM_MOD_SCHEDULES = 3,
  RM_MOD_MONITORS = 4,
  RM_MOD_CHANNELS = 5,
  RM_MOD_SECRETS = 6,
  RM_MOD_USERS = 7,
  RM_MOD_API_KEYS = 8,
  RM_MOD_CONFIG = 9,
  RM_MOD_AUDIT = 10,
  RM_MOD_SIGNALS = 11,
  RM_MOD_COUNT
};

enum rm_action {
  RM_ACT_VIEW = 0,
  RM_ACT_CREATE = 1,
  RM_ACT_EDIT = 2,
  RM_ACT_DELETE = 3,
  RM_ACT_EXECUTE = 4, /* start with new inputs: a workflow run, a task or channel test */
  RM_ACT_RERUN = 5,   /* a new run of a finished run, same version and inputs */
  RM_ACT_RESUME = 6,  /* continue a failed run from its failed step */
  RM_ACT_CANCEL = 7,
  RM_ACT_ANNOTATE = 8,
  RM_ACT_ACKNOWLEDGE = 9,
  RM_ACT_PUBLISH = 10, /* freeze a workflow version */
  RM_ACT_COUNT
};

/* Object scope (stored as "global" / "private"). */
enum rm_scope {
  RM_SCOPE_GLOBAL = 1,
  RM_SCOPE_PRIVATE = 2,
};

/* Whether role may do action on objects of module. False for anything
 * out of range and for actions that do not apply to the module. */
bool rm_rbac_allowed(enum rm_role role, enum rm_module module, enum rm_action action);

/* Whether the action applies to the module at all (a row of the table). */
bool rm_rbac_applies(enum rm_module module, enum rm_action action);

/* Whether user user_id with role may see an object owned by owner_id in
 * scope: global objects are seen by every role, private ones by their
 * owner and by admins (metadata only: a secret's value is never shown).
 * NULL ids never match; an unknown scope counts as private. */
bool rm_rbac_visible(enum rm_role role, const char *user_id, const char *owner_id,
                     enum rm_scope scope);

/* rm_rbac_allowed and rm_rbac_visible together, for one object. */
bool rm_rbac_allowed_on(enum rm_role role, const char *user_id, enum rm_module module,
                        enum rm_action action, const char *owner_id, enum rm_scope scope);

/* Exact ids ("full_designer") to enum: 0, or RM_EINVAL for anything else
 * (no case folding: these are stored values, not user input). */
int rm_rbac_role_parse(const char *s, enum rm_role *out);
int rm_rbac_module_parse(const char *s, enum rm_module *out);
int rm_rbac_action_parse(const char *s, enum rm_action *out);
int rm_rbac_scope_parse(const char *s, enum rm_scope *out);

/* The id, or NULL when out of range (and for RM_ROLE_NONE). Static. */
const char *rm_rbac_role_name(enum rm_role role);
/* "Full Designer", or NULL. Static. */
const char *rm_rbac_role_title(enum rm_role role);
const char *rm_rbac_module_name(enum rm_module module);
const char *rm_rbac_action_name(enum rm_action action);
const char *rm_rbac_scope_name(enum rm_scope scope);

/* Writes the whole of docs/permissions.md (what `restmon permissions`
 * prints). 0, or RM_EIO when writing fails. */
int rm_rbac_markdown(FILE *out);

#endif
