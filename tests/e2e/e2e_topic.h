/*
 * Topics for the end-to-end tests that drive a broker through liblsmq:
 * clients find a topic through the name server, so a test creates it at the
 * broker and then waits until the broker's registration carries it.
 * Header-only (static inline); include it after <cmocka.h>.
 */
#ifndef LSMQ_TEST_E2E_TOPIC_H
#define LSMQ_TEST_E2E_TOPIC_H

#include "e2e_msg.h"
#include "e2e_procs.h"
#include "e2e_reply.h"

/*
 * Create topic at b with `queues` read and write queues (read-write), over
 * a fresh connection; fails the test if the broker refuses. Then wait up to
 * 10 s until b's name server routes it: the milliseconds that took, or -1.
 */
static inline long e2e_topic_create_routed(const e2e_broker *b, const char *topic, int queues)
{
    int fd = wire_connect(b->proc.port, 10000);
    assert_true(fd >= 0);
    e2e_reply r = e2e_call(fd, e2e_create_topic(topic, queues, queues, 6), NULL, 0);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    e2e_reply_free(&r);
    close(fd);
    return e2e_wait_route(b->namesrv_port, topic, RS_SUCCESS, 10000);
}

#endif
