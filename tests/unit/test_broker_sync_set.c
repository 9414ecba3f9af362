/*
 * test_broker_sync_set: a master's sync state set bookkeeping in
 * controller mode (server/broker_sync_set.h), fed by hand.
 *
 *  - a streaming in-sync replica first enters the ack set as a candidate,
 *    and is proposed only once it has acknowledged what the master had
 *    written when it entered;
 *  - a candidate that goes away leaves the ack set without a proposal;
 *  - a member that stops catching up is proposed out only after
 *    haMaxTimeSlaveNotCatchup, and stays in the ack set until the smaller
 *    set is committed;
 *  - one proposal at a time; malformed id lists are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker_sync_set.h"

#define R2 "127.0.0.1:2002"
#define R3 "127.0.0.1:3003"
#define NOT_CATCHUP_MS 3000

static void rep(broker_replica_state *r, const char *addr, uint64_t acked, bool streaming,
                bool in_sync)
{
    memset(r, 0, sizeof *r);
    strcpy(r->addr, addr);
    r->acked_seq = acked;
    r->streaming = streaming;
    r->in_sync = in_sync;
}

static void setup_master(broker_sync_set *s)
{
    broker_sync_set_init(s, 1, NOT_CATCHUP_MS);
    broker_sync_set_registry(s, "1=127.0.0.1:1001,2=" R2 ",3=" R3);
    broker_sync_set_committed(s, "1", 0);
}

static bool acks_wait_for(const broker_sync_set *s, const char *addr)
{
    const char *addrs[SSS_MAX];
    size_t n = broker_sync_set_ack_addrs(s, addrs, SSS_MAX);
    for (size_t i = 0; i < n; i++)
        if (strcmp(addrs[i], addr) == 0)
            return true;
    return false;
}

static void test_candidate_joins_once_caught_up(void **state)
{
    broker_sync_set s;
    setup_master(&s);
    broker_replica_state r[1];
    int64_t prop[SSS_MAX];
    size_t n = 0;
    assert_false(acks_wait_for(&s, R2));

    rep(&r[0], R2, 90, true, true);
    /* A candidate, not a member, but sends wait for it already. */
    assert_false(broker_sync_set_review(&s, r, 1, 100, 1000, prop, &n));
    assert_true(acks_wait_for(&s, R2));
    broker_sync_set_arm(&s, 120); /* what was written once it waits */

    rep(&r[0], R2, 119, true, true);
    assert_false(broker_sync_set_review(&s, r, 1, 130, 2000, prop, &n));
    rep(&r[0], R2, 120, true, true);
    assert_true(broker_sync_set_review(&s, r, 1, 140, 3000, prop, &n));
    assert_int_equal(n, 2);
    assert_int_equal(prop[0], 1);
    assert_int_equal(prop[1], 2);
    /* One at a time. */
    assert_false(broker_sync_set_review(&s, r, 1, 150, 3500, prop, &n));
    broker_sync_set_proposal_done(&s);
    broker_sync_set_committed(&s, "1,2", 4000);
    assert_true(acks_wait_for(&s, R2));
    assert_false(broker_sync_set_review(&s, r, 1, 150, 4500, prop, &n));
}

static void test_candidate_gone_leaves_ack_set(void **state)
{
    broker_sync_set s;
    setup_master(&s);
    broker_replica_state r[2];
    int64_t prop[SSS_MAX];
    size_t n = 0;
    rep(&r[0], R2, 10, true, true);
    rep(&r[1], R3, 5, true, false); /* too far behind: not a candidate */
    assert_false(broker_sync_set_review(&s, r, 2, 100, 1000, prop, &n));
    assert_true(acks_wait_for(&s, R2));
    assert_false(acks_wait_for(&s, R3));
    broker_sync_set_arm(&s, 100);
    rep(&r[0], R2, 10, false, false); /* fetching a checkpoint now */
    assert_false(broker_sync_set_review(&s, r, 2, 100, 2000, prop, &n));
    assert_false(acks_wait_for(&s, R2));
}

static void test_member_lagging_is_proposed_out(void **state)
{
    broker_sync_set s;
    broker_sync_set_init(&s, 1, NOT_CATCHUP_MS);
    broker_sync_set_registry(&s, "1=127.0.0.1:1001,2=" R2 ",3=" R3);
    broker_sync_set_committed(&s, "1,2,3", 0);
    broker_replica_state r[2];
    int64_t prop[SSS_MAX];
    size_t n = 0;
    rep(&r[0], R2, 100, true, true);
    rep(&r[1], R3, 100, true, true);
    assert_false(broker_sync_set_review(&s, r, 2, 100, 1000, prop, &n));
    /* R3 stops acknowledging at 100; R2 keeps up. */
    rep(&r[0], R2, 200, true, true);
    assert_false(broker_sync_set_review(&s, r, 2, 200, 2000, prop, &n));
    rep(&r[0], R2, 300, true, true);
    assert_false(broker_sync_set_review(&s, r, 2, 300, 3000, prop, &n));
    /* R3 had what the master wrote a review earlier at 2000; 3000 ms later it goes. */
    rep(&r[0], R2, 400, true, true);
    assert_false(broker_sync_set_review(&s, r, 2, 400, 5000, prop, &n));
    rep(&r[0], R2, 500, true, true);
    assert_true(broker_sync_set_review(&s, r, 2, 500, 5001, prop, &n));
    assert_int_equal(n, 2);
    assert_int_equal(prop[0], 1);
    assert_int_equal(prop[1], 2);
    /* Until the controller commits, sends still wait for R3. */
    assert_true(acks_wait_for(&s, R3));
    broker_sync_set_proposal_done(&s);
    broker_sync_set_committed(&s, "1,2", 5100);
    assert_false(acks_wait_for(&s, R3));
    assert_true(acks_wait_for(&s, R2));
}

static void test_gone_member_is_proposed_out(void **state)
{
    broker_sync_set s;
    broker_sync_set_init(&s, 1, NOT_CATCHUP_MS);
    broker_sync_set_registry(&s, "1=127.0.0.1:1001,2=" R2);
    broker_sync_set_committed(&s, "1,2", 0);
    int64_t prop[SSS_MAX];
    size_t n = 0;
    assert_false(broker_sync_set_review(&s, NULL, 0, 10, 1000, prop, &n));
    assert_true(broker_sync_set_review(&s, NULL, 0, 10, 3001, prop, &n));
    assert_int_equal(n, 1);
    assert_int_equal(prop[0], 1);
}

static void test_parse_ids(void **state)
{
    int64_t ids[4];
    assert_int_equal(broker_sync_set_parse_ids("1,2,3", ids, 4), 3);
    assert_int_equal(ids[2], 3);
    assert_int_equal(broker_sync_set_parse_ids("", ids, 4), 0);
    assert_int_equal(broker_sync_set_parse_ids("1,x", ids, 4), -1);
    assert_int_equal(broker_sync_set_parse_ids("1;2", ids, 4), -1);
    assert_int_equal(broker_sync_set_parse_ids("-1", ids, 4), -1);
    assert_int_equal(broker_sync_set_parse_ids("1,2,3,4,5", ids, 4), -1);
    char text[32];
    broker_sync_set_format(ids, 2, text, sizeof text);
    assert_string_equal(text, "1,2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_candidate_joins_once_caught_up),
        cmocka_unit_test(test_candidate_gone_leaves_ack_set),
        cmocka_unit_test(test_member_lagging_is_proposed_out),
        cmocka_unit_test(test_gone_member_is_proposed_out),
        cmocka_unit_test(test_parse_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
