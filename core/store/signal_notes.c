/* Notes on signal transitions: an operator explains a transition ("the
 * payment provider had a planned outage"). The notes live in the
 * transition's body, under "annotations", so the timeline and the
 * signal's last_transition show them without another query. */
#include <string.h>

#include "store/store_internal.h"
#include "util/err.h"

static int note_run(rm__conn *c, rm__job *j) {
  const char *id = rm__str(j->args, "object_id");
  json_int_t seq = json_integer_value(json_object_get(j->args, "seq"));
  json_t *row = NULL;
  int rc = rm__dbfail(j, c,
                      rm__q1(c, &row, "SELECT body FROM signal_transitions WHERE object_id = $1 AND seq = $2",
                             json_pack("[sI]", id, seq)));
  if (rc == 0 && !row) rc = rm__fail(j, RM_ENOTFOUND, "signal %s: no transition %lld", id, (long long)seq);
  json_t *body = rc == 0 ? json_object_get(row, "body") : NULL;
  if (rc == 0 && !json_is_object(body)) rc = rm__fail(j, RM_EIO, "signal %s: transition %lld has no body", id, (long long)seq);
  if (rc == 0) {
    json_t *notes = json_object_get(body, "annotations");
    if (!json_is_array(notes)) json_object_set_new(body, "annotations", notes = json_array());
    json_array_append_new(notes, json_pack("{s:s?, s:O, s:O}", "author", rm__str(j->args, "author"), "text",
                                           json_object_get(j->args, "text"), "at", json_object_get(j->args, "at")));
    rc = rm__dbfail(j, c,
                    rm__qx(c, NULL, "UPDATE signal_transitions SET body = $3 WHERE object_id = $1 AND seq = $2",
                           json_pack("[sIo]", id, seq, rm__json_text(body))));
  }
  if (rc == 0) j->result = json_incref(body);
  json_decref(row);
  return rc;
}

static const rm__op note_op = {"signal_note", RM__OP_WRITE, note_run};

void rm_store_signal_note(rm_store *s, const char *object_id, int64_t seq, const char *author, const char *text,
                          const char *at, rm_store_cb cb, void *ud) {
  rm__submit(s, &note_op,
             json_pack("{s:s, s:I, s:s?, s:s, s:s}", "object_id", object_id, "seq", (json_int_t)seq, "author", author,
                       "text", text, "at", at),
             cb, ud);
}
