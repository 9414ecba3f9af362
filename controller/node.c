/*
 * The raft node: one controller of the group, with libraft over raft_uv
 * (segmented log, metadata and snapshots in store_dir) and its TCP
 * transport, on a libuv loop that runs on a thread of its own.
 *
 * Start-up happens on the caller's thread before the loop thread exists:
 * parse the peers, bootstrap the store with all of them on first use
 * (every controller does the same; raft refuses a second bootstrap, which
 * is how an existing store is told apart), start raft, then run the loop.
 * Stop sets `stopping` and wakes the loop, which fails queued requests,
 * closes raft and then raft_uv, its transport and our handles; the loop
 * runs out of handles and the thread ends.
 */
#include "node.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "codec.h"
#include "errors.h"
#include "log.h"

#define DEFAULT_ELECTION_MS 1000
#define DEFAULT_HEARTBEAT_MS 100
#define CONNECT_RETRY_MS 200

void ctl_node__leader_of(ctl_node *n, char *id, char *addr)
{
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&n->raft, &lid, &laddr);
    const ctl_peer *p = lid ? ctl_peers_by_raft_id(n->peers, n->n_peers, lid) : NULL;
    id[0] = addr[0] = '\0';
    if (p) {
        memcpy(id, p->id, CTL_ID_MAX + 1);
        memcpy(addr, p->addr, CTL_ADDR_MAX + 1);
    }
}

/* Each turn of the loop: publish the role, leader and applied index. */
static void publish_cb(uv_check_t *h)
{
    ctl_node *n = h->data;
    char id[CTL_ID_MAX + 1], addr[CTL_ADDR_MAX + 1];
    ctl_node__leader_of(n, id, addr);
    bool leader = raft_state(&n->raft) == RAFT_LEADER;
    uint64_t applied = raft_last_applied(&n->raft);
    pthread_mutex_lock(&n->mu);
    if (leader != n->is_leader || strcmp(id, n->leader_id) != 0)
        proto_log(PROTO_LOG_INFO, "controller: %s sees leader %s%s", n->self->id,
                  id[0] ? id : "(none)", leader ? " (itself)" : "");
    n->is_leader = leader;
    memcpy(n->leader_id, id, sizeof(id));
    memcpy(n->leader_addr, addr, sizeof(addr));
    n->applied_index = applied;
    pthread_mutex_unlock(&n->mu);
}

static void raft_closed_cb(struct raft *r)
{
    ctl_node *n = r->data;
    raft_uv_close(&n->io);
    raft_uv_tcp_close(&n->transport);
    uv_close((uv_handle_t *)&n->wake, NULL);
    uv_close((uv_handle_t *)&n->publish, NULL);
}

static void wake_cb(uv_async_t *h)
{
    ctl_node *n = h->data;
    ctl_submit__drain(n);
    pthread_mutex_lock(&n->mu);
    bool stopping = n->stopping;
    pthread_mutex_unlock(&n->mu);
    if (stopping && !n->closing) {
        n->closing = true;
        uv_check_stop(&n->publish);
        raft_close(&n->raft, raft_closed_cb);
    }
}

static void *loop_main(void *arg)
{
    ctl_node *n = arg;
    uv_run(&n->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char *p = proto_xstrdup(path);
    int rc = 0;
    for (char *s = p + 1; rc == 0; s++) {
        bool end = *s == '\0';
        if (*s != '/' && !end)
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            rc = -errno;
        if (end)
            break;
        *s = '/';
    }
    free(p);
    return rc;
}

static int bootstrap(ctl_node *n)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = 0;
    for (size_t i = 0; i < n->n_peers && rv == 0; i++)
        rv = raft_configuration_add(&conf, n->peers[i].raft_id, n->peers[i].addr, RAFT_VOTER);
    if (rv == 0)
        rv = raft_bootstrap(&n->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP)
        return 0; /* the store has a log already */
    if (rv == 0)
        proto_log(PROTO_LOG_INFO, "controller: %s bootstrapped a new store with %zu peers",
                  n->self->id, n->n_peers);
    return rv;
}

/* Drop what start-up made once raft_init succeeded: raft closes the rest. */
static void abort_started(ctl_node *n)
{
    n->closing = true;
    raft_close(&n->raft, raft_closed_cb);
    uv_run(&n->loop, UV_RUN_DEFAULT);
    uv_loop_close(&n->loop);
}

static void node_free(ctl_node *n)
{
    ctl_sm_destroy(n->sm);
    pthread_cond_destroy(&n->cond);
    pthread_mutex_destroy(&n->mu);
    pthread_mutex_destroy(&n->state_mu);
    free(n);
}

int ctl_node_start(const ctl_node_config *cfg, ctl_node **out)
{
    ctl_node *n = proto_xcalloc(1, sizeof(*n));
    pthread_mutex_init(&n->state_mu, NULL);
    pthread_mutex_init(&n->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cond, &ca);
    pthread_condattr_destroy(&ca);
    n->sm = ctl_sm_create();

    if (!cfg->self_id || !cfg->store_dir || !cfg->store_dir[0] ||
        ctl_peers_parse(cfg->peers, n->peers, &n->n_peers) != 0)
        goto bad_config;
    n->self = ctl_peers_by_id(n->peers, n->n_peers, cfg->self_id);
    if (!n->self) {
        proto_log(PROTO_LOG_ERROR, "controller: %s is not in the peer list", cfg->self_id);
        goto bad_config;
    }
    int rc = make_dirs(cfg->store_dir);
    if (rc != 0) {
        proto_log(PROTO_LOG_ERROR, "controller: cannot create %s: %s", cfg->store_dir,
                  lsmq_strerror(rc));
        node_free(n);
        return LSMQ_EIO;
    }

    int rv = uv_loop_init(&n->loop);
    if (rv != 0) {
        proto_log(PROTO_LOG_ERROR, "controller: uv_loop_init: %s", uv_strerror(rv));
        node_free(n);
        return LSMQ_EIO;
    }
    const char *step = "raft_uv_tcp_init";
    rv = raft_uv_tcp_init(&n->transport, &n->loop);
    if (rv != 0)
        goto fail_loop;
    step = "raft_uv_init";
    rv = raft_uv_init(&n->io, &n->loop, cfg->store_dir, &n->transport);
    if (rv != 0) {
        raft_uv_tcp_close(&n->transport);
        goto fail_loop;
    }
    raft_uv_set_connect_retry_delay(&n->io, CONNECT_RETRY_MS);
    ctl_fsm__init(n);
    step = "raft_init";
    rv = raft_init(&n->raft, &n->io, &n->fsm, n->self->raft_id, n->self->addr);
    if (rv != 0) {
        raft_uv_close(&n->io);
        raft_uv_tcp_close(&n->transport);
        goto fail_loop;
    }
    n->raft.data = n;
    raft_set_election_timeout(&n->raft, cfg->election_timeout_ms ? cfg->election_timeout_ms
                                                                 : DEFAULT_ELECTION_MS);
    raft_set_heartbeat_timeout(&n->raft, cfg->heartbeat_timeout_ms ? cfg->heartbeat_timeout_ms
                                                                   : DEFAULT_HEARTBEAT_MS);
    /* A controller cut off for a while asks first whether it could win
     * before it bumps the term, so rejoining does not unseat the leader. */
    raft_set_pre_vote(&n->raft, true);
    if (cfg->snapshot_threshold)
        raft_set_snapshot_threshold(&n->raft, cfg->snapshot_threshold);
    if (cfg->snapshot_trailing)
        raft_set_snapshot_trailing(&n->raft, cfg->snapshot_trailing);
    uv_async_init(&n->loop, &n->wake, wake_cb);
    n->wake.data = n;
    uv_check_init(&n->loop, &n->publish);
    n->publish.data = n;
    uv_check_start(&n->publish, publish_cb);

    step = "raft_bootstrap";
    rv = bootstrap(n);
    if (rv == 0) {
        step = "raft_start";
        rv = raft_start(&n->raft);
    }
    if (rv != 0) {
        const char *why = raft_errmsg(&n->raft);
        proto_log(PROTO_LOG_ERROR, "controller: %s on %s (store %s): %s: %s%s%s", n->self->id,
                  n->self->addr, cfg->store_dir, step, raft_strerror(rv), why[0] ? ": " : "",
                  why);
        abort_started(n);
        node_free(n);
        return LSMQ_EIO;
    }
    /* The loop thread writes to peers that may have gone: with SIGPIPE
     * blocked there (it inherits the mask) a write fails with EPIPE
     * instead of killing the process, whatever the program's handlers. */
    sigset_t pipe_only, old_mask;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask);
    rv = pthread_create(&n->thread, NULL, loop_main, n);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (rv != 0) {
        proto_log(PROTO_LOG_ERROR, "controller: thread: %s", strerror(rv));
        abort_started(n);
        node_free(n);
        return LSMQ_EIO;
    }
    proto_log(PROTO_LOG_INFO, "controller: %s started on %s (store %s)", n->self->id,
              n->self->addr, cfg->store_dir);
    *out = n;
    return 0;

fail_loop:
    proto_log(PROTO_LOG_ERROR, "controller: %s: %s", step, raft_strerror(rv));
    uv_run(&n->loop, UV_RUN_DEFAULT);
    uv_loop_close(&n->loop);
    node_free(n);
    return LSMQ_EIO;
bad_config:
    node_free(n);
    return LSMQ_EINVAL;
}

void ctl_node_stop(ctl_node *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->stopping = true;
    uv_async_send(&n->wake);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->thread, NULL);
    int rv = uv_loop_close(&n->loop);
    if (rv != 0)
        proto_log(PROTO_LOG_WARN, "controller: uv_loop_close: %s", uv_strerror(rv));
    pthread_mutex_lock(&n->mu);
    while (n->callers > 0)
        pthread_cond_wait(&n->cond, &n->mu);
    pthread_mutex_unlock(&n->mu);
    proto_log(PROTO_LOG_INFO, "controller: %s stopped", n->self->id);
    node_free(n);
}

int ctl_node_query(ctl_node *n, const char *name, ctl_group *out)
{
    pthread_mutex_lock(&n->state_mu);
    const ctl_group *g = ctl_sm_find(n->sm, name);
    if (g)
        *out = *g;
    pthread_mutex_unlock(&n->state_mu);
    return g ? 0 : LSMQ_ENOTFOUND;
}

int ctl_node_query_at(ctl_node *n, size_t i, ctl_group *out)
{
    pthread_mutex_lock(&n->state_mu);
    bool found = i < ctl_sm_count(n->sm);
    if (found)
        *out = *ctl_sm_at(n->sm, i);
    pthread_mutex_unlock(&n->state_mu);
    return found ? 0 : LSMQ_ENOTFOUND;
}

int ctl_node_controller_addr(ctl_node *n, const char *id, char addr[CTL_ADDR_MAX + 1])
{
    pthread_mutex_lock(&n->state_mu);
    const char *a = ctl_sm_controller_addr(n->sm, id);
    if (a)
        snprintf(addr, CTL_ADDR_MAX + 1, "%s", a);
    pthread_mutex_unlock(&n->state_mu);
    return a ? 0 : LSMQ_ENOTFOUND;
}

bool ctl_node_is_leader(ctl_node *n)
{
    pthread_mutex_lock(&n->mu);
    bool leader = n->is_leader;
    pthread_mutex_unlock(&n->mu);
    return leader;
}

bool ctl_node_leader(ctl_node *n, char id[CTL_ID_MAX + 1], char addr[CTL_ADDR_MAX + 1])
{
    pthread_mutex_lock(&n->mu);
    bool known = n->leader_id[0] != '\0';
    if (id)
        memcpy(id, n->leader_id, CTL_ID_MAX + 1);
    if (addr)
        memcpy(addr, n->leader_addr, CTL_ADDR_MAX + 1);
    pthread_mutex_unlock(&n->mu);
    return known;
}

uint64_t ctl_node_applied_index(ctl_node *n)
{
    pthread_mutex_lock(&n->mu);
    uint64_t applied = n->applied_index;
    pthread_mutex_unlock(&n->mu);
    return applied;
}

int ctl_node_state_encode(ctl_node *n, uint8_t **data, size_t *len)
{
    pthread_mutex_lock(&n->state_mu);
    ctl_state_encode(n->sm, data, len);
    pthread_mutex_unlock(&n->state_mu);
    return 0;
}
