/*
 * The controller's state machine (sm.h). Groups live in an array of
 * pointers sorted by name, so lookups are a binary search and the snapshot
 * walks them in a fixed order; a group is a ctl_group value, the same type
 * a query copies out.
 */
#include "sm.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "errors.h"

typedef struct ctl_addr {
    char id[CTL_ID_MAX + 1];
    char addr[CTL_ADDR_MAX + 1];
} ctl_addr;

struct ctl_sm {
    ctl_group **groups;
    size_t n, cap;
    ctl_addr ctls[CTL_CONTROLLERS_MAX]; /* ascending ids */
    size_t n_ctls;
};

ctl_sm *ctl_sm_create(void)
{
    return proto_xcalloc(1, sizeof(ctl_sm));
}

void ctl_sm_destroy(ctl_sm *sm)
{
    if (!sm)
        return;
    for (size_t i = 0; i < sm->n; i++)
        free(sm->groups[i]);
    free(sm->groups);
    free(sm);
}

/* The slot of name: its index if present (*found), else where it would go. */
static size_t group_slot(const ctl_sm *sm, const char *name, bool *found)
{
    size_t lo = 0, hi = sm->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(sm->groups[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static ctl_group *group_find(const ctl_sm *sm, const char *name)
{
    bool found;
    size_t i = group_slot(sm, name, &found);
    return found ? sm->groups[i] : NULL;
}

const ctl_group *ctl_sm_find(const ctl_sm *sm, const char *name)
{
    return group_find(sm, name);
}

size_t ctl_sm_count(const ctl_sm *sm)
{
    return sm->n;
}

const ctl_group *ctl_sm_at(const ctl_sm *sm, size_t i)
{
    return i < sm->n ? sm->groups[i] : NULL;
}

static void insert_at(ctl_sm *sm, size_t at, ctl_group *g)
{
    if (sm->n == sm->cap) {
        sm->cap = sm->cap ? sm->cap * 2 : 8;
        sm->groups = proto_xrealloc(sm->groups, sm->cap * sizeof(*sm->groups));
    }
    memmove(sm->groups + at + 1, sm->groups + at, (sm->n - at) * sizeof(*sm->groups));
    sm->groups[at] = g;
    sm->n++;
}

static const ctl_broker *broker_find(const ctl_group *g, int64_t id)
{
    for (size_t i = 0; i < g->n_brokers; i++)
        if (g->brokers[i].id == id)
            return &g->brokers[i];
    return NULL;
}

static bool sync_has(const ctl_group *g, int64_t id)
{
    for (size_t i = 0; i < g->n_sync; i++)
        if (g->sync[i] == id)
            return true;
    return false;
}

static bool str_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    return n > 0 && n <= max;
}

int ctl_sm_group_check(const ctl_group *g)
{
    if (!str_ok(g->name, CTL_NAME_MAX) || g->n_brokers > CTL_BROKERS_MAX ||
        g->n_sync > CTL_BROKERS_MAX)
        return LSMQ_ECORRUPT;
    for (size_t i = 0; i < g->n_brokers; i++) {
        if (g->brokers[i].id < 0 || !str_ok(g->brokers[i].addr, CTL_ADDR_MAX))
            return LSMQ_ECORRUPT;
        for (size_t j = 0; j < i; j++)
            if (g->brokers[j].id == g->brokers[i].id)
                return LSMQ_ECORRUPT;
    }
    for (size_t i = 0; i < g->n_sync; i++) {
        if (!broker_find(g, g->sync[i]) || (i > 0 && g->sync[i - 1] >= g->sync[i]))
            return LSMQ_ECORRUPT;
    }
    if (g->master_id == CTL_NO_BROKER)
        return g->epoch == 0 && g->n_sync == 0 ? 0 : LSMQ_ECORRUPT;
    if (g->epoch == 0 || !broker_find(g, g->master_id) || !sync_has(g, g->master_id))
        return LSMQ_ECORRUPT;
    return 0;
}

int ctl_sm_load(ctl_sm *sm, const ctl_group *g)
{
    if (ctl_sm_group_check(g) != 0)
        return LSMQ_ECORRUPT;
    if (sm->n > 0 && strcmp(sm->groups[sm->n - 1]->name, g->name) >= 0)
        return LSMQ_ECORRUPT;
    ctl_group *copy = proto_xmalloc(sizeof(*copy));
    *copy = *g;
    copy->master_addr[0] = '\0';
    const ctl_broker *m = broker_find(copy, copy->master_id);
    if (m)
        memcpy(copy->master_addr, m->addr, sizeof(copy->master_addr));
    insert_at(sm, sm->n, copy);
    return 0;
}

/* ---- commands ---------------------------------------------------------- */

static int do_register(ctl_sm *sm, const ctl_cmd *c, ctl_group **out)
{
    if (c->broker_id < 0 || !str_ok(c->addr, CTL_ADDR_MAX))
        return LSMQ_EINVAL;
    bool found;
    size_t at = group_slot(sm, c->name, &found);
    ctl_group *g = found ? sm->groups[at] : NULL;
    ctl_broker *b = NULL;
    if (g) {
        *out = g;
        b = (ctl_broker *)broker_find(g, c->broker_id);
        if (!b && g->n_brokers == CTL_BROKERS_MAX)
            return LSMQ_EINVAL;
    } else {
        g = proto_xcalloc(1, sizeof(*g));
        memcpy(g->name, c->name, sizeof(g->name));
        g->master_id = CTL_NO_BROKER;
        insert_at(sm, at, g);
        *out = g;
    }
    if (!b) {
        b = &g->brokers[g->n_brokers++];
        b->id = c->broker_id;
    }
    memcpy(b->addr, c->addr, sizeof(b->addr));
    if (g->master_id == c->broker_id)
        memcpy(g->master_addr, c->addr, sizeof(g->master_addr));
    return 0;
}

/* The candidate an election picks, CTL_NO_BROKER when none qualifies. */
static int pick_candidate(const ctl_group *g, int64_t wanted, int64_t *pick)
{
    if (g->master_id == CTL_NO_BROKER && g->n_sync == 0) {
        if (g->n_brokers == 0)
            return LSMQ_EREFUSED;
        int64_t first = g->brokers[0].id;
        if (wanted != CTL_NO_BROKER && wanted != first)
            return broker_find(g, wanted) ? LSMQ_EREFUSED : LSMQ_ENOTFOUND;
        *pick = first;
        return 0;
    }
    if (wanted != CTL_NO_BROKER) {
        if (!broker_find(g, wanted))
            return LSMQ_ENOTFOUND;
        if (!sync_has(g, wanted))
            return LSMQ_EREFUSED;
        *pick = wanted;
        return 0;
    }
    for (size_t i = 0; i < g->n_sync; i++) {
        if (g->sync[i] != g->master_id) {
            *pick = g->sync[i];
            return 0;
        }
    }
    return LSMQ_EREFUSED;
}

static int do_elect(ctl_sm *sm, const ctl_cmd *c, ctl_group **out)
{
    if (c->broker_id < CTL_NO_BROKER)
        return LSMQ_EINVAL;
    ctl_group *g = group_find(sm, c->name);
    if (!g)
        return LSMQ_ENOTFOUND;
    *out = g;
    /* Decided at another epoch: something else happened since (a retry). */
    if (c->expect_epoch != CTL_ANY_EPOCH && c->expect_epoch != g->epoch)
        return LSMQ_ESTALE;
    int64_t pick;
    int rc = pick_candidate(g, c->broker_id, &pick);
    if (rc != 0)
        return rc;
    g->master_id = pick;
    memcpy(g->master_addr, broker_find(g, pick)->addr, sizeof(g->master_addr));
    g->epoch++;
    g->sync_epoch++;
    g->n_sync = 1;
    g->sync[0] = pick;
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int do_alter_sync(ctl_sm *sm, const ctl_cmd *c, ctl_group **out)
{
    if (c->n_sync == 0 || c->n_sync > CTL_BROKERS_MAX || c->broker_id < 0)
        return LSMQ_EINVAL;
    int64_t ids[CTL_BROKERS_MAX];
    memcpy(ids, c->sync, c->n_sync * sizeof(ids[0]));
    qsort(ids, c->n_sync, sizeof(ids[0]), cmp_id);
    for (size_t i = 1; i < c->n_sync; i++)
        if (ids[i - 1] == ids[i])
            return LSMQ_EINVAL;
    ctl_group *g = group_find(sm, c->name);
    if (!g)
        return LSMQ_ENOTFOUND;
    *out = g;
    if (g->master_id == CTL_NO_BROKER)
        return LSMQ_EREFUSED;
    if (c->epoch < g->epoch)
        return LSMQ_ESTALE; /* fencing first: whoever asks with an old epoch */
    if (c->broker_id != g->master_id)
        return LSMQ_EREFUSED;
    if (c->epoch != g->epoch)
        return LSMQ_EREFUSED; /* an epoch nobody was given */
    bool has_master = false;
    for (size_t i = 0; i < c->n_sync; i++) {
        if (!broker_find(g, ids[i]))
            return LSMQ_ENOTFOUND;
        has_master |= ids[i] == g->master_id;
    }
    if (!has_master)
        return LSMQ_EREFUSED;
    memcpy(g->sync, ids, c->n_sync * sizeof(ids[0]));
    g->n_sync = c->n_sync;
    g->sync_epoch++;
    return 0;
}

/* ---- controller addresses ------------------------------------------------ */

static ctl_addr *ctl_find(const ctl_sm *sm, const char *id, size_t *slot)
{
    size_t i = 0;
    while (i < sm->n_ctls && strcmp(sm->ctls[i].id, id) < 0)
        i++;
    if (slot)
        *slot = i;
    return i < sm->n_ctls && strcmp(sm->ctls[i].id, id) == 0 ? (ctl_addr *)&sm->ctls[i] : NULL;
}

static int do_controller_addr(ctl_sm *sm, const ctl_cmd *c)
{
    if (strlen(c->name) > CTL_ID_MAX || !str_ok(c->addr, CTL_ADDR_MAX))
        return LSMQ_EINVAL;
    size_t at;
    ctl_addr *a = ctl_find(sm, c->name, &at);
    if (!a) {
        if (sm->n_ctls == CTL_CONTROLLERS_MAX)
            return LSMQ_EINVAL;
        memmove(&sm->ctls[at + 1], &sm->ctls[at], (sm->n_ctls - at) * sizeof(sm->ctls[0]));
        sm->n_ctls++;
        a = &sm->ctls[at];
        memcpy(a->id, c->name, strlen(c->name) + 1);
    }
    memcpy(a->addr, c->addr, sizeof(a->addr));
    return 0;
}

const char *ctl_sm_controller_addr(const ctl_sm *sm, const char *id)
{
    const ctl_addr *a = ctl_find(sm, id, NULL);
    return a ? a->addr : NULL;
}

size_t ctl_sm_controller_count(const ctl_sm *sm)
{
    return sm->n_ctls;
}

void ctl_sm_controller_at(const ctl_sm *sm, size_t i, const char **id, const char **addr)
{
    *id = sm->ctls[i].id;
    *addr = sm->ctls[i].addr;
}

int ctl_sm_load_controller(ctl_sm *sm, const char *id, const char *addr)
{
    if (sm->n_ctls == CTL_CONTROLLERS_MAX || !str_ok(id, CTL_ID_MAX) ||
        !str_ok(addr, CTL_ADDR_MAX) ||
        (sm->n_ctls && strcmp(sm->ctls[sm->n_ctls - 1].id, id) >= 0))
        return LSMQ_ECORRUPT;
    ctl_addr *a = &sm->ctls[sm->n_ctls++];
    memcpy(a->id, id, strlen(id) + 1);
    memcpy(a->addr, addr, strlen(addr) + 1);
    return 0;
}

/* ---- apply ------------------------------------------------------------- */

int ctl_sm_apply(ctl_sm *sm, const ctl_cmd *c, ctl_result *res)
{
    ctl_group *g = NULL;
    int rc;
    if (!str_ok(c->name, CTL_NAME_MAX))
        rc = LSMQ_EINVAL;
    else if (c->type == CTL_CMD_REGISTER)
        rc = do_register(sm, c, &g);
    else if (c->type == CTL_CMD_ELECT)
        rc = do_elect(sm, c, &g);
    else if (c->type == CTL_CMD_ALTER_SYNC)
        rc = do_alter_sync(sm, c, &g);
    else if (c->type == CTL_CMD_CONTROLLER_ADDR)
        rc = do_controller_addr(sm, c);
    else
        rc = LSMQ_EINVAL;
    if (res) {
        res->epoch = g ? g->epoch : 0;
        res->master_id = g ? g->master_id : CTL_NO_BROKER;
    }
    return rc;
}
