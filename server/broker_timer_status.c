/*
 * LSMQ_GET_TIMER_STATUS (lsmq's own request, protocol/include/codes.h):
 * how many delayed messages wait in this broker's store, in all and per
 * topic, for `mqadmin timerStatus`. Upstream has no such request (its
 * runtime info gives per-level offsets of SCHEDULE_TOPIC_XXXX instead).
 *
 * Request ext field `topic` (optional): only that topic (TOPIC_NOT_EXIST
 * when the store has none by that name). Body:
 *   {"pendingTotal":N,"topics":[{"topic":"T","pending":n},...]}
 * listing, without a topic, every topic with pending messages, by name.
 * Counts come from the engine's counters ("P"): no scan.
 */
#include <stdio.h>
#include <string.h>

#include "broker_internal.h"

static json_t *topic_entry(const char *name, uint64_t pending)
{
    json_t *o = json_object();
    json_object_set_new(o, "topic", broker_json_str(name));
    json_object_set_new(o, "pending", json_integer((json_int_t)pending));
    return o;
}

static void on_get_timer_status(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_ctx *bx = ctx;
    engine *e = bx->engine;
    const char *topic = proto_cmd_get(req, "topic");
    json_t *list = json_array();
    if (topic && *topic) {
        engine_topic_config tc;
        if (engine_topic_get(e, topic, strlen(topic), &tc) != 0) {
            json_decref(list);
            broker_reply_codef(c, req->opaque, RS_TOPIC_NOT_EXIST, "topic[%.200s] not exist",
                               topic);
            return;
        }
        json_array_append_new(list, topic_entry(tc.name, engine_timer_pending(e, tc.topic_id)));
    } else {
        engine_view *v = NULL;
        engine_topic_config *all = NULL;
        size_t n = 0;
        if (engine_view_open(e, &v) == 0 && engine_view_topics(v, &all, &n) == 0) {
            for (size_t i = 0; i < n; i++) {
                uint64_t pending = engine_timer_pending(e, all[i].topic_id);
                if (pending > 0)
                    json_array_append_new(list, topic_entry(all[i].name, pending));
            }
        }
        engine_free(all);
        engine_view_close(v);
    }
    json_t *body = json_object();
    json_object_set_new(body, "pendingTotal",
                        json_integer((json_int_t)engine_timer_pending_total(e)));
    json_object_set_new(body, "topics", list);
    broker_reply_json(c, req->opaque, body);
}

/* Stateless: the handler gets the shared context. */
void broker_timer_status_register(broker_modules *m)
{
    server_register(m->ctx.srv, RC_LSMQ_GET_TIMER_STATUS, on_get_timer_status, &m->ctx);
}
