/*
 * The sync state set bookkeeping of a master in controller mode
 * (broker_sync_set.h says the rules and why they are safe).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_sync_set.h"

void broker_sync_set_init(broker_sync_set *s, int64_t self_id, uint32_t not_catchup_ms)
{
    memset(s, 0, sizeof *s);
    s->self_id = self_id;
    s->not_catchup_ms = not_catchup_ms;
}

int broker_sync_set_parse_ids(const char *text, int64_t *ids, size_t cap)
{
    size_t n = 0;
    const char *p = text ? text : "";
    while (*p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || n == cap)
            return -1;
        ids[n++] = v;
        p = end;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return (int)n;
}

void broker_sync_set_registry(broker_sync_set *s, const char *brokers)
{
    s->n_reg = 0;
    const char *p = brokers ? brokers : "";
    while (*p && s->n_reg < SSS_MAX) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq) {
            sss_broker *b = &s->reg[s->n_reg];
            b->id = strtoll(p, NULL, 10);
            size_t alen = len - (size_t)(eq + 1 - p);
            if (alen < sizeof b->addr) {
                memcpy(b->addr, eq + 1, alen);
                b->addr[alen] = 0;
                s->n_reg++;
            }
        }
        p += len + (comma ? 1 : 0);
    }
}

static bool has_id(const int64_t *ids, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static const char *addr_of(const broker_sync_set *s, int64_t id)
{
    for (size_t i = 0; i < s->n_reg; i++)
        if (s->reg[i].id == id)
            return s->reg[i].addr;
    return NULL;
}

static sss_track *track_of(broker_sync_set *s, int64_t id, int64_t now_ms)
{
    for (size_t i = 0; i < s->n_track; i++)
        if (s->track[i].id == id)
            return &s->track[i];
    if (s->n_track == SSS_MAX)
        return NULL;
    s->track[s->n_track] = (sss_track){id, now_ms}; /* a new member starts caught up */
    return &s->track[s->n_track++];
}

void broker_sync_set_committed(broker_sync_set *s, const char *ids, int64_t now_ms)
{
    int64_t set[SSS_MAX];
    int n = broker_sync_set_parse_ids(ids, set, SSS_MAX);
    if (n < 0)
        return;
    memcpy(s->set, set, (size_t)n * sizeof set[0]);
    s->n_set = (size_t)n;
    size_t k = 0;
    for (size_t i = 0; i < s->n_cand; i++)
        if (!has_id(s->set, s->n_set, s->cand[i].id))
            s->cand[k++] = s->cand[i];
    s->n_cand = k;
    k = 0;
    for (size_t i = 0; i < s->n_track; i++)
        if (has_id(s->set, s->n_set, s->track[i].id))
            s->track[k++] = s->track[i];
    s->n_track = k;
    for (size_t i = 0; i < s->n_set; i++)
        track_of(s, s->set[i], now_ms);
}

static const broker_replica_state *rep_of(const broker_replica_state *reps, size_t n,
                                          const char *addr)
{
    for (size_t i = 0; addr && i < n; i++)
        if (strcmp(reps[i].addr, addr) == 0)
            return &reps[i];
    return NULL;
}

/* Members that stay: gone or lagging too long are dropped. */
static size_t keep_members(broker_sync_set *s, const broker_replica_state *reps, size_t n_reps,
                           int64_t now_ms, int64_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_set; i++) {
        int64_t id = s->set[i];
        if (id == s->self_id) {
            out[n++] = id;
            continue;
        }
        const broker_replica_state *r = rep_of(reps, n_reps, addr_of(s, id));
        sss_track *t = track_of(s, id, now_ms);
        if (r && r->streaming && r->acked_seq >= s->prev_last_seq && t)
            t->caught_up_ms = now_ms;
        if (t && now_ms - t->caught_up_ms > (int64_t)s->not_catchup_ms)
            continue;
        out[n++] = id;
    }
    return n;
}

/* Candidates: drop the ones gone, add new ones; the caught-up ones join `out`. */
static size_t review_candidates(broker_sync_set *s, const broker_replica_state *reps,
                                size_t n_reps, int64_t *out, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n_cand; i++) {
        const broker_replica_state *r = rep_of(reps, n_reps, addr_of(s, s->cand[i].id));
        if (!r || !r->streaming)
            continue; /* gone: sends stop waiting for it */
        if (s->cand[i].armed && r->acked_seq >= s->cand[i].need_seq && n < SSS_MAX &&
            !has_id(out, n, s->cand[i].id))
            out[n++] = s->cand[i].id;
        s->cand[k++] = s->cand[i];
    }
    s->n_cand = k;
    for (size_t i = 0; i < s->n_reg && s->n_cand < SSS_MAX; i++) {
        int64_t id = s->reg[i].id;
        if (id == s->self_id || has_id(s->set, s->n_set, id))
            continue;
        bool known = false;
        for (size_t j = 0; j < s->n_cand; j++)
            known = known || s->cand[j].id == id;
        const broker_replica_state *r = rep_of(reps, n_reps, s->reg[i].addr);
        if (!known && r && r->streaming && r->in_sync)
            s->cand[s->n_cand++] = (sss_candidate){id, false, 0};
    }
    return n;
}

static bool same_set(const int64_t *a, size_t na, const int64_t *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!has_id(b, nb, a[i]))
            return false;
    return true;
}

bool broker_sync_set_review(broker_sync_set *s, const broker_replica_state *reps, size_t n_reps,
                uint64_t last_seq, int64_t now_ms, int64_t *proposal, size_t *n_proposal)
{
    int64_t next[SSS_MAX];
    size_t n = keep_members(s, reps, n_reps, now_ms, next);
    n = review_candidates(s, reps, n_reps, next, n);
    s->prev_last_seq = last_seq;
    if (s->proposing || s->n_set == 0 || same_set(next, n, s->set, s->n_set))
        return false;
    memcpy(proposal, next, n * sizeof next[0]);
    *n_proposal = n;
    memcpy(s->proposal, next, n * sizeof next[0]);
    s->n_proposal = n;
    s->proposing = true;
    return true;
}

void broker_sync_set_arm(broker_sync_set *s, uint64_t last_seq)
{
    for (size_t i = 0; i < s->n_cand; i++) {
        if (!s->cand[i].armed) {
            s->cand[i].armed = true;
            s->cand[i].need_seq = last_seq;
        }
    }
}

void broker_sync_set_proposal_done(broker_sync_set *s)
{
    s->proposing = false;
    s->n_proposal = 0;
}

static size_t add_addr(const broker_sync_set *s, int64_t id, const char **addrs, size_t n,
                       size_t cap)
{
    const char *a = id == s->self_id ? NULL : addr_of(s, id);
    if (!a || n == cap)
        return n;
    for (size_t i = 0; i < n; i++)
        if (strcmp(addrs[i], a) == 0)
            return n;
    addrs[n] = a;
    return n + 1;
}

size_t broker_sync_set_ack_addrs(const broker_sync_set *s, const char **addrs, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_set; i++)
        n = add_addr(s, s->set[i], addrs, n, cap);
    for (size_t i = 0; i < s->n_cand; i++)
        n = add_addr(s, s->cand[i].id, addrs, n, cap);
    for (size_t i = 0; i < s->n_proposal; i++)
        n = add_addr(s, s->proposal[i], addrs, n, cap);
    return n;
}

void broker_sync_set_format(const int64_t *ids, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%" PRId64, i ? "," : "", ids[i]);
}
