/*
 * mqdump: inspect a broker's store directory (storePathRootDir) without
 * the broker, or beside a running one.
 *
 *   mqdump topics STORE_DIR
 *   mqdump queues TOPIC STORE_DIR
 *   mqdump dump [filters] [--format jsonl|raw] STORE_DIR
 *   mqdump get ID STORE_DIR
 *   mqdump stats [--scan] STORE_DIR
 *   mqdump timers [--topic T] [--due-before TIME] STORE_DIR
 *
 * The store is opened read-only (engine_open_readonly, a RocksDB secondary
 * instance) and read through one view: nothing is ever written under
 * STORE_DIR and a running broker is not disturbed. Output is JSON Lines on
 * stdout; errors go to stderr. Exit status: 0 success, 1 when the store
 * cannot be read or `get` finds nothing, 2 for bad usage.
 *
 * This file holds main() and option parsing; see mqdump.h for the rest.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqdump.h"

volatile sig_atomic_t mqd_interrupted;

typedef struct mqd_command {
    const char *name;
    int takes_arg; /* a positional argument before STORE_DIR */
    int (*run)(const mqd_store *s, const mqd_opts *o);
} mqd_command;

static const mqd_command commands[] = {
    {"topics", 0, mqd_cmd_topics}, {"queues", 1, mqd_cmd_queues},
    {"dump", 0, mqd_cmd_dump},     {"get", 1, mqd_cmd_get},
    {"stats", 0, mqd_cmd_stats},   {"timers", 0, mqd_cmd_timers},
    {NULL, 0, NULL},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mqdump <command> [options] STORE_DIR\n"
            "\n"
            "STORE_DIR is the broker's storePathRootDir; it is opened read-only (as a RocksDB\n"
            "secondary), so mqdump works while the broker runs. Output is JSON Lines.\n"
            "\n"
            "commands:\n"
            "  topics                  every topic: name, id, queue counts, perm, message count\n"
            "  queues TOPIC            per queue: min/max offset, earliest/latest store time\n"
            "  dump [filters]          the messages, one JSON object per line\n"
            "  get ID                  one message by offset message id or unique key (UNIQ_KEY)\n"
            "  stats [--scan]          message counts, bytes, column family sizes\n"
            "                          (--scan: exact counts and bytes by reading every message)\n"
            "  timers [--topic T] [--due-before TIME]\n"
            "                          pending delayed messages in due order: due time, topic,\n"
            "                          queue, message id, keys, size\n"
            "\n"
            "dump filters (all must hold):\n"
            "  -t, --topic TOPIC       only this topic\n"
            "  -q, --queue ID          only this queue id\n"
            "      --from-offset N     queue offsets >= N\n"
            "      --to-offset N       queue offsets < N (exclusive, like a max offset)\n"
            "  -b, --begin TIME        store time >= TIME\n"
            "  -e, --end TIME          store time <= TIME\n"
            "      --tag TAG           TAGS is TAG; 'A || B' or repeating it: any of them\n"
            "  -k, --key KEY           one word of KEYS is KEY\n"
            "  -p, --prop NAME=VALUE   property NAME is VALUE; repeatable, all must match\n"
            "      --format jsonl|raw  jsonl (default), or raw: each body followed by a newline\n"
            "      --progress, --no-progress\n"
            "                          progress bar on stderr (default: when it is a terminal)\n"
            "TIME is milliseconds since the epoch or yyyy-MM-dd#HH:mm:ss:SSS in local time.\n"
            "\n"
            "Records that do not decode are reported on stderr and skipped.\n"
            "Exit status: 0 ok, 1 store unreadable or message not found, 2 bad usage.\n");
}

void mqd_errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mqdump: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("mqdump: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n\n", stderr);
    va_end(ap);
    usage(stderr);
    return MQD_USAGE;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!*s || *s == '-')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* --tag 'A || B': each alternative joins the list. */
static int add_tags(mqd_opts *o, char *expr)
{
    char *save = NULL;
    for (char *tok = strtok_r(expr, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
        while (*tok == ' ')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ')
            *--end = 0;
        if (!*tok)
            continue;
        if (o->ntags == MQD_MAX_TAGS)
            return -1;
        o->tags[o->ntags++] = tok;
    }
    return o->ntags ? 0 : -1;
}

enum {
    OPT_FROM = 1000, OPT_TO, OPT_TAG, OPT_FORMAT, OPT_PROGRESS, OPT_NO_PROGRESS, OPT_SCAN,
    OPT_DUE_BEFORE,
};

/* Parse argv into o. MQD_OK, or MQD_USAGE after saying why. */
static int parse_args(int argc, char **argv, mqd_opts *o, const mqd_command **cmd)
{
    static const struct option longs[] = {
        {"topic", required_argument, NULL, 't'},   {"queue", required_argument, NULL, 'q'},
        {"from-offset", required_argument, NULL, OPT_FROM},
        {"to-offset", required_argument, NULL, OPT_TO},
        {"begin", required_argument, NULL, 'b'},   {"end", required_argument, NULL, 'e'},
        {"tag", required_argument, NULL, OPT_TAG}, {"key", required_argument, NULL, 'k'},
        {"prop", required_argument, NULL, 'p'},    {"format", required_argument, NULL, OPT_FORMAT},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
        {"scan", no_argument, NULL, OPT_SCAN},     {"help", no_argument, NULL, 'h'},
        {"due-before", required_argument, NULL, OPT_DUE_BEFORE},
        {NULL, 0, NULL, 0},
    };
    int ch, filters = 0, timer_opts = 0;

    memset(o, 0, sizeof *o);
    o->progress = -1;
    if (argc < 2)
        return usage_error("no command given");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        exit(MQD_OK);
    }
    for (*cmd = commands; (*cmd)->name; (*cmd)++)
        if (strcmp((*cmd)->name, argv[1]) == 0)
            break;
    if (!(*cmd)->name)
        return usage_error("unknown command '%s'", argv[1]);
    o->command = argv[1];

    argc--;
    argv++;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":t:q:b:e:k:p:h", longs, NULL)) != -1) {
        uint64_t v;
        filters++;
        switch (ch) {
        case 't': o->topic = optarg; break;
        case 'q':
            if (parse_u64(optarg, &v) != 0 || v > UINT32_MAX)
                return usage_error("bad queue id '%s'", optarg);
            o->has_queue = 1;
            o->queue_id = (uint32_t)v;
            break;
        case OPT_FROM:
            if (parse_u64(optarg, &o->from_offset) != 0)
                return usage_error("bad offset '%s'", optarg);
            break;
        case OPT_TO:
            if (parse_u64(optarg, &o->to_offset) != 0)
                return usage_error("bad offset '%s'", optarg);
            o->has_to_offset = 1;
            break;
        case 'b':
            if (mqd_parse_time(optarg, &o->begin_ms) != 0)
                return usage_error("bad time '%s' (ms or yyyy-MM-dd#HH:mm:ss:SSS)", optarg);
            o->has_begin = 1;
            break;
        case 'e':
            if (mqd_parse_time(optarg, &o->end_ms) != 0)
                return usage_error("bad time '%s' (ms or yyyy-MM-dd#HH:mm:ss:SSS)", optarg);
            o->has_end = 1;
            break;
        case OPT_TAG:
            if (add_tags(o, optarg) != 0)
                return usage_error("bad or too many tags '%s'", optarg);
            break;
        case 'k':
            if (!*optarg)
                return usage_error("empty key");
            o->key = optarg;
            break;
        case 'p': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg)
                return usage_error("--prop wants NAME=VALUE, not '%s'", optarg);
            if (o->nprops == MQD_MAX_PROPS)
                return usage_error("at most %d --prop filters", MQD_MAX_PROPS);
            *eq = 0;
            o->prop_names[o->nprops] = optarg;
            o->prop_values[o->nprops++] = eq + 1;
            break;
        }
        case OPT_FORMAT:
            if (strcmp(optarg, "jsonl") == 0)
                o->format = MQD_FORMAT_JSONL;
            else if (strcmp(optarg, "raw") == 0)
                o->format = MQD_FORMAT_RAW;
            else
                return usage_error("unknown format '%s' (jsonl or raw)", optarg);
            break;
        case OPT_PROGRESS: o->progress = 1; filters--; break;
        case OPT_NO_PROGRESS: o->progress = 0; filters--; break;
        case OPT_DUE_BEFORE:
            if (strcmp(o->command, "timers") != 0)
                return usage_error("--due-before applies to timers only");
            if (mqd_parse_time(optarg, &o->due_before_ms) != 0)
                return usage_error("bad time '%s' (ms or yyyy-MM-dd#HH:mm:ss:SSS)", optarg);
            o->has_due_before = 1;
            filters--;
            break;
        case OPT_SCAN:
            if (strcmp(o->command, "stats") != 0)
                return usage_error("--scan applies to stats only");
            o->scan = 1;
            filters--;
            break;
        case 'h':
            usage(stdout);
            exit(MQD_OK);
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    /* timers takes --topic (and --due-before) and no other filter. */
    if (strcmp(o->command, "timers") == 0 && o->topic)
        timer_opts = 1;
    if (filters > timer_opts && strcmp(o->command, "dump") != 0)
        return usage_error("filters and --format apply to dump only (timers: --topic)");
    if (o->has_to_offset && o->to_offset < o->from_offset)
        return usage_error("--to-offset is below --from-offset");

    int want = (*cmd)->takes_arg ? 2 : 1;
    if (argc - optind != want)
        return usage_error("%s wants %s%s", o->command,
                           (*cmd)->takes_arg ? (strcmp(o->command, "get") == 0 ? "ID " : "TOPIC ")
                                             : "",
                           "STORE_DIR (the last argument)");
    if ((*cmd)->takes_arg)
        o->arg = argv[optind++];
    o->store_path = argv[optind];
    return MQD_OK;
}

const engine_topic_config *mqd_topic(const mqd_store *s, const char *name)
{
    for (size_t i = 0; i < s->ntopics; i++)
        if (strcmp(s->topics[i].name, name) == 0)
            return &s->topics[i];
    return NULL;
}

const engine_topic_config *mqd_topic_by_id(const mqd_store *s, uint32_t topic_id)
{
    for (size_t i = 0; i < s->ntopics; i++)
        if (s->topics[i].topic_id == topic_id)
            return &s->topics[i];
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    mqd_interrupted = 1;
}

int main(int argc, char **argv)
{
    mqd_opts o;
    const mqd_command *cmd = NULL;
    int rc = parse_args(argc, argv, &o, &cmd);
    if (rc != MQD_OK)
        return rc;

    /* Stop cleanly on a signal or a closed pipe, so the scratch directory goes. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    mqd_store store = {0};
    char err[512];
    if (engine_open_readonly(o.store_path, &store.e, err, sizeof err) != 0) {
        mqd_errorf("%s", err);
        return MQD_FAIL;
    }
    if (engine_view_open(store.e, &store.v) != 0 ||
        engine_view_topics(store.v, &store.topics, &store.ntopics) != 0) {
        mqd_errorf("%s: cannot read the store's topics", o.store_path);
        rc = MQD_FAIL;
    } else {
        rc = cmd->run(&store, &o);
    }
    /* A reader that went away (| head) is a normal end, not an error. */
    if (mqd_out_flush() != 0 && rc == MQD_OK && errno != EPIPE && !mqd_interrupted) {
        mqd_errorf("writing output: %s", strerror(errno));
        rc = MQD_FAIL;
    }
    engine_free(store.topics);
    engine_view_close(store.v);
    engine_close(store.e);
    if (mqd_interrupted && rc == MQD_OK)
        rc = MQD_FAIL;
    return rc;
}
