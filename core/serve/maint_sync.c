/* Maintenance windows that suppress checks, told to the scheduler: the
 * scheduler (schedules.c) skips the fires of a check monitor until the
 * time rm_serve_sched_suppress gave it. A pass lists the windows, keeps
 * those in force with suppress_checks, collects the monitors they name
 * and the check monitors carrying one of their object_tags, and gives
 * each the end of its window's current period (the latest when several
 * cover it). What an earlier pass suppressed and this one does not is
 * lifted at once (a window deleted, disabled or shortened). Passes run
 * shortly after start, every RM_MAINT_SYNC_TICKS ticks of the escalation
 * clock (recurring windows open by themselves), and after each write of
 * a maintenance window or a monitor (rm_serve_maintenance_changed). */
#include <stdlib.h>
#include <string.h>

#include "serve/notify_int.h"
#include "util/log.h"

#define RM_MAINT_SYNC_TICKS 10
#define PAGE 500

typedef struct pass {
  rm_serve *s;
  json_t *want; /* {monitor id: until_ms} */
  json_t *tags; /* [{"tag", "until"}] still to list */
  size_t next;
  int page;
} pass;

static void want(json_t *w, const char *id, json_int_t until) {
  if (id && json_integer_value(json_object_get(w, id)) < until) json_object_set_new(w, id, json_integer(until));
}

static void finish(pass *p) {
  struct rm_serve_notify *ns = p->s->notify;
  const char *id;
  json_t *v;
  json_object_foreach(p->want, id, v) rm_serve_sched_suppress(p->s, id, json_integer_value(v));
  json_object_foreach(ns->held, id, v) if (!json_object_get(p->want, id)) rm_serve_sched_suppress(p->s, id, 0);
  json_decref(ns->held);
  ns->held = p->want;
  json_decref(p->tags);
  free(p);
  ns->syncing = false;
  if (ns->resync && !ns->closing) {
    ns->resync = false;
    rm__maint_sync(ns->s);
  }
}

static void list_tag(pass *p);

static void tagged(void *ud, int err, const char *errmsg, json_t *res) {
  pass *p = ud;
  const json_t *t = json_array_get(p->tags, p->next);
  size_t i;
  json_t *m;
  if (err) rm_log_warn("maintenance", "listing monitors tagged %s failed: %s",
                       json_string_value(json_object_get(t, "tag")), errmsg);
  json_array_foreach(json_object_get(res, "items"), i, m) {
    const char *type = json_string_value(json_object_get(m, "type"));
    if (type && strcmp(type, "check") == 0)
      want(p->want, json_string_value(json_object_get(m, "id")), json_integer_value(json_object_get(t, "until")));
  }
  if (!err && p->page < json_integer_value(json_object_get(res, "total_pages"))) p->page++;
  else p->next++, p->page = 1;
  json_decref(res);
  list_tag(p);
}

static void list_tag(pass *p) {
  if (p->next >= json_array_size(p->tags) || p->s->notify->closing) {
    finish(p);
    return;
  }
  json_t *q = json_pack("{s:O, s:i, s:i}", "tag", json_object_get(json_array_get(p->tags, p->next), "tag"), "page",
                        p->page, "page_size", PAGE);
  rm_store_doc_list(p->s->store, "monitor", q, tagged, p);
  json_decref(q);
}

static void windows_listed(void *ud, int err, const char *errmsg, json_t *res) {
  pass *p = ud;
  struct rm_serve_notify *ns = p->s->notify;
  int64_t now = rm__serve_now_ms();
  size_t i, k;
  json_t *w, *v;
  if (err) {
    rm_log_warn("maintenance", "listing maintenance windows failed: %s", errmsg);
    json_decref(p->want);
    p->want = json_deep_copy(ns->held); /* keep what holds until the next pass */
  }
  json_array_foreach(json_object_get(res, "items"), i, w) {
    int64_t until = json_is_true(json_object_get(w, "suppress_checks")) ? rm__maint_until(ns->tz, w, now) : 0;
    if (until <= 0) continue;
    json_array_foreach(json_object_get(w, "monitors"), k, v) want(p->want, json_string_value(v), until);
    json_array_foreach(json_object_get(w, "object_tags"), k, v)
        json_array_append_new(p->tags, json_pack("{s:O, s:I}", "tag", v, "until", (json_int_t)until));
  }
  json_decref(res);
  list_tag(p);
}

void rm__maint_sync(rm_serve *s) {
  struct rm_serve_notify *ns = s->notify;
  if (!ns || ns->closing) return;
  if (ns->syncing) {
    ns->resync = true;
    return;
  }
  pass *p = calloc(1, sizeof *p);
  json_t *q = json_pack("{s:i}", "page_size", PAGE);
  if (!p || !q || !(p->want = json_object()) || !(p->tags = json_array())) {
    if (p) json_decref(p->want);
    free(p);
    json_decref(q);
    return;
  }
  p->s = s;
  p->page = 1;
  ns->syncing = true;
  rm_store_doc_list(s->store, "maintenance", q, windows_listed, p);
  json_decref(q);
}

void rm_serve_maintenance_changed(rm_serve *s, const char *kind) {
  if (kind && (strcmp(kind, "maintenance") == 0 || strcmp(kind, "monitor") == 0)) rm__maint_sync(s);
}

void rm__maint_tick(rm_serve *s) {
  struct rm_serve_notify *ns = s->notify;
  if (ns->ticks++ % RM_MAINT_SYNC_TICKS == 0) rm__maint_sync(s);
}
