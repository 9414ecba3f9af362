/*
 * The leader's own view of which brokers are alive (heartbeats are never
 * replicated), and the automatic elections it drives from it: a group
 * without a master gets its first registered broker once that one is
 * alive; a master silent longer than its heartbeatTimeoutMills is replaced
 * by the alive member of its sync state set with the highest maxOffset
 * (then the lowest id). Each election compares the epoch it was decided
 * at, so a retried or late submit cannot elect twice.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "errors.h"
#include "log.h"
#include "namesrv_ctl.h"

ns_ctl_live *namesrv__ctl_live_get(ns_ctl *sc, const char *name, int64_t id, bool create)
{
    char key[sizeof(((ns_ctl_live *)0)->key)];
    snprintf(key, sizeof key, "%s/%" PRId64, name, id);
    ns_ctl_live *l = NULL;
    HASH_FIND_STR(sc->live, key, l);
    if (l || !create)
        return l;
    l = proto_xcalloc(1, sizeof *l);
    memcpy(l->key, key, sizeof key);
    snprintf(l->name, sizeof l->name, "%s", name);
    l->id = id;
    l->timeout_ms = NS_CTL_DEFAULT_TIMEOUT_MS;
    l->max_offset = -1;
    HASH_ADD_STR(sc->live, key, l);
    return l;
}

static bool live_ok(ns_ctl *sc, const ns_ctl_live *l)
{
    return l && (ev_now(sc->ns->loop) - l->last_heard) * 1000.0 <= (double)l->timeout_ms;
}

bool namesrv__ctl_alive(ns_ctl *sc, const char *name, int64_t id)
{
    return live_ok(sc, namesrv__ctl_live_get(sc, name, id, false));
}

void namesrv__ctl_live_grace(ns_ctl *sc)
{
    double now = ev_now(sc->ns->loop);
    ctl_group g;
    for (size_t i = 0; ctl_node_query_at(sc->node, i, &g) == 0; i++)
        for (size_t b = 0; b < g.n_brokers; b++)
            namesrv__ctl_live_get(sc, g.name, g.brokers[b].id, true)->last_heard = now;
    proto_log(PROTO_LOG_INFO, "controller: %s is the leader; every broker has one timeout "
              "to be heard from", sc->self_id);
}

void namesrv__ctl_live_free(ns_ctl *sc)
{
    ns_ctl_live *l, *tmp;
    HASH_ITER(hh, sc->live, l, tmp) {
        HASH_DEL(sc->live, l);
        free(l);
    }
}

/* ------------------------------------------------------------------ */
/* Elections                                                            */

static void elect_done(ns_ctl *sc, ns_ctl_job *job)
{
    sc->jobs_in_flight--;
    if (job->rc == 0)
        proto_log(PROTO_LOG_WARN, "controller: %s: elected broker %" PRId64 " master at epoch %"
                  PRIu64 ", replacing %" PRId64 ": %s", job->cmd.name, job->res.master_id,
                  job->res.epoch, job->old_master, job->why);
    else
        proto_log(PROTO_LOG_WARN, "controller: %s: election of %" PRId64 " not applied (%s): %s",
                  job->cmd.name, job->cmd.broker_id, lsmq_strerror(job->rc), job->why);
}

static void elect(ns_ctl *sc, const ctl_group *g, int64_t pick, const char *why)
{
    ns_ctl_job *job = namesrv__ctl_job_new(sc, NULL, NULL, elect_done);
    ctl_cmd_elect_at(&job->cmd, g->name, pick, g->epoch);
    job->old_master = g->master_id;
    snprintf(job->why, sizeof job->why, "%s", why);
    sc->jobs_in_flight++;
    namesrv__ctl_submit(sc, job);
}

int64_t namesrv__ctl_successor(ns_ctl *sc, const ctl_group *g)
{
    int64_t pick = CTL_NO_BROKER, best = INT64_MIN;
    for (size_t i = 0; i < g->n_sync; i++) {
        if (g->sync[i] == g->master_id)
            continue;
        ns_ctl_live *l = namesrv__ctl_live_get(sc, g->name, g->sync[i], false);
        if (!live_ok(sc, l))
            continue;
        /* Ids ascend in the set: a tie keeps the lower id. */
        if (pick == CTL_NO_BROKER || l->max_offset > best) {
            pick = g->sync[i];
            best = l->max_offset;
        }
    }
    return pick;
}

/*
 * The master's timeout. A leader elected after the master went silent
 * never heard its own: take the longest its group's brokers declare
 * (they share a configuration), rather than the default.
 */
static uint32_t master_timeout(ns_ctl *sc, const ctl_group *g, const ns_ctl_live *m)
{
    if (m->timeout_heard)
        return m->timeout_ms;
    uint32_t longest = 0;
    for (size_t i = 0; i < g->n_brokers; i++) {
        ns_ctl_live *l = namesrv__ctl_live_get(sc, g->name, g->brokers[i].id, false);
        if (l && l->timeout_heard && l->timeout_ms > longest)
            longest = l->timeout_ms;
    }
    return longest ? longest : m->timeout_ms;
}

static void scan_group(ns_ctl *sc, const ctl_group *g)
{
    char why[160];
    if (g->master_id == CTL_NO_BROKER) {
        if (g->n_brokers > 0 && namesrv__ctl_alive(sc, g->name, g->brokers[0].id))
            elect(sc, g, g->brokers[0].id, "first master of the group");
        return;
    }
    ns_ctl_live *m = namesrv__ctl_live_get(sc, g->name, g->master_id, true);
    double silent_ms = (ev_now(sc->ns->loop) - m->last_heard) * 1000.0;
    uint32_t timeout_ms = master_timeout(sc, g, m);
    if (silent_ms <= (double)timeout_ms)
        return;
    int64_t pick = namesrv__ctl_successor(sc, g);
    if (pick == CTL_NO_BROKER) {
        if (!m->warned) {
            proto_log(PROTO_LOG_WARN, "controller: %s: master %" PRId64 " silent for %.0f ms "
                      "and no member of the sync state set is alive: no election",
                      g->name, g->master_id, silent_ms);
            m->warned = true;
        }
        return;
    }
    snprintf(why, sizeof why, "master %" PRId64 " silent for %.0f ms (timeout %u ms)",
             g->master_id, silent_ms, timeout_ms);
    elect(sc, g, pick, why);
}

void namesrv__ctl_scan(ns_ctl *sc)
{
    ctl_group g;
    for (size_t i = 0; ctl_node_query_at(sc->node, i, &g) == 0; i++)
        scan_group(sc, &g);
}
