/*
 * query_bench: latency of the broker's message queries on a large store.
 *
 *   lsmq-query-bench load  --path DIR [--count N] [--queues Q] [--body B]
 *                          [--sample FILE] [--samples K]
 *   lsmq-query-bench query --broker HOST:PORT --sample FILE [--requests R]
 *
 * load   fills a store directory (the broker's storePathRootDir) through
 *        engine/ with N messages of B bytes on topic "QueryBench" (Q
 *        queues, message i on queue i mod Q), each with one key
 *        ("order-<i>") and a client unique id, as a producer would send
 *        them; one thread keeps 256 appends in flight, as the broker's
 *        loop does. Every (N/K)-th message's queue, offset, log position,
 *        store time, key and unique id go to the sample file.
 * query  against mqbroker started on that directory: R requests of each
 *        kind, one at a time on one connection, each for a random sampled
 *        message, checking every answer:
 *          view    VIEW_MESSAGE_BY_ID by log position (queryMsgById)
 *          key     QUERY_MESSAGE by key, any time (queryMsgByKey)
 *          uniq    QUERY_MESSAGE by unique key (queryMsgByUniqueKey)
 *          search  SEARCH_OFFSET_BY_TIMESTAMP at the message's store time
 *        and prints the latency percentiles of each, in ms.
 *
 * Output: one "result ..." line of key=value pairs on stdout; progress and
 * errors on stderr. Exit 0, 1 on a failed request or store error, 2 on
 * bad usage.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "bench_util.h"
#include "codes.h"
#include "engine.h"
#include "index.h"
#include "props.h"
#include "record.h"
#include "remoting.h"

#define TOPIC "QueryBench"
#define WINDOW 256

static uint64_t rand_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* ---- load ----------------------------------------------------------------- */

typedef struct sample {
    uint32_t queue;
    uint64_t offset;
    uint64_t position;
    int64_t store_ms;
    uint64_t i;
} sample;

typedef struct loader {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t inflight;
    int failed;
    uint64_t every;
    FILE *sample_out;
} loader;

typedef struct pending {
    loader *l;
    uint64_t i;
    uint32_t queue;
} pending;

static void unique_id(char out[33], uint64_t i)
{
    snprintf(out, 33, "7F000001%08X%016" PRIX64, 0x51u, i);
}

static void loaded(void *ctx, const engine_append_result *r)
{
    pending *p = ctx;
    loader *l = p->l;
    pthread_mutex_lock(&l->mu);
    if (r->status != 0)
        l->failed = r->status;
    else if (p->i % l->every == 0)
        fprintf(l->sample_out, "%" PRIu64 " %u %" PRIu64 " %" PRIu64 " %" PRId64 "\n", p->i,
                p->queue, r->queue_offset, r->log_position, r->store_ms);
    l->inflight--;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    free(p);
}

static int run_load(const char *path, uint64_t count, uint32_t queues, uint32_t body_len,
                    const char *sample_path, uint64_t samples)
{
    engine_config c;
    engine_config_init(&c);
    c.store_path = path;
    c.store_host.ip[0] = 127;
    c.store_host.ip[3] = 1;
    c.store_host.port = 10911;
    char err[256];
    engine *e;
    if (index_declare(&c, NULL) != 0)
        bench_die("index_declare: no room in the engine config");
    int rc = engine_open(&c, &e, err, sizeof err);
    if (rc != 0)
        bench_die("engine_open %s: %s", path, err);
    engine_topic_config tc;
    memset(&tc, 0, sizeof tc);
    snprintf(tc.name, sizeof tc.name, "%s", TOPIC);
    tc.read_queue_nums = tc.write_queue_nums = queues;
    tc.perm = ENGINE_PERM_READ | ENGINE_PERM_WRITE;
    if ((rc = engine_topic_put(e, &tc, NULL)) != 0)
        bench_die("creating %s: %s", TOPIC, lsmq_strerror(rc));

    loader l = {.every = count / samples ? count / samples : 1};
    pthread_mutex_init(&l.mu, NULL);
    pthread_cond_init(&l.cv, NULL);
    if (!(l.sample_out = fopen(sample_path, "w")))
        bench_die("cannot write %s", sample_path);
    /* Bodies compress about 2:1: half random bytes, half a copy. */
    uint8_t *pool = proto_xmalloc((size_t)body_len * 2);
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (uint32_t k = 0; k < body_len; k++)
        pool[k] = (uint8_t)rand_next(&seed);
    memcpy(pool + body_len, pool, body_len);

    uint64_t t0 = bench_now_ns(), last = t0;
    for (uint64_t i = 0; i < count && !l.failed; i++) {
        pthread_mutex_lock(&l.mu);
        while (l.inflight >= WINDOW)
            pthread_cond_wait(&l.cv, &l.mu);
        l.inflight++;
        pthread_mutex_unlock(&l.mu);
        char props[128], uniq[33];
        unique_id(uniq, i);
        int plen = snprintf(props, sizeof props,
                            "KEYS\001order-%012" PRIu64 "\002UNIQ_KEY\001%s\002WAIT\001true\002",
                            i, uniq);
        engine_msg m;
        memset(&m, 0, sizeof m);
        m.born_timestamp = proto_wall_ms();
        m.born_host.ip[0] = 127;
        m.born_host.ip[3] = 1;
        m.born_host.port = 40000;
        m.body = pool + i % body_len;
        m.body_len = body_len;
        m.props = props;
        m.props_len = (uint32_t)plen;
        pending *p = proto_xmalloc(sizeof *p);
        *p = (pending){.l = &l, .i = i, .queue = (uint32_t)(i % queues)};
        for (;;) {
            rc = engine_append(e, TOPIC, strlen(TOPIC), p->queue, &m, 1, loaded, p);
            if (rc != LSMQ_EBUSY)
                break;
            usleep(1000);
        }
        if (rc != 0)
            bench_die("append %" PRIu64 ": %s", i, lsmq_strerror(rc));
        if (bench_now_ns() - last > 5000000000u) {
            last = bench_now_ns();
            fprintf(stderr, "loaded %" PRIu64 " (%.0f msgs/s)\n", i,
                    (double)i / ((double)(last - t0) / 1e9));
        }
    }
    pthread_mutex_lock(&l.mu);
    while (l.inflight > 0)
        pthread_cond_wait(&l.cv, &l.mu);
    pthread_mutex_unlock(&l.mu);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    engine_close(e);
    fclose(l.sample_out);
    free(pool);
    if (l.failed)
        bench_die("an append failed: %s", lsmq_strerror(l.failed));
    printf("result mode=load msgs=%" PRIu64 " secs=%.1f msgs_per_s=%.0f body=%u queues=%u\n",
           count, secs, (double)count / secs, body_len, queues);
    return 0;
}

/* ---- query ---------------------------------------------------------------- */

static int connect_to(const char *hostport)
{
    char host[64];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host)
        bench_die("--broker wants HOST:PORT");
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        bench_die("bad address %s", host);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        bench_die("cannot connect to %s", hostport);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void read_full(int fd, void *buf, size_t len)
{
    for (size_t at = 0; at < len;) {
        ssize_t n = read(fd, (char *)buf + at, len - at);
        if (n <= 0)
            bench_die("connection closed by the broker");
        at += (size_t)n;
    }
}

/* Send cmd, read its response; *frame holds the bytes the response points into. */
static proto_cmd *call(int fd, proto_cmd *cmd, uint8_t **frame)
{
    static int32_t opaque = 1;
    cmd->opaque = opaque++;
    uint8_t *out;
    size_t len;
    if (proto_cmd_encode(cmd, NULL, 0, &out, &len) != 0)
        bench_die("cannot encode a request");
    for (size_t at = 0; at < len;) {
        ssize_t n = write(fd, out + at, len - at);
        if (n <= 0)
            bench_die("write to the broker failed");
        at += (size_t)n;
    }
    free(out);
    uint8_t hdr[4];
    read_full(fd, hdr, 4);
    uint32_t flen = proto_get_u32(hdr);
    *frame = proto_xmalloc(flen + 4);
    memcpy(*frame, hdr, 4);
    read_full(fd, *frame + 4, flen);
    proto_cmd *resp;
    char err[128];
    if (proto_cmd_decode(*frame, flen + 4, &resp, err, sizeof err) != 0)
        bench_die("bad response: %s", err);
    if (resp->opaque != cmd->opaque)
        bench_die("response out of order");
    proto_cmd_free(cmd);
    return resp;
}

typedef struct lat {
    uint64_t *ns;
    size_t n;
} lat;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(lat *l, double p)
{
    size_t i = (size_t)((double)(l->n - 1) * p / 100.0);
    return (double)l->ns[i] / 1e6;
}

/* The record of a body must be sample message s. */
static void expect_record(const proto_cmd *r, const sample *s, const char *what)
{
    if (r->code != RS_SUCCESS)
        bench_die("%s of message %" PRIu64 ": code %d %s", what, s->i, r->code,
            r->remark ? r->remark : "");
    proto_record rec;
    if (!r->body || proto_record_decode(r->body, r->body_len, &rec) <= 0)
        bench_die("%s of message %" PRIu64 ": no record in the answer", what, s->i);
    if ((uint64_t)rec.physical_offset != s->position)
        bench_die("%s of message %" PRIu64 ": got the one at %" PRId64, what, s->i,
            rec.physical_offset);
}

static int run_query(const char *broker, const char *sample_path, size_t requests)
{
    FILE *f = fopen(sample_path, "r");
    if (!f)
        bench_die("cannot read %s", sample_path);
    size_t n = 0, cap = 1024;
    sample *ss = proto_xmalloc(cap * sizeof *ss);
    sample s;
    while (fscanf(f, "%" SCNu64 " %u %" SCNu64 " %" SCNu64 " %" SCNd64, &s.i, &s.queue,
                  &s.offset, &s.position, &s.store_ms) == 5) {
        if (n == cap)
            ss = proto_xrealloc(ss, (cap *= 2) * sizeof *ss);
        ss[n++] = s;
    }
    fclose(f);
    if (n == 0)
        bench_die("%s holds no samples", sample_path);

    int fd = connect_to(broker);
    const char *kinds[] = {"view", "key", "uniq", "search"};
    lat l[4];
    uint64_t seed = 0x2545f4914f6cdd1du;
    for (int k = 0; k < 4; k++) {
        l[k].ns = proto_xmalloc(requests * sizeof(uint64_t));
        l[k].n = 0;
    }
    for (size_t r = 0; r < requests * 4; r++) {
        int k = (int)(r % 4);
        const sample *sm = &ss[rand_next(&seed) % n];
        proto_cmd *cmd;
        char key[48];
        if (k == 0) {
            cmd = proto_cmd_request(RC_VIEW_MESSAGE_BY_ID);
            proto_cmd_set_i64(cmd, "offset", (int64_t)sm->position);
        } else if (k == 3) {
            cmd = proto_cmd_request(RC_SEARCH_OFFSET_BY_TIMESTAMP);
            proto_cmd_set(cmd, "topic", TOPIC);
            proto_cmd_set_i64(cmd, "queueId", sm->queue);
            proto_cmd_set_i64(cmd, "timestamp", sm->store_ms);
        } else {
            cmd = proto_cmd_request(RC_QUERY_MESSAGE);
            if (k == 1)
                snprintf(key, sizeof key, "order-%012" PRIu64, sm->i);
            else
                unique_id(key, sm->i);
            proto_cmd_set(cmd, "topic", TOPIC);
            proto_cmd_set(cmd, "key", key);
            proto_cmd_set_i64(cmd, "maxNum", 32);
            proto_cmd_set_i64(cmd, "beginTimestamp", 0);
            proto_cmd_set_i64(cmd, "endTimestamp", INT64_MAX);
            if (k == 2)
                proto_cmd_set(cmd, "_UNIQUE_KEY_QUERY", "true");
        }
        uint8_t *frame;
        uint64_t t0 = bench_now_ns();
        proto_cmd *resp = call(fd, cmd, &frame);
        uint64_t dt = bench_now_ns() - t0;
        if (k == 3) {
            int64_t off;
            if (resp->code != RS_SUCCESS || proto_cmd_get_i64(resp, "offset", &off) != 0 ||
                off < 0 || (uint64_t)off > sm->offset)
                bench_die("search at %" PRId64 " for message %" PRIu64 " (offset %" PRIu64
                    ") answered code %d", sm->store_ms, sm->i, sm->offset, resp->code);
        } else {
            expect_record(resp, sm, kinds[k]);
        }
        proto_cmd_free(resp);
        free(frame);
        if (r >= 400) /* after a warm-up of 100 of each */
            l[k].ns[l[k].n++] = dt;
    }
    close(fd);
    printf("result mode=query samples=%zu requests=%zu", n, l[0].n);
    for (int k = 0; k < 4; k++) {
        qsort(l[k].ns, l[k].n, sizeof(uint64_t), cmp_u64);
        printf(" %s_p50_ms=%.3f %s_p99_ms=%.3f %s_max_ms=%.3f", kinds[k], pct_ms(&l[k], 50),
               kinds[k], pct_ms(&l[k], 99), kinds[k], pct_ms(&l[k], 100));
        free(l[k].ns);
    }
    printf("\n");
    free(ss);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: lsmq-query-bench load --path DIR [--count N] [--queues Q] [--body B]"
                    " [--sample FILE] [--samples K]\n"
                    "       lsmq-query-bench query --broker HOST:PORT --sample FILE"
                    " [--requests R]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    bench_init("lsmq-query-bench", 1);
    if (argc < 2)
        usage();
    const char *mode = argv[1], *path = NULL, *broker = NULL, *sample_path = "samples.txt";
    uint64_t count = 10000000, samples = 100000;
    uint32_t queues = 8, body = 1024;
    size_t requests = 5000;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--path") == 0)
            path = v;
        else if (strcmp(a, "--broker") == 0)
            broker = v;
        else if (strcmp(a, "--sample") == 0)
            sample_path = v;
        else if (strcmp(a, "--count") == 0)
            count = strtoull(v, NULL, 10);
        else if (strcmp(a, "--samples") == 0)
            samples = strtoull(v, NULL, 10);
        else if (strcmp(a, "--queues") == 0)
            queues = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--body") == 0)
            body = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--requests") == 0)
            requests = strtoull(v, NULL, 10);
        else
            usage();
    }
    if (strcmp(mode, "load") == 0 && path && count > 0 && queues > 0 && body > 0 && samples > 0)
        return run_load(path, count, queues, body, sample_path, samples);
    if (strcmp(mode, "query") == 0 && broker && requests > 0)
        return run_query(broker, sample_path, requests);
    usage();
}
