#include "e2e_history.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "e2e_msg.h"
#include "message_id.h"
#include "record.h"
#include "remoting.h"
#include "wire.h"

#define REPORT_MAX 10     /* problems of each kind described on stderr */
#define PULL_BATCH 1024   /* maxMsgNums of the checker's pulls */
#define PULL_IDLE_MAX 100 /* answers without progress before a queue counts as unreadable */

/* ---- The history ----------------------------------------------------------- */

/* One SEND_OK. */
typedef struct ack {
    char *body;
    int queue;
    int64_t offset;
    int port;      /* the store host's port from the offset message id; 0 unknown */
    int64_t at_ms;
} ack;

/* A body the producers acknowledged or the consumer received, or both. */
typedef struct body_entry {
    char *body;     /* NULL: a free slot */
    long ack;       /* index into acks, or -1 */
    long consumed;  /* deliveries */
} body_entry;

struct e2e_history {
    pthread_mutex_t lock;
    ack *acks;
    long n_acks, cap_acks;
    body_entry *slots; /* open addressing, a power of two of them */
    size_t n_slots, used;
    long failed;
    long consumed_acked; /* entries with an ack and at least one delivery */
};

static void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size);
    if (!q)
        abort();
    return q;
}

static char *xstrndup(const char *s, size_t len)
{
    char *d = xrealloc(NULL, len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

e2e_history *e2e_history_create(void)
{
    e2e_history *h = xrealloc(NULL, sizeof *h);
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->lock, NULL);
    h->n_slots = 1024;
    h->slots = xrealloc(NULL, h->n_slots * sizeof *h->slots);
    memset(h->slots, 0, h->n_slots * sizeof *h->slots);
    return h;
}

void e2e_history_destroy(e2e_history *h)
{
    if (!h)
        return;
    for (long i = 0; i < h->n_acks; i++)
        free(h->acks[i].body);
    for (size_t i = 0; i < h->n_slots; i++)
        free(h->slots[i].body);
    free(h->acks);
    free(h->slots);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* FNV-1a. */
static uint64_t body_hash(const char *s, size_t len)
{
    uint64_t x = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        x = (x ^ (uint8_t)s[i]) * 1099511628211ull;
    return x;
}

/* The slot holding body, or the free slot where it belongs. Lock held. */
static body_entry *slot_of(body_entry *slots, size_t n_slots, const char *body, size_t len)
{
    size_t i = body_hash(body, len) & (n_slots - 1);
    while (slots[i].body &&
           (strncmp(slots[i].body, body, len) != 0 || slots[i].body[len] != '\0'))
        i = (i + 1) & (n_slots - 1);
    return &slots[i];
}

/* Twice the slots, every entry moved. Lock held. */
static void slots_grow(e2e_history *h)
{
    size_t n = h->n_slots * 2;
    body_entry *slots = xrealloc(NULL, n * sizeof *slots);
    memset(slots, 0, n * sizeof *slots);
    for (size_t i = 0; i < h->n_slots; i++) {
        body_entry *e = &h->slots[i];
        if (e->body)
            *slot_of(slots, n, e->body, strlen(e->body)) = *e;
    }
    free(h->slots);
    h->slots = slots;
    h->n_slots = n;
}

/* body's entry, added if new. Lock held. */
static body_entry *entry_get(e2e_history *h, const char *body, size_t len)
{
    if (2 * (h->used + 1) > h->n_slots)
        slots_grow(h);
    body_entry *e = slot_of(h->slots, h->n_slots, body, len);
    if (!e->body) {
        e->body = xstrndup(body, len);
        e->ack = -1;
        h->used++;
    }
    return e;
}

/* The port of an offset message id's store host, or 0. */
static int store_port(const char *offset_msg_id)
{
    proto_host host;
    uint64_t pos;
    if (!offset_msg_id ||
        proto_msgid_decode(offset_msg_id, strlen(offset_msg_id), &host, &pos) != 0)
        return 0;
    return (int)host.port;
}

void e2e_history_acked(e2e_history *h, const char *body, int queue, int64_t offset,
                       const char *offset_msg_id)
{
    int port = store_port(offset_msg_id);
    pthread_mutex_lock(&h->lock);
    if (h->n_acks == h->cap_acks) {
        h->cap_acks = h->cap_acks ? 2 * h->cap_acks : 4096;
        h->acks = xrealloc(h->acks, (size_t)h->cap_acks * sizeof *h->acks);
    }
    /* Stamped under the lock: the acks are in time order. */
    ack a = {xstrndup(body, strlen(body)), queue, offset, port, proto_mono_ms()};
    body_entry *e = entry_get(h, body, strlen(body));
    if (e->ack < 0) {
        e->ack = h->n_acks;
        if (e->consumed > 0)
            h->consumed_acked++;
    }
    h->acks[h->n_acks++] = a;
    pthread_mutex_unlock(&h->lock);
}

void e2e_history_failed(e2e_history *h)
{
    pthread_mutex_lock(&h->lock);
    h->failed++;
    pthread_mutex_unlock(&h->lock);
}

void e2e_history_consumed(e2e_history *h, const void *body, size_t len)
{
    pthread_mutex_lock(&h->lock);
    body_entry *e = entry_get(h, body, len);
    if (e->consumed++ == 0 && e->ack >= 0)
        h->consumed_acked++;
    pthread_mutex_unlock(&h->lock);
}

long e2e_history_acked_count(e2e_history *h)
{
    pthread_mutex_lock(&h->lock);
    long n = h->n_acks;
    pthread_mutex_unlock(&h->lock);
    return n;
}

long e2e_history_failed_count(e2e_history *h)
{
    pthread_mutex_lock(&h->lock);
    long n = h->failed;
    pthread_mutex_unlock(&h->lock);
    return n;
}

bool e2e_history_all_consumed(e2e_history *h)
{
    pthread_mutex_lock(&h->lock);
    bool all = h->consumed_acked == h->n_acks;
    pthread_mutex_unlock(&h->lock);
    return all;
}

static bool port_matches(int ack_port, int port)
{
    if (port > 0)
        return ack_port == port;
    if (port < 0)
        return ack_port != -port;
    return true;
}

int64_t e2e_history_first_ack(e2e_history *h, int64_t since_ms, int port)
{
    int64_t at = -1;
    pthread_mutex_lock(&h->lock);
    for (long i = h->n_acks - 1; i >= 0 && h->acks[i].at_ms >= since_ms; i--)
        if (port_matches(h->acks[i].port, port))
            at = h->acks[i].at_ms;
    pthread_mutex_unlock(&h->lock);
    return at;
}

int64_t e2e_history_max_gap_ms(e2e_history *h, int64_t from_ms, int64_t to_ms)
{
    int64_t last = from_ms, gap = 0;
    pthread_mutex_lock(&h->lock);
    for (long i = 0; i < h->n_acks; i++) {
        int64_t t = h->acks[i].at_ms;
        if (t < from_ms || t > to_ms)
            continue;
        if (t - last > gap)
            gap = t - last;
        last = t;
    }
    pthread_mutex_unlock(&h->lock);
    return to_ms - last > gap ? to_ms - last : gap;
}

/* ---- A broker's copy of the topic ------------------------------------------- */

/* One queue as a broker stores it: bodies by offset (NULL: nothing read there). */
typedef struct queue_copy {
    char **bodies;
    int64_t n;
} queue_copy;

static void queue_copy_free(queue_copy *q)
{
    for (int64_t i = 0; i < q->n; i++)
        free(q->bodies[i]);
    free(q->bodies);
    memset(q, 0, sizeof *q);
}

static const char *queue_copy_at(const queue_copy *q, int64_t offset)
{
    return offset >= 0 && offset < q->n ? q->bodies[offset] : NULL;
}

/* A request on fd; the response's code, *offset its "offset" field. -1 on a transport error. */
static int max_offset(int fd, const char *topic, int queue, int64_t *offset)
{
    proto_cmd *req = proto_cmd_request(RC_GET_MAX_OFFSET), *resp = NULL;
    uint8_t *frame = NULL;
    proto_cmd_set(req, "topic", topic);
    proto_cmd_set_i64(req, "queueId", queue);
    if (wire_call(fd, req, NULL, 0, &resp, &frame) != 0)
        return -1;
    int code = resp->code;
    *offset = e2e_i64(resp, "offset");
    proto_cmd_free(resp);
    free(frame);
    return code;
}

/* Keep the records of a pull answer in q; the offset to pull next. */
static int64_t keep_records(queue_copy *q, const proto_cmd *resp, int64_t offset,
                            proto_record *recs)
{
    size_t n = e2e_records(resp->body, resp->body_len, recs, PULL_BATCH);
    int64_t next = e2e_i64(resp, "nextBeginOffset");
    for (size_t i = 0; i < n; i++) {
        int64_t at = recs[i].queue_offset;
        if (at >= 0 && at < q->n && !q->bodies[at])
            q->bodies[at] = xstrndup((const char *)recs[i].body, recs[i].body_len);
        if (at + 1 > next)
            next = at + 1;
    }
    return next > offset ? next : offset;
}

/*
 * Read queue of topic from the broker on fd, offsets 0 up to its max
 * offset. 0, or -1 when the broker stops making progress or answers
 * nothing.
 */
static int read_queue(int fd, const char *topic, int queue, queue_copy *q, proto_record *recs)
{
    int64_t max = 0;
    if (max_offset(fd, topic, queue, &max) != RS_SUCCESS || max < 0)
        return -1;
    q->n = max;
    q->bodies = xrealloc(NULL, (size_t)(max ? max : 1) * sizeof *q->bodies);
    memset(q->bodies, 0, (size_t)(max ? max : 1) * sizeof *q->bodies);
    int64_t offset = 0;
    for (int idle = 0; offset < max;) {
        proto_cmd *resp = NULL;
        uint8_t *frame = NULL;
        if (wire_call(fd, e2e_pull("e2e-history-check", topic, queue, offset, PULL_BATCH, 0, 0,
                                   NULL),
                      NULL, 0, &resp, &frame) != 0)
            return -1;
        int64_t next = resp->code == RS_SUCCESS ? keep_records(q, resp, offset, recs)
                                                : e2e_i64(resp, "nextBeginOffset");
        proto_cmd_free(resp);
        free(frame);
        if (next > offset) {
            offset = next;
            idle = 0;
        } else if (++idle > PULL_IDLE_MAX) {
            fprintf(stderr, "history: queue %d stuck at offset %lld of %lld\n", queue,
                    (long long)offset, (long long)max);
            return -1;
        } else {
            usleep(20000);
        }
    }
    return 0;
}

/* Every queue of topic from the broker on port into copies[queues]. */
static int read_broker(int port, const char *topic, int queues, queue_copy *copies)
{
    int fd = wire_connect(port, 10000);
    if (fd < 0) {
        fprintf(stderr, "history: broker :%d does not answer\n", port);
        return -1;
    }
    proto_record *recs = xrealloc(NULL, PULL_BATCH * sizeof *recs);
    int rc = 0;
    for (int q = 0; q < queues && rc == 0; q++)
        if ((rc = read_queue(fd, topic, q, &copies[q], recs)) != 0)
            fprintf(stderr, "history: broker :%d: queue %d of %s unreadable\n", port, q, topic);
    free(recs);
    close(fd);
    return rc;
}

/* ---- The checks ------------------------------------------------------------- */

/* Acknowledged bodies not at their (queue, offset) on some broker. Lock held. */
static long count_lost(const e2e_history *h, queue_copy **copies, const int *ports, int n)
{
    long lost = 0;
    for (long i = 0; i < h->n_acks; i++) {
        const ack *a = &h->acks[i];
        for (int b = 0; b < n; b++) {
            const char *got = queue_copy_at(&copies[b][a->queue], a->offset);
            if (got && strcmp(got, a->body) == 0)
                continue;
            if (lost++ < REPORT_MAX)
                fprintf(stderr,
                        "history: lost: %s acknowledged at queue %d offset %lld (by :%d); "
                        "broker :%d holds %s there\n",
                        a->body, a->queue, (long long)a->offset, a->port, ports[b],
                        got ? got : "nothing");
            break;
        }
    }
    return lost;
}

/* (queue, offset)s where two brokers hold different bodies. */
static long count_conflicts(queue_copy **copies, const int *ports, int n, int queues)
{
    long conflicts = 0;
    for (int q = 0; q < queues; q++) {
        int64_t end = 0;
        for (int b = 0; b < n; b++)
            end = copies[b][q].n > end ? copies[b][q].n : end;
        for (int64_t off = 0; off < end; off++) {
            const char *first = NULL;
            int first_b = 0;
            for (int b = 0; b < n; b++) {
                const char *got = queue_copy_at(&copies[b][q], off);
                if (!got)
                    continue;
                if (!first) {
                    first = got;
                    first_b = b;
                } else if (strcmp(first, got) != 0) {
                    if (conflicts++ < REPORT_MAX)
                        fprintf(stderr,
                                "history: conflict: queue %d offset %lld holds %s on :%d, "
                                "%s on :%d\n",
                                q, (long long)off, first, ports[first_b], got, ports[b]);
                    break;
                }
            }
        }
    }
    return conflicts;
}

/* What the consumer received. Lock held. */
static void count_consumed(const e2e_history *h, e2e_history_report *out)
{
    long missing = 0;
    for (size_t i = 0; i < h->n_slots; i++) {
        const body_entry *e = &h->slots[i];
        if (!e->body)
            continue;
        if (e->consumed > 1)
            out->duplicates += e->consumed - 1;
        if (e->ack < 0)
            continue;
        if (e->consumed > 0)
            out->consumed++;
        else if (missing++ < REPORT_MAX)
            fprintf(stderr, "history: never consumed: %s (queue %d offset %lld)\n", e->body,
                    h->acks[e->ack].queue, (long long)h->acks[e->ack].offset);
    }
}

int e2e_history_check(e2e_history *h, const char *topic, int queues, const int *ports, int n,
                      e2e_history_report *out)
{
    memset(out, 0, sizeof *out);
    queue_copy **copies = xrealloc(NULL, (size_t)n * sizeof *copies);
    int rc = 0;
    for (int b = 0; b < n; b++) {
        copies[b] = xrealloc(NULL, (size_t)queues * sizeof **copies);
        memset(copies[b], 0, (size_t)queues * sizeof **copies);
        if (read_broker(ports[b], topic, queues, copies[b]) != 0)
            rc = -1;
    }
    pthread_mutex_lock(&h->lock);
    out->acknowledged = h->n_acks;
    out->failed = h->failed;
    for (long i = 0; i < h->n_acks; i++) {
        if (h->acks[i].queue < 0 || h->acks[i].queue >= queues) {
            fprintf(stderr, "history: %s acknowledged on queue %d, outside the topic\n",
                    h->acks[i].body, h->acks[i].queue);
            rc = -1;
        }
    }
    if (rc == 0)
        out->lost = count_lost(h, copies, ports, n);
    count_consumed(h, out);
    pthread_mutex_unlock(&h->lock);
    out->conflicts = count_conflicts(copies, ports, n, queues);
    for (int b = 0; b < n; b++) {
        for (int q = 0; q < queues; q++)
            queue_copy_free(&copies[b][q]);
        free(copies[b]);
    }
    free(copies);
    return rc;
}
