/*
 * Requests the replication end-to-end tests make of masters and replicas,
 * each over a fresh connection to a broker's port: its HA status, whether
 * a replica has caught up, consumer offsets, queue ends and how many
 * messages its pulls handed over. They fail the
 * running cmocka test rather than return errors. Header-only (static
 * inline); include it after <cmocka.h>.
 */
#ifndef LSMQ_TEST_E2E_REPL_H
#define LSMQ_TEST_E2E_REPL_H

#include <stdbool.h>
#include <unistd.h>

#include "e2e_msg.h"
#include "e2e_reply.h"
#include "e2e_time.h"

#define E2E_RC_GET_BROKER_HA_STATUS 907
#define E2E_RS_FLUSH_SLAVE_TIMEOUT 12

/* Send req (taken) to the broker on port over a new connection. */
static inline e2e_reply e2e_call_port(int port, proto_cmd *req, const void *body, size_t len)
{
    int fd = wire_connect(port, 10000);
    assert_true(fd >= 0);
    e2e_reply r = e2e_call(fd, req, body, len);
    close(fd);
    return r;
}

/* GET_BROKER_HA_STATUS of the broker on port, as JSON (decref it). */
static inline json_t *e2e_ha_status(int port)
{
    e2e_reply r = e2e_call_port(port, proto_cmd_request(E2E_RC_GET_BROKER_HA_STATUS), NULL, 0);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    json_t *j = e2e_body_json(&r);
    e2e_reply_free(&r);
    return j;
}

static inline int64_t e2e_jint(json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

/*
 * Wait up to wait_ms until the replica streams from its master and has
 * applied everything the master committed (HA status of both sides).
 */
static inline bool e2e_wait_caught_up(int master_port, int replica_port, int wait_ms)
{
    for (int waited = 0; waited < wait_ms; waited += 50) {
        json_t *m = e2e_ha_status(master_port);
        json_t *r = e2e_ha_status(replica_port);
        json_t *c = json_object_get(r, "haClientRuntimeInfo");
        bool done = json_is_true(json_object_get(c, "connected")) &&
                    e2e_jint(c, "appliedSequence") >= e2e_jint(m, "masterSequence");
        json_decref(m);
        json_decref(r);
        if (done)
            return true;
        e2e_sleep_ms(50);
    }
    return false;
}

/* UPDATE_CONSUMER_OFFSET, answered SUCCESS. */
static inline void e2e_commit_offset(int port, const char *group, const char *topic, int queue,
                                     int64_t offset)
{
    proto_cmd *u = proto_cmd_request(RC_UPDATE_CONSUMER_OFFSET);
    proto_cmd_set(u, "consumerGroup", group);
    proto_cmd_set(u, "topic", topic);
    proto_cmd_set_i64(u, "queueId", queue);
    proto_cmd_set_i64(u, "commitOffset", offset);
    e2e_reply r = e2e_call_port(port, u, NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
}

/* QUERY_CONSUMER_OFFSET: the offset, or -1 when the answer is not SUCCESS. */
static inline int64_t e2e_query_offset(int port, const char *group, const char *topic, int queue)
{
    proto_cmd *q = proto_cmd_request(RC_QUERY_CONSUMER_OFFSET);
    proto_cmd_set(q, "consumerGroup", group);
    proto_cmd_set(q, "topic", topic);
    proto_cmd_set_i64(q, "queueId", queue);
    e2e_reply r = e2e_call_port(port, q, NULL, 0);
    int64_t off = r.cmd->code == RS_SUCCESS ? e2e_i64(r.cmd, "offset") : -1;
    e2e_reply_free(&r);
    return off;
}

/* GET_MAX_OFFSET of a queue. */
static inline int64_t e2e_max_offset(int port, const char *topic, int queue)
{
    proto_cmd *q = proto_cmd_request(RC_GET_MAX_OFFSET);
    proto_cmd_set(q, "topic", topic);
    proto_cmd_set_i64(q, "queueId", queue);
    e2e_reply r = e2e_call_port(port, q, NULL, 0);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    int64_t off = e2e_i64(r.cmd, "offset");
    e2e_reply_free(&r);
    return off;
}

/* msgGetTotalTodayNow of GET_BROKER_RUNTIME_INFO: the messages pulls handed over. */
static inline uint64_t e2e_gets_total(int port)
{
    e2e_reply r = e2e_call_port(port, proto_cmd_request(RC_GET_BROKER_RUNTIME_INFO), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    json_t *body = e2e_body_json(&r);
    const char *v =
        json_string_value(json_object_get(json_object_get(body, "table"), "msgGetTotalTodayNow"));
    assert_non_null(v);
    uint64_t n = strtoull(v, NULL, 10);
    json_decref(body);
    e2e_reply_free(&r);
    return n;
}

#endif
