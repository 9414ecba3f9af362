/*
 * The route cache of an mqclient: topic -> route, fetched from the name
 * servers with GET_ROUTEINFO_BY_TOPIC (REMOTING.md §3.11) and refreshed in
 * the background every 30 s (every second while a topic is still unknown
 * or only known through TBW102, every 3 s while a broker group of the
 * topic has no master, so that consumers reading from a replica see the
 * master come back soon).
 *
 * Which address of a broker group a request goes to is chosen here, from
 * the cached route and the addresses that refused connects lately
 * (addr_down.c): lsmq__mqc_broker_addr.
 *
 * Producers read routes from their own threads, so the table is guarded by
 * routes_lock and routes are immutable, reference-counted snapshots: a
 * refresh swaps the pointer, readers keep their reference.
 *
 * Name servers are tried in turn; the one that last answered is tried
 * first. TOPIC_NOT_EXIST is an answer, not a reason to ask the next one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

#define NAMESRV_TIMEOUT_MS 3000
#define REFRESH_MS 30000
#define RETRY_MS 1000
#define MASTERLESS_MS 3000
#define SUSPECT_MS 1000 /* a failed send looks the route up again at most this often */

static proto_cmd *route_cmd(const char *topic)
{
    proto_cmd *cmd = proto_cmd_request(RC_GET_ROUTEINFO_BY_TOPIC);

    proto_cmd_set(cmd, "topic", topic);
    /* Standard JSON please; the legacy form parses too (route.c). */
    proto_cmd_set_bool(cmd, "acceptStandardJsonOnly", 1);
    return cmd;
}

/* Caller holds routes_lock. */
static route_entry *entry_get(mqclient *mqc, const char *topic, int create)
{
    route_entry *e = NULL;

    HASH_FIND_STR(mqc->routes, topic, e);
    if (e || !create)
        return e;
    e = proto_xcalloc(1, sizeof *e);
    e->topic = proto_xstrdup(topic);
    HASH_ADD_KEYPTR(hh, mqc->routes, e->topic, strlen(e->topic), e);
    return e;
}

/* Store r (reference taken over) for topic; returns 1 if the route changed. */
static int entry_put(mqclient *mqc, const char *topic, route *r, int for_publish)
{
    route_entry *e;
    route *old;
    int changed;

    pthread_mutex_lock(&mqc->routes_lock);
    e = entry_get(mqc, topic, 1);
    old = e->r;
    changed = old == NULL || old->from_default != r->from_default || strcmp(old->json, r->json);
    e->r = r;
    e->for_publish |= for_publish;
    e->fetched_ms = proto_mono_ms();
    pthread_mutex_unlock(&mqc->routes_lock);
    lsmq__route_unref(old);
    return changed;
}

route *lsmq__mqc_route_cached(mqclient *mqc, const char *topic)
{
    route_entry *e;
    route *r = NULL;

    pthread_mutex_lock(&mqc->routes_lock);
    e = entry_get(mqc, topic, 0);
    if (e && e->r)
        r = lsmq__route_ref(e->r);
    pthread_mutex_unlock(&mqc->routes_lock);
    return r;
}

/* Turn a name server reply into a route; consumes reply. */
static int route_from_reply(proto_reply *reply, const char *topic, route **out, lsmq_errslot *e)
{
    char err[256];
    int rc;

    *out = NULL;
    if (reply->cmd->code != RS_SUCCESS) {
        rc = lsmq__broker_error(e, reply->cmd, "route look-up");
        proto_reply_free(reply);
        return rc;
    }
    rc = lsmq__route_parse((const char *)reply->cmd->body, reply->cmd->body_len, out, err,
                      sizeof err);
    if (rc != 0)
        lsmq__error(e, -1, "route of %s: %s", topic, err);
    proto_reply_free(reply);
    return rc;
}

/* Ask the name servers in turn, blocking. */
static int fetch_sync(mqclient *mqc, const char *topic, route **out, lsmq_errslot *e)
{
    unsigned start = atomic_load(&mqc->ns_next);
    int rc = -EHOSTUNREACH;
    size_t i;

    for (i = 0; i < mqc->n_namesrv; i++) {
        unsigned idx = (unsigned)((start + i) % mqc->n_namesrv);
        proto_cmd *cmd = route_cmd(topic);
        proto_reply *reply = NULL;

        rc = lsmq__mqc_call_sync(mqc, mqc->namesrv[idx], cmd, NULL, 0, NAMESRV_TIMEOUT_MS, &reply,
                            e);
        proto_cmd_free(cmd);
        if (rc != 0)
            continue; /* this name server is unreachable: try the next */
        atomic_store(&mqc->ns_next, idx);
        return route_from_reply(reply, topic, out, e);
    }
    return rc;
}

int lsmq__mqc_route_get(mqclient *mqc, const char *topic, int for_publish, route **out,
                   lsmq_errslot *e)
{
    route *r = lsmq__mqc_route_cached(mqc, topic);
    int rc;

    if (r) {
        *out = r;
        return 0;
    }
    rc = fetch_sync(mqc, topic, &r, e);
    if (rc == LSMQ_ENOTFOUND && for_publish) {
        /* Send through TBW102's brokers, which create the topic (§6.1). */
        rc = fetch_sync(mqc, DEFAULT_TOPIC, &r, e);
        if (rc == 0)
            lsmq__route_as_default(r);
        else if (rc == LSMQ_ENOTFOUND)
            lsmq__error(e, RS_TOPIC_NOT_EXIST, "topic %s does not exist and TBW102 is not "
                        "available for auto-creation", topic);
    }
    if (rc != 0) {
        if (rc == LSMQ_ENOTFOUND && !for_publish) {
            /* Remember the topic so the background refresh keeps asking. */
            pthread_mutex_lock(&mqc->routes_lock);
            entry_get(mqc, topic, 1);
            pthread_mutex_unlock(&mqc->routes_lock);
        }
        return rc;
    }
    entry_put(mqc, topic, lsmq__route_ref(r), for_publish);
    *out = r;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Background refresh (I/O thread)                                     */
/* ------------------------------------------------------------------ */

typedef struct fetch_ctx {
    mqclient *mqc;
    char *topic;
    int for_publish;
    int use_default;  /* asking for TBW102 on the topic's behalf */
    size_t tried;
    unsigned idx;
} fetch_ctx;

static void fetch_next(fetch_ctx *f);

static void fetch_done(fetch_ctx *f)
{
    mqclient *mqc = f->mqc;
    route_entry *e;

    pthread_mutex_lock(&mqc->routes_lock);
    e = entry_get(mqc, f->topic, 0);
    if (e) {
        e->fetching = 0;
        if (e->r == NULL)
            e->fetched_ms = proto_mono_ms(); /* paces the retries of unknown topics */
    }
    pthread_mutex_unlock(&mqc->routes_lock);
    free(f->topic);
    free(f);
}

static void fetch_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    fetch_ctx *f = arg;
    mqclient *mqc = f->mqc;
    route *r = NULL;
    lsmq_errslot err; /* the library's own work: logged, not the user's last error */

    lsmq__err_init(&err, NULL);
    if (rc != 0) {
        f->tried++;
        f->idx++;
        if (f->tried < mqc->n_namesrv) {
            fetch_next(f);
            return;
        }
        proto_log(PROTO_LOG_DEBUG, "liblsmq: route of %s: no name server answered", f->topic);
        fetch_done(f);
        return;
    }
    atomic_store(&mqc->ns_next, f->idx % (unsigned)mqc->n_namesrv);
    rc = route_from_reply(reply, f->topic, &r, &err);
    if (rc == LSMQ_ENOTFOUND && f->for_publish && !f->use_default) {
        route *cur = lsmq__mqc_route_cached(mqc, f->topic);
        int have_real = cur && !cur->from_default;

        lsmq__route_unref(cur);
        if (!have_real) {
            f->use_default = 1;
            f->tried = 0;
            fetch_next(f);
            return;
        }
    }
    if (rc == 0) {
        if (f->use_default)
            lsmq__route_as_default(r);
        if (entry_put(mqc, f->topic, r, f->for_publish) && mqc->hooks.route_changed)
            mqc->hooks.route_changed(mqc->hooks.arg, f->topic);
    } else {
        proto_log(PROTO_LOG_DEBUG, "liblsmq: route of %s: %s", f->topic, err.text);
    }
    fetch_done(f);
}

static void fetch_next(fetch_ctx *f)
{
    mqclient *mqc = f->mqc;
    const char *addr = mqc->namesrv[f->idx % mqc->n_namesrv];
    proto_cmd *cmd = route_cmd(f->use_default ? DEFAULT_TOPIC : f->topic);
    int rc = lsmq__mqc_call(mqc, addr, cmd, NULL, 0, NAMESRV_TIMEOUT_MS, fetch_cb, f, NULL);

    proto_cmd_free(cmd);
    if (rc != 0)
        fetch_done(f); /* shutting down */
}

void lsmq__mqc_route_refresh(mqclient *mqc, const char *topic, int for_publish)
{
    route_entry *e;
    fetch_ctx *f;

    pthread_mutex_lock(&mqc->routes_lock);
    e = entry_get(mqc, topic, 1);
    if (e->fetching) {
        pthread_mutex_unlock(&mqc->routes_lock);
        return;
    }
    e->fetching = 1;
    e->for_publish |= for_publish;
    for_publish = e->for_publish;
    pthread_mutex_unlock(&mqc->routes_lock);
    f = proto_xcalloc(1, sizeof *f);
    f->mqc = mqc;
    f->topic = proto_xstrdup(topic);
    f->for_publish = for_publish;
    f->idx = atomic_load(&mqc->ns_next);
    fetch_next(f);
}

void lsmq__mqc_route_suspect(mqclient *mqc, const char *topic)
{
    route_entry *e;
    int due;

    pthread_mutex_lock(&mqc->routes_lock);
    e = entry_get(mqc, topic, 0);
    due = e && !e->fetching && proto_mono_ms() - e->fetched_ms >= SUSPECT_MS;
    pthread_mutex_unlock(&mqc->routes_lock);
    if (due)
        lsmq__mqc_route_refresh(mqc, topic, 1);
}

void lsmq__mqc_route_refresh_all(mqclient *mqc)
{
    int64_t now = proto_mono_ms();
    route_entry *e, *tmp;
    char **due = NULL;
    int *pub = NULL;
    size_t n = 0, i;

    pthread_mutex_lock(&mqc->routes_lock);
    HASH_ITER(hh, mqc->routes, e, tmp) {
        int64_t every = e->r == NULL || e->r->from_default ? RETRY_MS
                        : lsmq__route_masterless(e->r)    ? MASTERLESS_MS
                                                          : REFRESH_MS;

        if (e->fetching || now - e->fetched_ms < every)
            continue;
        due = proto_xrealloc(due, (n + 1) * sizeof *due);
        pub = proto_xrealloc(pub, (n + 1) * sizeof *pub);
        due[n] = proto_xstrdup(e->topic);
        pub[n++] = e->for_publish;
    }
    pthread_mutex_unlock(&mqc->routes_lock);
    for (i = 0; i < n; i++) {
        lsmq__mqc_route_refresh(mqc, due[i], pub[i]);
        free(due[i]);
    }
    free(due);
    free(pub);
}

/* ------------------------------------------------------------------ */
/* Broker addresses                                                    */
/* ------------------------------------------------------------------ */

static int addr_down_cb(void *arg, const char *addr)
{
    return lsmq__mqc_addr_down(arg, addr);
}

/*
 * A copy of the address of broker (in topic's cached route) for brokerId
 * want; master_only: the master's or none (sends), else lsmq__route_pick.
 */
static char *cached_addr(mqclient *mqc, const char *topic, const char *broker, int master_only,
                         int64_t want, int64_t *id)
{
    route *r = lsmq__mqc_route_cached(mqc, topic);
    const char *addr = NULL;
    char *out = NULL;
    int idx = r ? lsmq__route_broker_index(r, broker) : -1;

    if (idx >= 0 && master_only)
        addr = lsmq__route_master(r, (uint32_t)idx);
    else if (idx >= 0)
        addr = lsmq__route_pick(r, (uint32_t)idx, want, addr_down_cb, mqc, id);
    if (addr)
        out = proto_xstrdup(addr);
    lsmq__route_unref(r);
    return out;
}

char *lsmq__mqc_broker_addr(mqclient *mqc, const char *topic, const char *broker, int64_t want,
                            int64_t *id)
{
    return cached_addr(mqc, topic, broker, 0, want, id);
}

char *lsmq__mqc_offset_addr(mqclient *mqc, const char *topic, const char *broker)
{
    return cached_addr(mqc, topic, broker, 0, 0, NULL);
}

char *lsmq__mqc_master_addr(mqclient *mqc, const char *topic, const char *broker)
{
    return cached_addr(mqc, topic, broker, 1, 0, NULL);
}

const char *lsmq__mqc_list_addr(mqclient *mqc, const route *r)
{
    const char *first = NULL, *first_up = NULL;
    size_t i;

    for (i = 0; i < r->n_brokers; i++) {
        int64_t id = -1;
        const char *addr = lsmq__route_pick(r, (uint32_t)i, 0, addr_down_cb, mqc, &id);

        if (addr == NULL)
            continue;
        if (first == NULL)
            first = addr;
        if (lsmq__mqc_addr_down(mqc, addr))
            continue;
        if (id == 0)
            return addr;
        if (first_up == NULL)
            first_up = addr;
    }
    return first_up ? first_up : first;
}

size_t lsmq__mqc_broker_addrs(mqclient *mqc, char ***addrs)
{
    route_entry *e, *tmp;
    char **out = NULL;
    size_t n = 0, i, j, k;

    pthread_mutex_lock(&mqc->routes_lock);
    HASH_ITER(hh, mqc->routes, e, tmp) {
        if (e->r == NULL)
            continue;
        for (i = 0; i < e->r->n_brokers; i++) {
            const route_broker *b = &e->r->brokers[i];

            for (j = 0; j < b->n_addrs; j++) {
                for (k = 0; k < n && strcmp(out[k], b->addrs[j]); k++)
                    ;
                if (k < n)
                    continue;
                out = proto_xrealloc(out, (n + 1) * sizeof *out);
                out[n++] = proto_xstrdup(b->addrs[j]);
            }
        }
    }
    pthread_mutex_unlock(&mqc->routes_lock);
    *addrs = out;
    return n;
}

void lsmq__mqc_addrs_free(char **addrs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(addrs[i]);
    free(addrs);
}

void lsmq__mqc_routes_free(mqclient *mqc)
{
    route_entry *e, *tmp;

    HASH_ITER(hh, mqc->routes, e, tmp) {
        HASH_DEL(mqc->routes, e);
        lsmq__route_unref(e->r);
        free(e->topic);
        free(e);
    }
}
