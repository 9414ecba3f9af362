/*
 * The controller's life cycle inside the name server: the raft node, the
 * worker thread that waits for commits so the loop never does, and the
 * tick that follows leadership (a new leader announces its remoting
 * address, grants every broker a grace period, then scans for elections).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "errors.h"
#include "log.h"
#include "namesrv_ctl.h"

/* Leadership is looked at this often; elections every controller_scan_ms. */
#define NS_CTL_TICK_S 0.2

/* ------------------------------------------------------------------ */
/* The worker                                                           */

static void job_done_cb(void *arg)
{
    ns_ctl_job *job = arg;
    job->done(job->sc, job);
    free(job);
}

static void *worker_main(void *arg)
{
    ns_ctl *sc = arg;
    for (;;) {
        pthread_mutex_lock(&sc->mu);
        while (!sc->head && !sc->stopping)
            pthread_cond_wait(&sc->cond, &sc->mu);
        if (sc->stopping) {
            pthread_mutex_unlock(&sc->mu);
            return NULL;
        }
        ns_ctl_job *job = sc->head;
        sc->head = job->next;
        if (!sc->head)
            sc->tail = NULL;
        pthread_mutex_unlock(&sc->mu);
        job->rc = ctl_node_submit(sc->node, &job->cmd, NS_CTL_SUBMIT_TIMEOUT_MS, &job->res);
        server_post(sc->ns->srv, job_done_cb, job);
    }
}

void namesrv__ctl_submit(ns_ctl *sc, ns_ctl_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&sc->mu);
    if (sc->tail)
        sc->tail->next = job;
    else
        sc->head = job;
    sc->tail = job;
    pthread_cond_signal(&sc->cond);
    pthread_mutex_unlock(&sc->mu);
}

ns_ctl_job *namesrv__ctl_job_new(ns_ctl *sc, conn *c, const proto_cmd *req, ns_ctl_done_fn done)
{
    ns_ctl_job *job = proto_xcalloc(1, sizeof *job);
    job->sc = sc;
    job->done = done;
    if (c && req) {
        job->conn_id = server_conn_id(c);
        job->opaque = req->opaque;
        job->oneway = proto_cmd_is_oneway(req);
        job->code = req->code;
    }
    return job;
}

conn *namesrv__ctl_job_conn(ns_ctl *sc, const ns_ctl_job *job)
{
    return job->conn_id ? server_conn_find(sc->ns->srv, job->conn_id) : NULL;
}

void namesrv__ctl_leader_addr(ns_ctl *sc, char id[CTL_ID_MAX + 1], char addr[CTL_ADDR_MAX + 1])
{
    id[0] = addr[0] = '\0';
    if (!ctl_node_leader(sc->node, id, NULL))
        return;
    if (strcmp(id, sc->self_id) == 0)
        snprintf(addr, CTL_ADDR_MAX + 1, "%s", sc->addr);
    else if (ctl_node_controller_addr(sc->node, id, addr) != 0)
        addr[0] = '\0';
}

/* ------------------------------------------------------------------ */
/* Leadership                                                           */

static void announce_done(ns_ctl *sc, ns_ctl_job *job)
{
    sc->jobs_in_flight--;
    if (job->rc == 0) {
        sc->announced = true;
        proto_log(PROTO_LOG_INFO, "controller: %s leads, serving at %s", sc->self_id, sc->addr);
    }
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    ns_ctl *sc = (ns_ctl *)((char *)w - offsetof(ns_ctl, tick));
    bool leader = ctl_node_is_leader(sc->node);
    if (leader && !sc->leader) {
        namesrv__ctl_live_grace(sc);
        sc->announced = false;
        sc->last_scan = ev_now(loop);
    }
    sc->leader = leader;
    if (!leader || sc->jobs_in_flight > 0)
        return;
    if (!sc->announced) {
        char known[CTL_ADDR_MAX + 1];
        if (ctl_node_controller_addr(sc->node, sc->self_id, known) == 0 &&
            strcmp(known, sc->addr) == 0) {
            sc->announced = true;
        } else {
            ns_ctl_job *job = namesrv__ctl_job_new(sc, NULL, NULL, announce_done);
            ctl_cmd_controller_addr(&job->cmd, sc->self_id, sc->addr);
            sc->jobs_in_flight++;
            namesrv__ctl_submit(sc, job);
            return;
        }
    }
    double now = ev_now(loop);
    if ((now - sc->last_scan) * 1000.0 >= (double)sc->ns->cfg.controller_scan_ms) {
        sc->last_scan = now;
        namesrv__ctl_scan(sc);
    }
}

/* ------------------------------------------------------------------ */
/* Routes                                                               */

bool namesrv__ctl_refuses_master(namesrv *ns, const char *broker_name, const char *addr,
                                 int64_t epoch, char *master, size_t master_len)
{
    ctl_group g;
    if (!ns->ctl || ctl_node_query(ns->ctl->node, broker_name, &g) != 0 ||
        g.master_id == CTL_NO_BROKER || strcmp(g.master_addr, addr) == 0)
        return false;
    /* A master of a newer epoch than this node has applied yet: this node lags, not it. */
    if (epoch > 0 && (uint64_t)epoch > g.epoch)
        return false;
    snprintf(master, master_len, "%s", g.master_addr);
    return true;
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                       */

/* Our remoting address: the host of our raft address, the name server's port. */
static int own_addr(const namesrv_config *cfg, char *out, size_t cap)
{
    size_t n = strlen(cfg->controller_self_id);
    for (const char *e = cfg->controller_peers; *e;) {
        size_t len = strcspn(e, ";,");
        if (len > n && strncmp(e, cfg->controller_self_id, n) == 0 && e[n] == '=') {
            const char *host = e + n + 1;
            const char *colon = memchr(host, ':', len - n - 1);
            if (!colon)
                return LSMQ_EINVAL;
            snprintf(out, cap, "%.*s:%d", (int)(colon - host), host, cfg->listen_port);
            return 0;
        }
        e += len;
        e += *e ? 1 : 0;
    }
    return LSMQ_EINVAL;
}

int namesrv__ctl_start(namesrv *ns)
{
    ns_ctl *sc = proto_xcalloc(1, sizeof *sc);
    sc->ns = ns;
    snprintf(sc->self_id, sizeof sc->self_id, "%s", ns->cfg.controller_self_id);
    int rc = own_addr(&ns->cfg, sc->addr, sizeof sc->addr);
    if (rc != 0) {
        proto_log(PROTO_LOG_ERROR, "controller: no address for %s in controllerPeers '%s'",
                  sc->self_id, ns->cfg.controller_peers);
        free(sc);
        return rc;
    }
    ctl_node_config nc = {
        .self_id = ns->cfg.controller_self_id,
        .peers = ns->cfg.controller_peers,
        .store_dir = ns->cfg.controller_store_path,
    };
    rc = ctl_node_start(&nc, &sc->node);
    if (rc != 0) {
        proto_log(PROTO_LOG_ERROR, "controller: cannot start %s (store %s): %s", sc->self_id,
                  nc.store_dir, lsmq_strerror(rc));
        free(sc);
        return rc;
    }
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cond, NULL);
    if (pthread_create(&sc->worker, NULL, worker_main, sc) != 0) {
        proto_log(PROTO_LOG_ERROR, "controller: cannot start its worker thread");
        ctl_node_stop(sc->node);
        pthread_cond_destroy(&sc->cond);
        pthread_mutex_destroy(&sc->mu);
        free(sc);
        return LSMQ_EIO;
    }
    ev_timer_init(&sc->tick, tick_cb, NS_CTL_TICK_S, NS_CTL_TICK_S);
    ev_timer_start(ns->loop, &sc->tick);
    ns->ctl = sc;
    namesrv__ctl_handlers(sc, true);
    proto_log(PROTO_LOG_INFO, "controller: %s started (peers %s, store %s, remoting %s)",
              sc->self_id, nc.peers, nc.store_dir, sc->addr);
    return 0;
}

void namesrv__ctl_stop(namesrv *ns)
{
    ns_ctl *sc = ns->ctl;
    if (!sc)
        return;
    namesrv__ctl_handlers(sc, false);
    ev_timer_stop(ns->loop, &sc->tick);
    /* The worker finishes the submit it is in (bounded by its timeout). */
    pthread_mutex_lock(&sc->mu);
    sc->stopping = true;
    pthread_cond_signal(&sc->cond);
    pthread_mutex_unlock(&sc->mu);
    pthread_join(sc->worker, NULL);
    server_run_posted(ns->srv); /* jobs it finished still point at sc */
    while (sc->head) {
        ns_ctl_job *job = sc->head;
        sc->head = job->next;
        free(job);
    }
    ctl_node_stop(sc->node);
    namesrv__ctl_live_free(sc);
    pthread_cond_destroy(&sc->cond);
    pthread_mutex_destroy(&sc->mu);
    free(sc);
    ns->ctl = NULL;
}
