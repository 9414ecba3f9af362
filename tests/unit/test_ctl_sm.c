/*
 * The controller's state machine alone (controller/sm.c): registration,
 * elections and the epoch, sync state set changes and their fencing, and
 * that a refused command changes nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"
#include "errors.h"
#include "sm.h"

static int reg(ctl_sm *sm, const char *name, int64_t id, const char *addr)
{
    ctl_cmd c;
    assert_int_equal(ctl_cmd_register(&c, name, id, addr), 0);
    return ctl_sm_apply(sm, &c, NULL);
}

static int elect(ctl_sm *sm, const char *name, int64_t candidate, ctl_result *res)
{
    ctl_cmd c;
    assert_int_equal(ctl_cmd_elect(&c, name, candidate), 0);
    return ctl_sm_apply(sm, &c, res);
}

static int alter(ctl_sm *sm, const char *name, int64_t master, uint64_t epoch,
                 const int64_t *ids, size_t n)
{
    ctl_cmd c;
    assert_int_equal(ctl_cmd_alter_sync(&c, name, master, epoch, ids, n), 0);
    return ctl_sm_apply(sm, &c, NULL);
}

/* The state's encoding, to compare whole states. */
static char *state_bytes(const ctl_sm *sm, size_t *len)
{
    uint8_t *data;
    ctl_state_encode(sm, &data, len);
    return (char *)data;
}

static void assert_unchanged(const ctl_sm *sm, const char *before, size_t before_len)
{
    size_t len;
    char *now = state_bytes(sm, &len);
    assert_int_equal(len, before_len);
    assert_memory_equal(now, before, len);
    free(now);
}

static void test_register(void **state)
{
    ctl_sm *sm = ctl_sm_create();
    assert_null(ctl_sm_find(sm, "b"));
    assert_int_equal(reg(sm, "b", 2, "10.0.0.2:10911"), 0);
    assert_int_equal(reg(sm, "b", 1, "10.0.0.1:10911"), 0);
    assert_int_equal(reg(sm, "a", 7, "10.0.0.7:10911"), 0);

    const ctl_group *g = ctl_sm_find(sm, "b");
    assert_non_null(g);
    assert_int_equal(g->epoch, 0);
    assert_int_equal(g->master_id, CTL_NO_BROKER);
    assert_string_equal(g->master_addr, "");
    assert_int_equal(g->n_brokers, 2);
    assert_int_equal(g->brokers[0].id, 2); /* registration order */
    assert_int_equal(g->brokers[1].id, 1);
    assert_int_equal(g->n_sync, 0);

    /* Again with a new address: updated in place, not added. */
    assert_int_equal(reg(sm, "b", 2, "10.0.0.22:10911"), 0);
    g = ctl_sm_find(sm, "b");
    assert_int_equal(g->n_brokers, 2);
    assert_string_equal(g->brokers[0].addr, "10.0.0.22:10911");

    /* Groups in name order. */
    assert_int_equal(ctl_sm_count(sm), 2);
    assert_string_equal(ctl_sm_at(sm, 0)->name, "a");
    assert_string_equal(ctl_sm_at(sm, 1)->name, "b");
    assert_null(ctl_sm_at(sm, 2));

    assert_int_equal(reg(sm, "b", -1, "x:1"), LSMQ_EINVAL);
    for (int64_t id = 10; id < 10 + CTL_BROKERS_MAX - 2; id++)
        assert_int_equal(reg(sm, "b", id, "x:1"), 0);
    assert_int_equal(reg(sm, "b", 99, "x:1"), LSMQ_EINVAL); /* full */
    assert_int_equal(reg(sm, "b", 10, "y:1"), 0);           /* known: still fine */
    ctl_sm_destroy(sm);
}

static void test_first_election(void **state)
{
    ctl_sm *sm = ctl_sm_create();
    ctl_result res;
    assert_int_equal(elect(sm, "b", CTL_NO_BROKER, &res), LSMQ_ENOTFOUND);
    reg(sm, "b", 3, "h3:1");
    reg(sm, "b", 1, "h1:1");
    /* No master yet: only the first registered broker. */
    assert_int_equal(elect(sm, "b", 1, &res), LSMQ_EREFUSED);
    assert_int_equal(res.epoch, 0);
    assert_int_equal(res.master_id, CTL_NO_BROKER);
    assert_int_equal(elect(sm, "b", 9, &res), LSMQ_ENOTFOUND);
    assert_int_equal(elect(sm, "b", CTL_NO_BROKER, &res), 0);
    assert_int_equal(res.epoch, 1);
    assert_int_equal(res.master_id, 3);
    const ctl_group *g = ctl_sm_find(sm, "b");
    assert_int_equal(g->master_id, 3);
    assert_string_equal(g->master_addr, "h3:1");
    assert_int_equal(g->n_sync, 1);
    assert_int_equal(g->sync[0], 3);
    ctl_sm_destroy(sm);
}

static void test_elect_from_sync_set_only(void **state)
{
    ctl_sm *sm = ctl_sm_create();
    ctl_result res;
    reg(sm, "b", 0, "h0:1");
    reg(sm, "b", 1, "h1:1");
    reg(sm, "b", 2, "h2:1");
    assert_int_equal(elect(sm, "b", 0, &res), 0);
    /* The set is {0}: nobody else may take over. */
    assert_int_equal(elect(sm, "b", 1, &res), LSMQ_EREFUSED);
    assert_int_equal(elect(sm, "b", CTL_NO_BROKER, &res), LSMQ_EREFUSED);
    assert_int_equal(res.epoch, 1);
    assert_int_equal(res.master_id, 0);

    const int64_t set[] = {2, 0};
    assert_int_equal(alter(sm, "b", 0, 1, set, 2), 0);
    const ctl_group *g = ctl_sm_find(sm, "b");
    assert_int_equal(g->n_sync, 2);
    assert_int_equal(g->sync[0], 0); /* kept ascending */
    assert_int_equal(g->sync[1], 2);

    assert_int_equal(elect(sm, "b", 1, &res), LSMQ_EREFUSED); /* not in the set */
    assert_int_equal(elect(sm, "b", CTL_NO_BROKER, &res), 0);  /* any: not the old master */
    assert_int_equal(res.master_id, 2);
    assert_int_equal(res.epoch, 2);
    g = ctl_sm_find(sm, "b");
    assert_string_equal(g->master_addr, "h2:1");
    assert_int_equal(g->n_sync, 1); /* the new master alone */
    assert_int_equal(g->sync[0], 2);

    /* The master itself, named, is re-elected with a new epoch. */
    assert_int_equal(elect(sm, "b", 2, &res), 0);
    assert_int_equal(res.epoch, 3);
    assert_int_equal(res.master_id, 2);
    ctl_sm_destroy(sm);
}

static void test_alter_fencing(void **state)
{
    ctl_sm *sm = ctl_sm_create();
    ctl_result res;
    reg(sm, "b", 0, "h0:1");
    reg(sm, "b", 1, "h1:1");
    reg(sm, "b", 2, "h2:1");
    const int64_t one[] = {1};
    assert_int_equal(alter(sm, "b", 0, 0, one, 1), LSMQ_EREFUSED); /* no master yet */
    assert_int_equal(elect(sm, "b", CTL_NO_BROKER, &res), 0);
    const int64_t all[] = {0, 1, 2};
    assert_int_equal(alter(sm, "b", 0, 1, all, 3), 0);
    assert_int_equal(elect(sm, "b", 1, &res), 0); /* epoch 2, master 1, set {1} */

    size_t len;
    char *before = state_bytes(sm, &len);
    /* The old master with its old epoch: fenced. */
    assert_int_equal(alter(sm, "b", 0, 1, all, 3), LSMQ_ESTALE);
    /* The new master with the old epoch: fenced too. */
    assert_int_equal(alter(sm, "b", 1, 1, all, 3), LSMQ_ESTALE);
    /* Not the master, current epoch. */
    assert_int_equal(alter(sm, "b", 0, 2, all, 3), LSMQ_EREFUSED);
    /* An epoch from the future. */
    assert_int_equal(alter(sm, "b", 1, 3, all, 3), LSMQ_EREFUSED);
    /* A set without the master, with a stranger, with a duplicate, empty. */
    const int64_t no_master[] = {0, 2};
    assert_int_equal(alter(sm, "b", 1, 2, no_master, 2), LSMQ_EREFUSED);
    const int64_t stranger[] = {1, 5};
    assert_int_equal(alter(sm, "b", 1, 2, stranger, 2), LSMQ_ENOTFOUND);
    const int64_t dup[] = {1, 2, 2};
    assert_int_equal(alter(sm, "b", 1, 2, dup, 3), LSMQ_EINVAL);
    assert_int_equal(alter(sm, "b", 1, 2, NULL, 0), LSMQ_EINVAL);
    assert_int_equal(alter(sm, "nope", 1, 2, all, 3), LSMQ_ENOTFOUND);
    assert_unchanged(sm, before, len);
    free(before);

    assert_int_equal(alter(sm, "b", 1, 2, all, 3), 0);
    assert_int_equal(ctl_sm_find(sm, "b")->n_sync, 3);
    ctl_sm_destroy(sm);
}

/* An election decided at one epoch does nothing once the epoch moved. */
static void test_elect_compare_epoch(void **state)
{
    ctl_sm *sm = ctl_sm_create();
    ctl_result res;
    ctl_cmd c;
    reg(sm, "b", 1, "h1:1");
    reg(sm, "b", 2, "h2:1");
    assert_int_equal(ctl_cmd_elect_at(&c, "b", CTL_NO_BROKER, 1), 0);
    assert_int_equal(ctl_sm_apply(sm, &c, &res), LSMQ_ESTALE); /* epoch is 0 */
    assert_int_equal(ctl_cmd_elect_at(&c, "b", CTL_NO_BROKER, 0), 0);
    assert_int_equal(ctl_sm_apply(sm, &c, &res), 0);
    assert_int_equal(res.epoch, 1);
    const int64_t both[] = {1, 2};
    assert_int_equal(ctl_sm_find(sm, "b")->sync_epoch, 1);
    assert_int_equal(alter(sm, "b", 1, 1, both, 2), 0);
    assert_int_equal(ctl_sm_find(sm, "b")->sync_epoch, 2);
    assert_int_equal(ctl_cmd_elect_at(&c, "b", 2, 1), 0);
    assert_int_equal(ctl_sm_apply(sm, &c, &res), 0);
    assert_int_equal(res.master_id, 2);
    assert_int_equal(ctl_sm_find(sm, "b")->sync_epoch, 3);
    /* The same decision submitted again (a retry): refused, nothing changes. */
    size_t len;
    char *before = state_bytes(sm, &len);
    assert_int_equal(ctl_sm_apply(sm, &c, &res), LSMQ_ESTALE);
    assert_int_equal(res.epoch, 2);
    assert_unchanged(sm, before, len);
    free(before);
    ctl_sm_destroy(sm);
}

static void test_master_readdress(void **state)
{
    ctl_sm *sm = ctl_sm_create();
    reg(sm, "b", 4, "old:1");
    assert_int_equal(elect(sm, "b", CTL_NO_BROKER, NULL), 0);
    reg(sm, "b", 4, "new:1");
    assert_string_equal(ctl_sm_find(sm, "b")->master_addr, "new:1");
    ctl_sm_destroy(sm);
}

static void test_bad_commands(void **state)
{
    ctl_sm *sm = ctl_sm_create();
    ctl_cmd c;
    assert_int_equal(ctl_cmd_register(&c, "", 1, "a:1"), LSMQ_EINVAL);
    assert_int_equal(ctl_cmd_register(&c, "b", 1, ""), LSMQ_EINVAL);
    char long_name[CTL_NAME_MAX + 2];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(ctl_cmd_elect(&c, long_name, 0), LSMQ_EINVAL);
    int64_t ids[CTL_BROKERS_MAX + 1] = {0};
    assert_int_equal(ctl_cmd_alter_sync(&c, "b", 0, 1, ids, CTL_BROKERS_MAX + 1), LSMQ_EINVAL);

    /* A type the rules do not know. */
    assert_int_equal(ctl_cmd_elect(&c, "b", 0), 0);
    c.type = (ctl_cmd_type)9;
    ctl_result res;
    assert_int_equal(ctl_sm_apply(sm, &c, &res), LSMQ_EINVAL);
    assert_int_equal(res.master_id, CTL_NO_BROKER);
    assert_int_equal(ctl_sm_count(sm), 0);
    ctl_sm_destroy(sm);
}

/* Two machines fed the same commands end up byte-identical. */
static void test_deterministic(void **state)
{
    ctl_sm *a = ctl_sm_create(), *b = ctl_sm_create();
    ctl_sm *both[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        ctl_sm *sm = both[k];
        for (int g = 0; g < 5; g++) {
            char name[16];
            snprintf(name, sizeof(name), "g%d", (g * 3) % 5);
            for (int64_t id = 0; id < 3; id++)
                reg(sm, name, id, "h:1");
            elect(sm, name, CTL_NO_BROKER, NULL);
            const int64_t set[] = {0, 1};
            alter(sm, name, 0, 1, set, 2);
            elect(sm, name, CTL_NO_BROKER, NULL);
        }
    }
    size_t la, lb;
    char *ea = state_bytes(a, &la), *eb = state_bytes(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ea, eb, la);
    assert_int_equal(ctl_sm_find(a, "g4")->epoch, 2);
    assert_int_equal(ctl_sm_find(a, "g4")->master_id, 1);
    free(ea);
    free(eb);
    ctl_sm_destroy(a);
    ctl_sm_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register),
        cmocka_unit_test(test_first_election),
        cmocka_unit_test(test_elect_compare_epoch),
        cmocka_unit_test(test_elect_from_sync_set_only),
        cmocka_unit_test(test_alter_fencing),
        cmocka_unit_test(test_master_readdress),
        cmocka_unit_test(test_bad_commands),
        cmocka_unit_test(test_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
