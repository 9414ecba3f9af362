/*
 * lsmq-consume: a push consumer that prints the messages it receives.
 *
 *   lsmq-consume -n HOST:PORT[;HOST:PORT] -t TOPIC -g GROUP [--tags 'A || B']
 *                [--from first|last] [--count N] [--timeout S] [--broadcast]
 *                [--body-only]
 *
 * One line per message on stdout, fields separated by tabs:
 *   <topic> <broker>:<queueId> <queueOffset> <msgId> <tags> <keys> <reconsumeTimes> <body>
 * ("-" for absent tags or keys; tabs, newlines and backslashes in the body
 * escaped as \t \n \\). --body-only prints the raw body alone.
 *
 * Stops after N messages (--count), after S seconds (--timeout), or on
 * SIGINT/SIGTERM, then commits its offsets. Messages already handed to the
 * listener when it stops are still printed, so a few more than N can
 * appear: none is consumed without being printed. Exits 0, or 1 when
 * --count was given and not reached, 2 on bad usage or start failure.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "lsmq.h"

typedef struct opts {
    const char *namesrv, *topic, *group, *tags;
    int from_first, broadcast, body_only;
    long count;
    int timeout_s;
} opts;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long received;
static volatile sig_atomic_t signalled;

static void usage(void)
{
    fprintf(stderr,
            "usage: lsmq-consume -n NAMESRV -t TOPIC -g GROUP [--tags EXPR]\n"
            "                    [--from first|last] [--count N] [--timeout S]\n"
            "                    [--broadcast] [--body-only]\n");
}

static void on_signal(int sig)
{
    signalled = 1;
}

static void put_escaped(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char ch = p[i];

        if (ch == '\n')
            fputs("\\n", stdout);
        else if (ch == '\t')
            fputs("\\t", stdout);
        else if (ch == '\\')
            fputs("\\\\", stdout);
        else
            putchar(ch);
    }
}

static int listener(const lsmq_message *m, void *arg)
{
    const opts *o = arg;
    size_t len;
    const char *body = lsmq_message_body(m, &len);

    pthread_mutex_lock(&lock);
    if (o->body_only) {
        fwrite(body, 1, len, stdout);
        putchar('\n');
    } else {
        printf("%s\t%s:%d\t%lld\t%s\t%s\t%s\t%d\t", lsmq_message_topic(m),
               lsmq_message_broker_name(m), (int)lsmq_message_queue_id(m),
               (long long)lsmq_message_queue_offset(m), lsmq_message_id(m),
               lsmq_message_tags(m) ? lsmq_message_tags(m) : "-",
               lsmq_message_keys(m) ? lsmq_message_keys(m) : "-",
               (int)lsmq_message_reconsume_times(m));
        put_escaped(body, len);
        putchar('\n');
    }
    fflush(stdout);
    received++;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&lock);
    return LSMQ_CONSUME_SUCCESS;
}

static int parse_args(int argc, char **argv, opts *o)
{
    static const struct option longs[] = {
        {"namesrv", required_argument, NULL, 'n'}, {"topic", required_argument, NULL, 't'},
        {"group", required_argument, NULL, 'g'},   {"tags", required_argument, NULL, 'T'},
        {"from", required_argument, NULL, 'f'},    {"count", required_argument, NULL, 'c'},
        {"timeout", required_argument, NULL, 'o'}, {"broadcast", no_argument, NULL, 'b'},
        {"body-only", no_argument, NULL, 'B'},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    memset(o, 0, sizeof *o);
    o->tags = "*";
    o->count = -1;
    while ((ch = getopt_long(argc, argv, "n:t:g:c:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'n': o->namesrv = optarg; break;
        case 't': o->topic = optarg; break;
        case 'g': o->group = optarg; break;
        case 'T': o->tags = optarg; break;
        case 'f':
            if (strcmp(optarg, "first") == 0)
                o->from_first = 1;
            else if (strcmp(optarg, "last") != 0)
                return -1;
            break;
        case 'c': o->count = atol(optarg); break;
        case 'o': o->timeout_s = atoi(optarg); break;
        case 'b': o->broadcast = 1; break;
        case 'B': o->body_only = 1; break;
        default: return -1;
        }
    }
    if (!o->namesrv || !o->topic || !o->group || optind != argc)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    lsmq_push_consumer *c = NULL;
    struct sigaction sa;
    opts o;
    int rc, done;

    if (parse_args(argc, argv, &o) != 0) {
        usage();
        return 2;
    }
    if ((rc = lsmq_push_consumer_create(o.namesrv, o.group, &c)) != 0 ||
        (rc = lsmq_push_consumer_subscribe(c, o.topic, o.tags)) != 0 ||
        (rc = lsmq_push_consumer_set_consume_from(c, o.from_first ? LSMQ_FROM_FIRST
                                                                  : LSMQ_FROM_LAST)) != 0 ||
        (rc = lsmq_push_consumer_set_model(c, o.broadcast ? LSMQ_BROADCASTING
                                                          : LSMQ_CLUSTERING)) != 0 ||
        (rc = lsmq_push_consumer_set_threads(c, 1)) != 0 ||
        (rc = lsmq_push_consumer_set_listener(c, listener, &o)) != 0 ||
        (rc = lsmq_push_consumer_start(c)) != 0) {
        char text[512];

        if (c)
            lsmq_push_consumer_last_error(c, text, sizeof text);
        else
            snprintf(text, sizeof text, "%s", lsmq_strerror(rc));
        fprintf(stderr, "lsmq-consume: cannot start the consumer: %s\n", text);
        lsmq_push_consumer_destroy(c);
        return 2;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int64_t end_ms = proto_wall_ms() + (int64_t)o.timeout_s * 1000;
    pthread_mutex_lock(&lock);
    for (;;) {
        if (signalled || (o.count >= 0 && received >= o.count))
            break;
        /* Wake at least every 200 ms to notice signals. */
        int64_t wait_ms = 200;
        if (o.timeout_s > 0 && end_ms - proto_wall_ms() < wait_ms)
            wait_ms = end_ms - proto_wall_ms();
        struct timespec tick = proto_deadline_after(CLOCK_REALTIME, wait_ms > 0 ? wait_ms : 0);
        if (pthread_cond_timedwait(&cv, &lock, &tick) == ETIMEDOUT && o.timeout_s > 0 &&
            proto_wall_ms() >= end_ms)
            break;
    }
    done = o.count < 0 || received >= o.count;
    pthread_mutex_unlock(&lock);
    lsmq_push_consumer_destroy(c);
    return done ? 0 : 1;
}
