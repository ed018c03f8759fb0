#include "auth/rbac.h"

#include <string.h>

#include "util/err.h"

#define BIT(r) (1u << (r))
#define ADMIN BIT(RM_ROLE_ADMIN)
/* Those who change the design: tasks, workflows, schedules, monitors,
 * channels, secrets. */
#define DESIGN (ADMIN | BIT(RM_ROLE_FULL_DESIGNER))
/* Those who act on runs and signals without new inputs. */
#define OPERATE (DESIGN | BIT(RM_ROLE_SUPER_OPERATOR))
/* Those who read the design in full, including where notifications go
 * (webhook URLs often carry a token) and which secrets exist. */
#define READ_DESIGN (DESIGN | BIT(RM_ROLE_READ_ONLY_DESIGNER))
#define EVERYONE (OPERATE | BIT(RM_ROLE_READ_ONLY_OPERATOR) | BIT(RM_ROLE_READ_ONLY_DESIGNER))

typedef struct cell {
  unsigned roles;   /* BIT(role) for each role allowed */
  const char *what; /* NULL: the action does not apply to the module */
} cell;

/* The permissions. Read-only roles appear only in view cells. */
static const cell table[RM_MOD_COUNT][RM_ACT_COUNT] = {
  [RM_MOD_TASKS] = {
    [RM_ACT_VIEW] = {EVERYONE, "see tasks and their definitions"},
    [RM_ACT_CREATE] = {DESIGN, "create a task"},
    [RM_ACT_EDIT] = {DESIGN, "change a task"},
    [RM_ACT_DELETE] = {DESIGN, "delete a task"},
    [RM_ACT_EXECUTE] = {DESIGN, "run one task on its own to try it"},
  },
  [RM_MOD_WORKFLOWS] = {
    [RM_ACT_VIEW] = {EVERYONE, "see workflows and their versions"},
    [RM_ACT_CREATE] = {DESIGN, "create a workflow"},
    [RM_ACT_EDIT] = {DESIGN, "edit a draft (a published version never changes)"},
    [RM_ACT_DELETE] = {DESIGN, "delete a workflow"},
    [RM_ACT_EXECUTE] = {DESIGN, "start a run, with new inputs"},
    [RM_ACT_PUBLISH] = {DESIGN, "publish a version"},
  },
  [RM_MOD_RUNS] = {
    [RM_ACT_VIEW] = {EVERYONE, "see runs, steps, requests and responses (secrets redacted)"},
    [RM_ACT_DELETE] = {ADMIN, "delete a run record"},
    [RM_ACT_RERUN] = {OPERATE, "start a new run of a finished run, same version and inputs"},
    [RM_ACT_RESUME] = {OPERATE, "continue a failed run from its failed step"},
    [RM_ACT_CANCEL] = {OPERATE, "cancel a queued or running run"},
    [RM_ACT_ANNOTATE] = {OPERATE, "add a note to a run"},
    [RM_ACT_ACKNOWLEDGE] = {OPERATE, "acknowledge a failed run"},
  },
  [RM_MOD_SCHEDULES] = {
    [RM_ACT_VIEW] = {EVERYONE, "see schedules"},
    [RM_ACT_CREATE] = {DESIGN, "create a schedule"},
    [RM_ACT_EDIT] = {DESIGN, "change, attach, pause a schedule"},
    [RM_ACT_DELETE] = {DESIGN, "delete a schedule"},
  },
  [RM_MOD_MONITORS] = {
    [RM_ACT_VIEW] = {EVERYONE, "see monitoring objects and mapping rules"},
    [RM_ACT_CREATE] = {DESIGN, "create a monitoring object or mapping rule"},
    [RM_ACT_EDIT] = {DESIGN, "change a monitoring object or mapping rule"},
    [RM_ACT_DELETE] = {DESIGN, "delete a monitoring object or mapping rule"},
    [RM_ACT_EXECUTE] = {DESIGN, "run a check now"},
  },
  [RM_MOD_CHANNELS] = {
    [RM_ACT_VIEW] = {READ_DESIGN, "see notification channels and their targets"},
    [RM_ACT_CREATE] = {DESIGN, "create a channel"},
    [RM_ACT_EDIT] = {DESIGN, "change a channel"},
    [RM_ACT_DELETE] = {DESIGN, "delete a channel"},
    [RM_ACT_EXECUTE] = {DESIGN, "send a test notification"},
  },
  [RM_MOD_SECRETS] = {
    [RM_ACT_VIEW] = {READ_DESIGN, "see secret names and metadata (never a value)"},
    [RM_ACT_CREATE] = {DESIGN, "create a secret"},
    [RM_ACT_EDIT] = {DESIGN, "replace a secret's value or metadata"},
    [RM_ACT_DELETE] = {DESIGN, "delete a secret"},
  },
  [RM_MOD_USERS] = {
    [RM_ACT_VIEW] = {ADMIN, "see users and their roles"},
    [RM_ACT_CREATE] = {ADMIN, "create a user"},
    [RM_ACT_EDIT] = {ADMIN, "change a user's role, active flag or password"},
    [RM_ACT_DELETE] = {ADMIN, "delete a user"},
  },
  [RM_MOD_API_KEYS] = {
    [RM_ACT_VIEW] = {EVERYONE, "see API keys (ids and metadata, never the secret)"},
    [RM_ACT_CREATE] = {OPERATE, "create an API key (it acts with its owner's role)"},
    [RM_ACT_DELETE] = {OPERATE, "revoke an API key"},
  },
  [RM_MOD_CONFIG] = {
    [RM_ACT_VIEW] = {ADMIN, "see the global configuration"},
    [RM_ACT_EDIT] = {ADMIN, "change it (session lifetime, retention, defaults)"},
  },
  [RM_MOD_AUDIT] = {
    [RM_ACT_VIEW] = {ADMIN, "read the audit log"},
  },
  [RM_MOD_SIGNALS] = {
    [RM_ACT_VIEW] = {EVERYONE, "see signals and their transitions"},
    [RM_ACT_CREATE] = {OPERATE, "push metric values and events to a monitor"},
    [RM_ACT_ANNOTATE] = {OPERATE, "add a note to a signal transition"},
    [RM_ACT_ACKNOWLEDGE] = {OPERATE, "acknowledge a Degraded or Failed signal"},
  },
};

static const char *const role_ids[RM_ROLE_COUNT] = {
    [RM_ROLE_ADMIN] = "admin",
    [RM_ROLE_FULL_DESIGNER] = "full_designer",
    [RM_ROLE_SUPER_OPERATOR] = "super_operator",
    [RM_ROLE_READ_ONLY_OPERATOR] = "read_only_operator",
    [RM_ROLE_READ_ONLY_DESIGNER] = "read_only_designer",
};

static const char *const role_titles[RM_ROLE_COUNT] = {
    [RM_ROLE_ADMIN] = "Admin",
    [RM_ROLE_FULL_DESIGNER] = "Full Designer",
    [RM_ROLE_SUPER_OPERATOR] = "Super Operator",
    [RM_ROLE_READ_ONLY_OPERATOR] = "Read-Only Operator",
    [RM_ROLE_READ_ONLY_DESIGNER] = "Read-Only Designer",
};

static const char *const module_ids[RM_MOD_COUNT] = {
    [RM_MOD_TASKS] = "tasks",       [RM_MOD_WORKFLOWS] = "workflows",
    [RM_MOD_RUNS] = "runs",         [RM_MOD_SCHEDULES] = "schedules",
    [RM_MOD_MONITORS] = "monitors", [RM_MOD_CHANNELS] = "channels",
    [RM_MOD_SECRETS] = "secrets",   [RM_MOD_USERS] = "users",
    [RM_MOD_API_KEYS] = "api_keys", [RM_MOD_CONFIG] = "config",
    [RM_MOD_AUDIT] = "audit",       [RM_MOD_SIGNALS] = "signals",
};

static const char *const action_ids[RM_ACT_COUNT] = {
    [RM_ACT_VIEW] = "view",         [RM_ACT_CREATE] = "create",
    [RM_ACT_EDIT] = "edit",         [RM_ACT_DELETE] = "delete",
    [RM_ACT_EXECUTE] = "execute",   [RM_ACT_RERUN] = "rerun",
    [RM_ACT_RESUME] = "resume",     [RM_ACT_CANCEL] = "cancel",
    [RM_ACT_ANNOTATE] = "annotate", [RM_ACT_ACKNOWLEDGE] = "acknowledge",
    [RM_ACT_PUBLISH] = "publish",
};

static const char *const scope_ids[] = {
    [RM_SCOPE_GLOBAL] = "global", [RM_SCOPE_PRIVATE] = "private"};
#define SCOPE_SLOTS (sizeof scope_ids / sizeof scope_ids[0])

/* Enum values arrive from callers and, through parsing, from requests:
 * range-check every one before indexing. */
static bool role_ok(enum rm_role r) { return r > RM_ROLE_NONE && (unsigned)r < RM_ROLE_COUNT; }
static bool module_ok(enum rm_module m) { return (unsigned)m < RM_MOD_COUNT; }
static bool action_ok(enum rm_action a) { return (unsigned)a < RM_ACT_COUNT; }

bool rm_rbac_applies(enum rm_module module, enum rm_action action) {
  return module_ok(module) && action_ok(action) && table[module][action].what;
}

bool rm_rbac_allowed(enum rm_role role, enum rm_module module, enum rm_action action) {
  return role_ok(role) && rm_rbac_applies(module, action) &&
         (table[module][action].roles & BIT(role));
}

bool rm_rbac_visible(enum rm_role role, const char *user_id, const char *owner_id,
                     enum rm_scope scope) {
  if (!role_ok(role)) return false;
  if (scope == RM_SCOPE_GLOBAL || role == RM_ROLE_ADMIN) return true;
  return user_id && owner_id && !strcmp(user_id, owner_id);
}

bool rm_rbac_allowed_on(enum rm_role role, const char *user_id, enum rm_module module,
                        enum rm_action action, const char *owner_id, enum rm_scope scope) {
  return rm_rbac_allowed(role, module, action) && rm_rbac_visible(role, user_id, owner_id, scope);
}

/* Index of s in ids[0..n) (NULL slots skipped), or -1. */
static int lookup(const char *const *ids, size_t n, const char *s) {
  if (!s) return -1;
  for (size_t i = 0; i < n; i++)
    if (ids[i] && !strcmp(ids[i], s)) return (int)i;
  return -1;
}

int rm_rbac_role_parse(const char *s, enum rm_role *out) {
  int i = lookup(role_ids, RM_ROLE_COUNT, s);
  if (i < 0) return RM_EINVAL;
  *out = (enum rm_role)i;
  return 0;
}

int rm_rbac_module_parse(const char *s, enum rm_module *out) {
  int i = lookup(module_ids, RM_MOD_COUNT, s);
  if (i < 0) return RM_EINVAL;
  *out = (enum rm_module)i;
  return 0;
}

int rm_rbac_action_parse(const char *s, enum rm_action *out) {
  int i = lookup(action_ids, RM_ACT_COUNT, s);
  if (i < 0) return RM_EINVAL;
  *out = (enum rm_action)i;
  return 0;
}

int rm_rbac_scope_parse(const char *s, enum rm_scope *out) {
  int i = lookup(scope_ids, SCOPE_SLOTS, s);
  if (i < 0) return RM_EINVAL;
  *out = (enum rm_scope)i;
  return 0;
}

const char *rm_rbac_role_name(enum rm_role r) { return role_ok(r) ? role_ids[r] : NULL; }
const char *rm_rbac_role_title(enum rm_role r) { return role_ok(r) ? role_titles[r] : NULL; }
const char *rm_rbac_module_name(enum rm_module m) { return module_ok(m) ? module_ids[m] : NULL; }
const char *rm_rbac_action_name(enum rm_action a) { return action_ok(a) ? action_ids[a] : NULL; }
const char *rm_rbac_scope_name(enum rm_scope s) {
  return (unsigned)s < SCOPE_SLOTS ? scope_ids[s] : NULL;
}

int rm_rbac_markdown(FILE *out) {
  fputs("<!-- Generated by `restmon permissions` from core/auth/rbac.c; do not edit.\n"
        "     tests/unit/test_auth.c fails when this file and the table differ. -->\n\n"
        "# Permissions\n\n"
        "What each role may do, by module and action. An action missing from a\n"
        "module's rows does not apply to it and is refused to every role.\n\n"
        "Also checked, outside this table:\n\n"
        "- **Private objects** are seen and acted on only by their owner and by\n"
        "  admins; admins see their metadata and may change their owner or scope\n"
        "  (audited). Nobody ever sees a secret's value.\n"
        "- **State**: only a finished run can be rerun and only a failed run\n"
        "  resumed; a run in the wrong state is a 409, not a 403.\n"
        "- **One's own account**: every role may log out and change its own\n"
        "  password.\n"
        "- **API keys** are private to the user who owns them and act with that\n"
        "  user's role; an admin may create one for a read-only user.\n\n",
        out);
  fputs("| module | action | what it allows |", out);
  for (int r = RM_ROLE_ADMIN; r < RM_ROLE_COUNT; r++) fprintf(out, " %s |", role_ids[r]);
  fputs("\n|---|---|---|", out);
  for (int r = RM_ROLE_ADMIN; r < RM_ROLE_COUNT; r++) fputs(":-:|", out);
  fputc('\n', out);
  for (int m = 0; m < RM_MOD_COUNT; m++)
    for (int a = 0; a < RM_ACT_COUNT; a++) {
      const cell *c = &table[m][a];
      if (!c->what) continue;
      fprintf(out, "| %s | %s | %s |", module_ids[m], action_ids[a], c->what);
      for (int r = RM_ROLE_ADMIN; r < RM_ROLE_COUNT; r++)
        fputs(c->roles & BIT(r) ? " yes |" : " - |", out);
      fputc('\n', out);
    }
  fputs("\nRoles: ", out);
  for (int r = RM_ROLE_ADMIN; r < RM_ROLE_COUNT; r++)
    fprintf(out, "%s`%s` (%s)", r > RM_ROLE_ADMIN ? ", " : "", role_ids[r], role_titles[r]);
  fputs(".\n", out);
  return ferror(out) ? RM_EIO : 0;
}
