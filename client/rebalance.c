/*
 * Rebalancing (REMOTING.md §6.3): clients share a group's queues among
 * themselves. Each member asks one broker of the topic for the group's
 * consumer ids (GET_CONSUMER_LIST_BY_GROUP), sorts ids and queues the same
 * way, and takes its slice by AllocateMessageQueueAveragely, so every
 * member computes the same split without talking to the others.
 * Broadcasting consumers take every queue.
 *
 * A queue that joins the assignment starts at the group's committed
 * offset (QUERY_CONSUMER_OFFSET); without one (QUERY_NOT_FOUND) at the
 * queue's end (GET_MAX_OFFSET), start, or the first message stored at or
 * after the consume timestamp (SEARCH_OFFSET_BY_TIMESTAMP), per
 * consume-from. Retry queues start at 0, or at their end with a consume
 * timestamp (§3.3, Java's computePullFromWhere). A queue that leaves
 * commits its offset first. No rebalance runs while an offset reset
 * waits for its queues' listeners (consumer_reset.c).
 *
 * Runs every rebalance interval (20 s), right after start, after
 * NOTIFY_CONSUMER_IDS_CHANGED, when a route appears, and a second after a
 * step failed. I/O thread only, except the pure functions at the top.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client_internal.h"

#define CALL_TIMEOUT_MS 3000
#define RETRY_SOON_MS 1000

/* ------------------------------------------------------------------ */
/* AllocateMessageQueueAveragely (pure)                                */
/* ------------------------------------------------------------------ */

void lsmq__rb_allocate(size_t n_queues, size_t n_consumers, long index, size_t *start,
                  size_t *count)
{
    size_t i, mod, size, st;

    *start = *count = 0;
    if (index < 0 || n_consumers == 0 || (size_t)index >= n_consumers)
        return;
    i = (size_t)index;
    mod = n_queues % n_consumers;
    if (n_queues <= n_consumers)
        size = 1;
    else
        size = n_queues / n_consumers + (mod > 0 && i < mod ? 1 : 0);
    st = mod > 0 && i < mod ? i * size : i * size + mod;
    if (st >= n_queues)
        return;
    *start = st;
    *count = size < n_queues - st ? size : n_queues - st;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

long lsmq__rb_index_of(char **ids, size_t n, const char *id)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return (long)i;
    return -1;
}

int lsmq__rb_parse_ids(const uint8_t *body, size_t len, char ***ids, size_t *n, lsmq_errslot *e)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)body, len, 0, &jerr), *list;
    char **out;
    size_t i, k = 0;

    *ids = NULL;
    *n = 0;
    list = json_object_get(root, "consumerIdList");
    if (!json_is_array(list)) {
        lsmq__error(e, -1, "consumer list does not parse: %s", root ? "no consumerIdList"
                                                                 : jerr.text);
        json_decref(root);
        return LSMQ_ECORRUPT;
    }
    out = proto_xcalloc(json_array_size(list), sizeof *out);
    for (i = 0; i < json_array_size(list); i++) {
        const char *id = json_string_value(json_array_get(list, i));

        if (id)
            out[k++] = proto_xstrdup(id);
    }
    json_decref(root);
    /* Java sorts the ids as strings: every member must see the same order. */
    qsort(out, k, sizeof *out, str_cmp);
    *ids = out;
    *n = k;
    return 0;
}

void lsmq__rb_free_ids(char **ids, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* ------------------------------------------------------------------ */
/* Start offsets                                                       */
/* ------------------------------------------------------------------ */

static void queue_failed(pq *q, const char *what)
{
    lsmq_push_consumer *c = q->c;

    proto_log(PROTO_LOG_INFO, "liblsmq: %s: %s for %s:%s:%d failed; retrying", c->group, what, q->topic,
              q->broker, (int)q->queue_id);
    if (!q->dropped)
        lsmq__push_pq_drop(q);
    lsmq__push_rebalance_soon(c, RETRY_SOON_MS);
}

static void start_at(pq *q, int64_t offset)
{
    proto_log(PROTO_LOG_INFO, "liblsmq: %s: queue %s:%s:%d assigned, from offset %lld", q->c->group,
              q->topic, q->broker, (int)q->queue_id, (long long)offset);
    q->next_offset = offset;
    lsmq__push_pq_start(q);
}

/* The answer of GET_MAX_OFFSET or SEARCH_OFFSET_BY_TIMESTAMP: header "offset". */
static void policy_offset_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    pq *q = arg;
    int64_t off = -1;

    if (!q->dropped && !q->c->stopping) {
        if (rc == 0 && reply->cmd->code == RS_SUCCESS &&
            proto_cmd_get_i64(reply->cmd, "offset", &off) == 0 && off >= 0)
            start_at(q, off);
        else
            queue_failed(q, "GET_MAX_OFFSET / SEARCH_OFFSET_BY_TIMESTAMP");
    }
    proto_reply_free(reply);
    lsmq__push_pq_unref(q);
}

/* No committed offset: where consume-from says (§3.3 client reactions). */
static void start_by_policy(pq *q)
{
    lsmq_push_consumer *c = q->c;
    int retry = strncmp(q->topic, RETRY_PREFIX, strlen(RETRY_PREFIX)) == 0;
    char *addr;
    proto_cmd *cmd;

    if (c->from == LSMQ_FROM_FIRST || (retry && c->from == LSMQ_FROM_LAST)) {
        start_at(q, 0);
        return;
    }
    if ((addr = lsmq__mqc_offset_addr(c->mqc, q->topic, q->broker)) == NULL) {
        queue_failed(q, "route");
        return;
    }
    if (c->from == LSMQ_FROM_TIMESTAMP && !retry)
        cmd = lsmq__offset_search_cmd(q->topic, q->broker, q->queue_id, c->consume_ts_ms);
    else
        cmd = lsmq__offset_max_cmd(q->topic, q->queue_id);
    q->refs++;
    if (lsmq__mqc_call(c->mqc, addr, cmd, NULL, 0, CALL_TIMEOUT_MS, policy_offset_cb, q, NULL) != 0)
        lsmq__push_pq_unref(q);
    proto_cmd_free(cmd);
    free(addr);
}

static void query_offset_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    pq *q = arg;
    int64_t off = -1;

    if (!q->dropped && !q->c->stopping) {
        if (rc == 0 && reply->cmd->code == RS_SUCCESS &&
            proto_cmd_get_i64(reply->cmd, "offset", &off) == 0 && off >= 0)
            start_at(q, off);
        else if (rc == 0 && (reply->cmd->code == RS_QUERY_NOT_FOUND ||
                             reply->cmd->code == RS_SUCCESS))
            start_by_policy(q); /* QUERY_NOT_FOUND is "no offset" (-1) */
        else
            queue_failed(q, "QUERY_CONSUMER_OFFSET");
    }
    proto_reply_free(reply);
    lsmq__push_pq_unref(q);
}

static void begin_queue(pq *q)
{
    lsmq_push_consumer *c = q->c;
    ostore_entry *e;
    char *addr;
    proto_cmd *cmd;

    if (c->model == LSMQ_BROADCASTING) {
        e = lsmq__ostore_find(&c->offsets, q->topic, q->broker, q->queue_id);
        if (e && e->offset >= 0)
            start_at(q, e->offset);
        else
            start_by_policy(q);
        return;
    }
    if ((addr = lsmq__mqc_offset_addr(c->mqc, q->topic, q->broker)) == NULL) {
        queue_failed(q, "route");
        return;
    }
    cmd = lsmq__offset_query_cmd(c->group, q->topic, q->queue_id);
    /*
     * Brokers answer 0 for a new group on a queue that still holds offset 0
     * (§3.3), which would start a timestamp consumer at the beginning; lsmq
     * and 5.x brokers honour this flag and say QUERY_NOT_FOUND instead.
     */
    if (c->from == LSMQ_FROM_TIMESTAMP)
        proto_cmd_set_bool(cmd, "setZeroIfNotFound", 0);
    q->refs++;
    if (lsmq__mqc_call(c->mqc, addr, cmd, NULL, 0, CALL_TIMEOUT_MS, query_offset_cb, q, NULL) != 0)
        lsmq__push_pq_unref(q);
    proto_cmd_free(cmd);
    free(addr);
}

/* ------------------------------------------------------------------ */
/* Applying an allocation                                              */
/* ------------------------------------------------------------------ */

/* Make the topic's assignment r->sub[start, start + count). */
static void apply(lsmq_push_consumer *c, const subscription *s, const route *r, size_t start,
                  size_t count)
{
    char **want = proto_xcalloc(count ? count : 1, sizeof *want);
    pq *q, *tmp;
    size_t i;

    for (i = 0; i < count; i++) {
        const route_mq *mq = &r->sub[start + i];
        char key[600];

        lsmq__mq_key(key, sizeof key, s->topic, r->brokers[mq->broker].name, mq->queue_id);
        want[i] = proto_xstrdup(key);
    }
    HASH_ITER(hh, c->pqs, q, tmp) {
        int keep = 0;

        if (strcmp(q->topic, s->topic) != 0)
            continue;
        for (i = 0; i < count && !keep; i++)
            keep = strcmp(want[i], q->key) == 0;
        if (!keep)
            lsmq__push_pq_drop(q);
    }
    for (i = 0; i < count; i++) {
        const route_mq *mq = &r->sub[start + i];

        q = NULL;
        HASH_FIND_STR(c->pqs, want[i], q);
        if (q == NULL)
            begin_queue(lsmq__push_pq_new(c, s, r->brokers[mq->broker].name, mq->queue_id));
        free(want[i]);
    }
    free(want);
}

typedef struct rb_ctx {
    lsmq_push_consumer *c;
    const subscription *s;
    route *r;
} rb_ctx;

static void ids_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    rb_ctx *x = arg;
    lsmq_push_consumer *c = x->c;
    char **ids = NULL;
    size_t n = 0, start, count;
    long idx;

    if (c->stopping)
        goto out;
    if (c->resetting) {
        lsmq__push_rebalance_soon(c, RETRY_SOON_MS);
        goto out;
    }
    lsmq_errslot err;

    lsmq__err_init(&err, NULL);
    if (rc != 0)
        lsmq__error(&err, -1, "%s", why);
    if (rc == 0 && reply->cmd->code != RS_SUCCESS)
        rc = lsmq__broker_error(&err, reply->cmd, "GET_CONSUMER_LIST_BY_GROUP");
    if (rc == 0)
        rc = lsmq__rb_parse_ids(reply->cmd->body, reply->cmd->body_len, &ids, &n, &err);
    if (rc != 0) {
        proto_log(PROTO_LOG_INFO, "liblsmq: %s: consumer list for %s: %s", c->group, x->s->topic,
                  err.text);
        lsmq__push_rebalance_soon(c, RETRY_SOON_MS);
        goto out;
    }
    idx = lsmq__rb_index_of(ids, n, lsmq__mqc_client_id(c->mqc));
    if (idx < 0) {
        /* The broker has not seen our heartbeat yet: keep what we have, say hello. */
        proto_log(PROTO_LOG_INFO, "liblsmq: %s: %s not yet in the consumer list of %s", c->group,
                  lsmq__mqc_client_id(c->mqc), x->s->topic);
        lsmq__mqc_heartbeat_all(c->mqc);
        lsmq__push_rebalance_soon(c, RETRY_SOON_MS);
        goto out;
    }
    lsmq__rb_allocate(x->r->n_sub, n, idx, &start, &count);
    apply(c, x->s, x->r, start, count);
out:
    lsmq__rb_free_ids(ids, n);
    proto_reply_free(reply);
    lsmq__route_unref(x->r);
    free(x);
}

void lsmq__push_rebalance(mqclient *mqc, void *arg)
{
    lsmq_push_consumer *c = arg;
    size_t i;

    if (c->stopping)
        return;
    if (c->resetting) {
        lsmq__push_rebalance_soon(c, RETRY_SOON_MS);
        return;
    }
    for (i = 0; i < c->n_subs; i++) {
        const subscription *s = c->subs[i];
        route *r = lsmq__mqc_route_cached(mqc, s->topic);
        const char *addr;
        proto_cmd *cmd;
        rb_ctx *x;

        if (r == NULL) {
            lsmq__mqc_route_refresh(mqc, s->topic, 0); /* route_changed brings us back */
            continue;
        }
        if (c->model == LSMQ_BROADCASTING) {
            apply(c, s, r, 0, r->n_sub);
            lsmq__route_unref(r);
            continue;
        }
        if ((addr = lsmq__mqc_list_addr(mqc, r)) == NULL) {
            lsmq__route_unref(r);
            continue;
        }
        x = proto_xcalloc(1, sizeof *x);
        x->c = c;
        x->s = s;
        x->r = r;
        cmd = proto_cmd_request(RC_GET_CONSUMER_LIST_BY_GROUP);
        proto_cmd_set(cmd, "consumerGroup", c->group);
        if (lsmq__mqc_call(mqc, addr, cmd, NULL, 0, CALL_TIMEOUT_MS, ids_cb, x, NULL) != 0) {
            lsmq__route_unref(r);
            free(x);
        }
        proto_cmd_free(cmd);
    }
}

void lsmq__push_rebalance_soon(lsmq_push_consumer *c, int delay_ms)
{
    if (c->rebalance_timer && !c->stopping)
        lsmq__mqc_timer_again(c->rebalance_timer, delay_ms);
}
