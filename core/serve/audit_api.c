/* The audit trail, for admins: GET /audit, newest first, filtered by
 * actor, action, object_kind, object_id and time (from inclusive, to
 * exclusive), paged and sorted (-at, at, actor, action). Entries are
 * written by every change (rm_hctx_audit) with secret values already
 * masked; old ones go by the global config's audit_retention_days. */
#include "serve/admin.h"

static void listed(void *ud, int err, const char *errmsg, json_t *res) {
  rm__serve_list_answer(ud, err, errmsg, res, NULL); /* a bad from, to or sort is a 400 */
}

static void h_list(rm_hctx *c) {
  static const char *const known[] = {"actor", "action", "object_kind", "object_id", "from", "to", "sort", NULL};
  json_t *q = rm__serve_list_query(c, known, 50);
  if (!q) return;
  rm_store_audit_list(c->s->store, q, listed, c);
  json_decref(q);
}

int rm_serve_audit_routes(rm_serve *s) {
  static const rm_route_def defs[] = {
      {"GET", "/api/v1/audit", h_list, RM_ACCESS_ROLE, RM_MOD_AUDIT, RM_ACT_VIEW},
  };
  return rm_serve_add_routes(s, defs, sizeof defs / sizeof defs[0]);
}
