/*
 * lsmq-produce: send messages through liblsmq and print each result.
 *
 *   lsmq-produce -n HOST:PORT[;HOST:PORT] -t TOPIC [-g GROUP] [--tags T] [--keys K]
 *                [-c COUNT [-s SIZE]] [--async] [--timeout MS]
 *                [--delay LEVEL | --deliver-at TIME | --delay-ms MS]
 *
 * --delay sends the delay level (DELAY), --deliver-at an instant
 * (TIMER_DELIVER_MS): ms since the epoch or "yyyy-MM-dd#HH:mm:ss:SSS" local
 * time, as mqadmin takes times; --delay-ms a delay after the broker stores
 * the message (TIMER_DELAY_MS).
 *
 * With -c, sends COUNT generated bodies of SIZE bytes (default 128);
 * without it, one message per line of standard input. One line per result
 * on stdout:
 *   SEND_OK msgId=<id> offsetMsgId=<id> queue=<broker>:<queueId> offset=<n>
 * or "FAILED <error>" (on stdout, so results stay in order). Exits 0 when
 * every send succeeded, 1 otherwise, 2 on bad usage.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "lsmq.h"
#include "rocketmq_time.h"

typedef struct opts {
    const char *namesrv, *topic, *group, *tags, *keys;
    long count;
    size_t size;
    int async, delay, timeout_ms;
    int64_t deliver_ms, delay_ms;
} opts;

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t out_cv = PTHREAD_COND_INITIALIZER;
static long outstanding, failures;

static void usage(void)
{
    fprintf(stderr,
            "usage: lsmq-produce -n NAMESRV -t TOPIC [-g GROUP] [--tags TAGS] [--keys KEYS]\n"
            "                    [-c COUNT [-s SIZE]] [--async] [--timeout MS]\n"
            "                    [--delay LEVEL | --deliver-at TIME | --delay-ms MS]\n"
            "  --delay LEVEL     broker delay level (1..18 with the default messageDelayLevel)\n"
            "  --deliver-at TIME deliver at TIME: ms since the epoch or\n"
            "                    yyyy-MM-dd#HH:mm:ss:SSS (local time)\n"
            "  --delay-ms MS     deliver MS milliseconds after the broker stores it\n"
            "  without -c, each line of standard input is one message body\n");
}

static const char *status_name(int status)
{
    switch (status) {
    case LSMQ_SEND_OK: return "SEND_OK";
    case LSMQ_SEND_FLUSH_DISK_TIMEOUT: return "FLUSH_DISK_TIMEOUT";
    case LSMQ_SEND_FLUSH_SLAVE_TIMEOUT: return "FLUSH_SLAVE_TIMEOUT";
    case LSMQ_SEND_SLAVE_NOT_AVAILABLE: return "SLAVE_NOT_AVAILABLE";
    default: return "SEND_STATUS_UNKNOWN";
    }
}

/* Print one outcome of a send on p; the caller holds out_lock. */
static void report(lsmq_producer *p, int rc, const lsmq_send_result *res)
{
    if (rc == 0) {
        printf("%s msgId=%s offsetMsgId=%s queue=%s:%d offset=%lld\n", status_name(res->status),
               res->msg_id, res->offset_msg_id, res->broker_name, (int)res->queue_id,
               (long long)res->queue_offset);
    } else {
        char text[512];
        int code = lsmq_producer_last_error(p, text, sizeof text);

        if (code >= 0)
            printf("FAILED %s (broker code %d)\n", text, code);
        else
            printf("FAILED %s\n", text);
        failures++;
    }
    fflush(stdout);
}

static void async_cb(int rc, const lsmq_send_result *res, void *arg)
{
    pthread_mutex_lock(&out_lock);
    report(arg, rc, res);
    outstanding--;
    pthread_cond_signal(&out_cv);
    pthread_mutex_unlock(&out_lock);
}

static void send_one(lsmq_producer *p, const opts *o, const void *body, size_t len)
{
    lsmq_out_message m;
    lsmq_send_result res;
    int rc;

    memset(&m, 0, sizeof m);
    m.topic = o->topic;
    m.tags = o->tags;
    m.keys = o->keys;
    m.body = body;
    m.body_len = len;
    m.delay_level = o->delay;
    m.deliver_ms = o->deliver_ms;
    m.delay_ms = o->delay_ms;
    if (o->async) {
        pthread_mutex_lock(&out_lock);
        outstanding++;
        pthread_mutex_unlock(&out_lock);
        rc = lsmq_producer_send_async(p, &m, async_cb, p);
        if (rc != 0) {
            pthread_mutex_lock(&out_lock);
            report(p, rc, NULL);
            outstanding--;
            pthread_mutex_unlock(&out_lock);
        }
        return;
    }
    rc = lsmq_producer_send(p, &m, &res);
    pthread_mutex_lock(&out_lock);
    report(p, rc, &res);
    pthread_mutex_unlock(&out_lock);
}

/* A non-negative decimal number of ms: 0, or -1 when s is anything else. */
static int parse_ms(const char *s, int64_t *ms)
{
    char *end;
    long long v;

    if (*s < '0' || *s > '9')
        return -1;
    v = strtoll(s, &end, 10);
    if (*end != '\0' || v < 0)
        return -1;
    *ms = v;
    return 0;
}

/* --deliver-at: ms since the epoch, or RocketMQ's date text. */
static int parse_time(const char *s, int64_t *ms)
{
    if (parse_ms(s, ms) == 0 && *ms > 0)
        return 0;
    if (rocketmq_time_parse(s, ms) == 0 && *ms > 0)
        return 0;
    fprintf(stderr, "lsmq-produce: bad time '%s'\n", s);
    return -1;
}

static int parse_args(int argc, char **argv, opts *o)
{
    static const struct option longs[] = {
        {"namesrv", required_argument, NULL, 'n'}, {"topic", required_argument, NULL, 't'},
        {"group", required_argument, NULL, 'g'},   {"tags", required_argument, NULL, 'T'},
        {"keys", required_argument, NULL, 'K'},    {"count", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 's'},    {"async", no_argument, NULL, 'a'},
        {"delay", required_argument, NULL, 'd'},   {"timeout", required_argument, NULL, 'o'},
        {"deliver-at", required_argument, NULL, 'A'}, {"delay-ms", required_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    int ch;

    memset(o, 0, sizeof *o);
    o->group = "lsmq-produce";
    o->count = -1;
    o->size = 128;
    o->timeout_ms = 3000;
    while ((ch = getopt_long(argc, argv, "n:t:g:c:s:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'n': o->namesrv = optarg; break;
        case 't': o->topic = optarg; break;
        case 'g': o->group = optarg; break;
        case 'T': o->tags = optarg; break;
        case 'K': o->keys = optarg; break;
        case 'c': o->count = atol(optarg); break;
        case 's': o->size = (size_t)atol(optarg); break;
        case 'a': o->async = 1; break;
        case 'd': o->delay = atoi(optarg); break;
        case 'o': o->timeout_ms = atoi(optarg); break;
        case 'A':
            if (parse_time(optarg, &o->deliver_ms) != 0)
                return -1;
            break;
        case 'M':
            if (parse_ms(optarg, &o->delay_ms) != 0)
                return -1;
            break;
        default: return -1;
        }
    }
    if ((o->delay != 0) + (o->deliver_ms != 0) + (o->delay_ms != 0) > 1)
        return -1;
    if (!o->namesrv || !o->topic || optind != argc || (o->count >= 0 && o->size == 0))
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    lsmq_producer *p = NULL;
    opts o;
    int rc;

    if (parse_args(argc, argv, &o) != 0) {
        usage();
        return 2;
    }
    if ((rc = lsmq_producer_create(o.namesrv, o.group, &p)) != 0 ||
        (rc = lsmq_producer_set_send_timeout(p, o.timeout_ms)) != 0 ||
        (rc = lsmq_producer_start(p)) != 0) {
        char text[512];

        if (p)
            lsmq_producer_last_error(p, text, sizeof text);
        else
            snprintf(text, sizeof text, "%s", lsmq_strerror(rc));
        fprintf(stderr, "lsmq-produce: cannot start the producer: %s\n", text);
        lsmq_producer_destroy(p);
        return 2;
    }
    if (o.count >= 0) {
        char *body = proto_xmalloc(o.size);
        long i;

        for (i = 0; i < o.count; i++) {
            int n = snprintf(body, o.size, "message %ld ", i);

            /* The number first, then filler up to the size. */
            if ((size_t)n < o.size)
                memset(body + n, 'x', o.size - (size_t)n);
            send_one(p, &o, body, o.size);
        }
        free(body);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;

        while ((len = getline(&line, &cap, stdin)) >= 0) {
            if (len > 0 && line[len - 1] == '\n')
                line[--len] = '\0';
            if (len == 0)
                continue; /* an empty body cannot be sent */
            send_one(p, &o, line, (size_t)len);
        }
        free(line);
    }
    pthread_mutex_lock(&out_lock);
    while (outstanding > 0)
        pthread_cond_wait(&out_cv, &out_lock);
    pthread_mutex_unlock(&out_lock);
    lsmq_producer_destroy(p);
    return failures ? 1 : 0;
}
