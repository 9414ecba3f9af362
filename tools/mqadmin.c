/*
 * mqadmin: the lsmq admin command line, with RocketMQ's command names and
 * option letters, over liblsmq's admin API (client/lsmq_admin.h).
 *
 *   mqadmin                       list the commands
 *   mqadmin help [COMMAND]        the commands, or one command's options
 *   mqadmin COMMAND [options] [-n NAMESRV] [--json]
 *
 * Output resembles the Java tool's tables; --json (not in upstream) prints
 * one line of JSON instead, for scripts. -n defaults to $NAMESRV_ADDR, else
 * 127.0.0.1:9876. Exit status: 0 success, 1 when a server refused a
 * request (its response code and remark go to stderr) or could not be
 * reached, 2 for bad options.
 *
 * This file holds main(), option parsing, help and the helpers the command
 * families share; the commands live in mqadmin_topic.c, mqadmin_cluster.c,
 * mqadmin_consumer.c, mqadmin_message.c, mqadmin_print.c and
 * mqadmin_offset.c.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "mqadmin.h"
#include "rocketmq_time.h"
#include "clock.h"

#define DEFAULT_NAMESRV "127.0.0.1:9876"
#define DEFAULT_TIMEOUT_MS 5000
#define HELP_WIDTH 110
#define OPT_JSON 1000 /* getopt_long value of --json (not a letter) */

static const mqa_command *const families[] = {
    mqa_topic_commands,
    mqa_cluster_commands,
    mqa_consumer_commands,
    mqa_message_commands,
    mqa_print_commands,
    mqa_offset_commands,
    mqa_ha_commands,
    mqa_controller_commands,
    mqa_epoch_commands,
};

/* Options every command takes, as upstream's ServerUtil adds them. */
static const mqa_opt common_opts[] = {
    {'h', "help", 0, MQA_OPTIONAL, "Print help"},
    {'n', "namesrvAddr", 1, MQA_OPTIONAL,
     "Name server address list, eg: '192.168.0.1:9876;192.168.0.2:9876'"},
    {0, NULL, 0, 0, NULL},
};

/* The command being run, for usage lines in error messages. */
static const mqa_command *current;

static const mqa_command *find_command(const char *name)
{
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const mqa_command *c = families[f]; c->name; c++)
            if (strcmp(c->name, name) == 0)
                return c;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Help                                                                */
/* ------------------------------------------------------------------ */

static void print_commands(FILE *out)
{
    fprintf(out, "usage: mqadmin <command> [<args>]\n\n");
    fprintf(out, "The most commonly used mqadmin commands are:\n");
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const mqa_command *c = families[f]; c->name; c++)
            fprintf(out, "   %-35s %s\n", c->name, c->desc);
    fprintf(out, "\nSee 'mqadmin help <command>' for more information on a specific command.\n");
}

static int cmp_opt(const void *a, const void *b)
{
    const mqa_opt *x = *(const mqa_opt *const *)a, *y = *(const mqa_opt *const *)b;
    int c = tolower((unsigned char)x->letter) - tolower((unsigned char)y->letter);

    return c ? c : x->letter - y->letter;
}

/*
 * Options upstream writes short with more than one letter ("-bn"): the
 * letter only keys the value; usage and help show the word, and the word
 * on the command line is read as the long option.
 */
static const struct {
    const char *cmd;
    char letter;
    const char *word;
} upstream_words[] = {
    {"electMaster", 'N', "bn"},
};

static const char *word_of(const char *cmd, const mqa_opt *o)
{
    for (size_t i = 0; i < sizeof upstream_words / sizeof upstream_words[0]; i++)
        if (strcmp(upstream_words[i].cmd, cmd) == 0 && upstream_words[i].letter == o->letter)
            return upstream_words[i].word;
    return NULL;
}

/* How an option is written short: "-b", or upstream's word ("-bn"), into buf. */
static const char *short_form(const char *cmd, const mqa_opt *o, char *buf, size_t cap)
{
    const char *w = word_of(cmd, o);
    if (w)
        snprintf(buf, cap, "-%s", w);
    else
        snprintf(buf, cap, "-%c", o->letter);
    return buf;
}

/* The command's options and the common ones, sorted as commons-cli does. */
static size_t sorted_opts(const mqa_command *cmd, const mqa_opt **out, size_t cap)
{
    size_t n = 0;

    for (const mqa_opt *o = cmd->opts; o->letter && n < cap; o++)
        out[n++] = o;
    for (const mqa_opt *o = common_opts; o->letter && n < cap; o++)
        out[n++] = o;
    qsort(out, n, sizeof *out, cmp_opt);
    return n;
}

/* Append one usage token, wrapping at HELP_WIDTH under the first token. */
static void usage_token(FILE *out, const char *tok, size_t indent, size_t *col)
{
    size_t len = strlen(tok);

    if (*col + 1 + len > HELP_WIDTH && *col > indent) {
        fprintf(out, "\n%*s", (int)indent, "");
        *col = indent;
    } else {
        fputc(' ', out);
        (*col)++;
    }
    fputs(tok, out);
    *col += len;
}

static void print_usage_line(FILE *out, const mqa_command *cmd)
{
    const mqa_opt *opts[64];
    size_t n = sorted_opts(cmd, opts, 64), col;
    int group_done = 0;
    char tok[256];

    col = (size_t)fprintf(out, "usage: mqadmin %s", cmd->name);
    size_t indent = col + 1;
    for (size_t i = 0; i < n; i++) {
        const mqa_opt *o = opts[i];
        if (o->need == MQA_ONE_OF) {
            if (group_done++)
                continue;
            /* The exclusive group as commons-cli writes it: "-b <arg> | -c <arg>". */
            size_t len = 0;
            tok[0] = '\0';
            for (size_t j = 0; j < n; j++) {
                if (opts[j]->need != MQA_ONE_OF)
                    continue;
                char s[16];
                len += (size_t)snprintf(tok + len, sizeof tok - len, "%s%s%s", len ? " | " : "",
                                        short_form(cmd->name, opts[j], s, sizeof s),
                                        opts[j]->has_arg ? " <arg>" : "");
                if (len >= sizeof tok)
                    break;
            }
        } else {
            char s[16];
            snprintf(tok, sizeof tok, "%s%s%s%s", o->need == MQA_REQUIRED ? "" : "[",
                     short_form(cmd->name, o, s, sizeof s), o->has_arg ? " <arg>" : "",
                     o->need == MQA_REQUIRED ? "" : "]");
        }
        usage_token(out, tok, indent, &col);
    }
    usage_token(out, "[--json]", indent, &col);
    fputc('\n', out);
}

static void print_command_help(FILE *out, const mqa_command *cmd)
{
    const mqa_opt *opts[64];
    size_t n = sorted_opts(cmd, opts, 64), width = strlen("    --json");
    char head[128];

    print_usage_line(out, cmd);
    fprintf(out, "%s\n", cmd->desc);
    char s[16];
    for (size_t i = 0; i < n; i++) {
        size_t len = (size_t)snprintf(head, sizeof head, " %s,--%s%s",
                                      short_form(cmd->name, opts[i], s, sizeof s), opts[i]->long_name,
                                      opts[i]->has_arg ? " <arg>" : "");
        if (len > width)
            width = len;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(head, sizeof head, " %s,--%s%s", short_form(cmd->name, opts[i], s, sizeof s),
                 opts[i]->long_name, opts[i]->has_arg ? " <arg>" : "");
        fprintf(out, "%-*s   %s\n", (int)width, head, opts[i]->desc);
    }
    fprintf(out, "%-*s   %s\n", (int)width, "    --json",
            "Print machine-readable JSON instead of the table");
    const char *sep = "Exactly one of ";
    for (size_t i = 0; i < n; i++)
        if (opts[i]->need == MQA_ONE_OF) {
            fprintf(out, "%s%s", sep, short_form(cmd->name, opts[i], s, sizeof s));
            sep = ", ";
        }
    if (*sep == ',')
        fprintf(out, " is required.\n");
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

int mqa_usage_error(const mqa_ctx *ctx, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "mqadmin %s: ", ctx->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (current)
        print_usage_line(stderr, current);
    fprintf(stderr, "See 'mqadmin help %s'.\n", ctx->cmd);
    return MQA_USAGE;
}

int mqa_fail(const mqa_ctx *ctx)
{
    char text[512];

    lsmq_admin_last_error(ctx->admin, text, sizeof text);
    fprintf(stderr, "mqadmin %s: %s\n", ctx->cmd, text);
    return MQA_FAIL;
}

int mqa_failf(const mqa_ctx *ctx, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "mqadmin %s: ", ctx->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return MQA_FAIL;
}

void mqa_warn(const mqa_ctx *ctx)
{
    char text[512];

    lsmq_admin_last_error(ctx->admin, text, sizeof text);
    fprintf(stderr, "mqadmin %s: warning: %s\n", ctx->cmd, text);
}

/* ------------------------------------------------------------------ */
/* Option values                                                       */
/* ------------------------------------------------------------------ */

const char *mqa_arg(const mqa_ctx *ctx, char letter)
{
    return ctx->val[(unsigned char)letter & 127];
}

int mqa_arg_int(const mqa_ctx *ctx, char letter, int dflt, int *out)
{
    const char *v = mqa_arg(ctx, letter);
    char *end;

    *out = dflt;
    if (!v)
        return 0;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < -2147483647L - 1 || n > 2147483647L)
        return mqa_usage_error(ctx, "option -%c wants an integer, not '%s'", letter, v);
    *out = (int)n;
    return 0;
}

int mqa_arg_bool(const mqa_ctx *ctx, char letter, int dflt, int *out)
{
    const char *v = mqa_arg(ctx, letter);

    *out = dflt;
    if (!v)
        return 0;
    if (strcasecmp(v, "true") == 0)
        *out = 1;
    else if (strcasecmp(v, "false") == 0)
        *out = 0;
    else
        return mqa_usage_error(ctx, "option -%c wants true or false, not '%s'", letter, v);
    return 0;
}

int mqa_arg_i64(const mqa_ctx *ctx, char letter, int64_t dflt, int64_t *out)
{
    const char *v = mqa_arg(ctx, letter);
    char *end;

    *out = dflt;
    if (!v)
        return 0;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno == ERANGE)
        return mqa_usage_error(ctx, "option -%c wants an integer, not '%s'", letter, v);
    *out = n;
    return 0;
}

int mqa_arg_time(const mqa_ctx *ctx, char letter, int allow_now, int64_t dflt, int64_t *out)
{
    const char *v = mqa_arg(ctx, letter);
    char *end;

    *out = dflt;
    if (!v)
        return 0;
    if (allow_now && strcmp(v, "now") == 0) {
        *out = proto_wall_ms();
        return 0;
    }
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*v && !*end && errno != ERANGE) {
        *out = n;
        return 0;
    }
    if (rocketmq_time_parse(v, out) == 0)
        return 0;
    return mqa_usage_error(ctx, "option -%c wants a time: %smilliseconds since the epoch or "
                                "yyyy-MM-dd#HH:mm:ss:SSS, not '%s'",
                           letter, allow_now ? "now, " : "", v);
}

/* Trim surrounding blanks in place (argv strings are writable), as upstream's trim(). */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static const mqa_opt *opt_of(const mqa_command *cmd, int letter)
{
    for (const mqa_opt *o = cmd->opts; o->letter; o++)
        if (o->letter == letter)
            return o;
    for (const mqa_opt *o = common_opts; o->letter; o++)
        if (o->letter == letter)
            return o;
    return NULL;
}

/* Required options and the exclusive group. */
static int check_required(mqa_ctx *ctx, const mqa_command *cmd)
{
    char group[64] = "";
    size_t glen = 0;
    int given = 0, members = 0;

    for (const mqa_opt *o = cmd->opts; o->letter; o++) {
        if (o->need == MQA_REQUIRED && !mqa_arg(ctx, o->letter))
            return mqa_usage_error(ctx, "missing required option -%c (--%s)", o->letter,
                                   o->long_name);
        if (o->need == MQA_ONE_OF) {
            members++;
            given += mqa_arg(ctx, o->letter) != NULL;
            glen += (size_t)snprintf(group + glen, sizeof group - glen, "%s-%c",
                                     glen ? ", " : "", o->letter);
            if (glen >= sizeof group)
                glen = sizeof group - 1;
        }
    }
    if (members && given == 0)
        return mqa_usage_error(ctx, "missing required option: one of %s", group);
    if (given > 1)
        return mqa_usage_error(ctx, "options %s are exclusive: give only one", group);
    return 0;
}

/* Parse argv (after the command name) into ctx. 0, or an exit status. */
static int parse_options(mqa_ctx *ctx, const mqa_command *cmd, int argc, char **argv, int *help)
{
    struct option longs[64];
    char shorts[160] = ":";
    size_t nl = 0, ns = 1;
    int ch;

    for (int pass = 0; pass < 2; pass++)
        for (const mqa_opt *o = pass ? common_opts : cmd->opts; o->letter && nl < 62; o++) {
            longs[nl++] = (struct option){o->long_name, o->has_arg ? required_argument
                                                                    : no_argument,
                                          NULL, o->letter};
            shorts[ns++] = o->letter;
            if (o->has_arg)
                shorts[ns++] = ':';
        }
    shorts[ns] = '\0';
    longs[nl++] = (struct option){"json", no_argument, NULL, OPT_JSON};
    longs[nl] = (struct option){NULL, 0, NULL, 0};

    /* Upstream's word forms ("-bn") become the long option before getopt sees them. */
    char long_arg[64][72];
    size_t n_long = 0;
    for (int i = 1; i < argc && n_long < 64; i++)
        for (const mqa_opt *o = cmd->opts; o->letter; o++)
            if (word_of(cmd->name, o) && argv[i][0] == '-' &&
                strcmp(argv[i] + 1, word_of(cmd->name, o)) == 0) {
                snprintf(long_arg[n_long], sizeof long_arg[n_long], "--%s", o->long_name);
                argv[i] = long_arg[n_long++];
                break;
            }

    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
        if (ch == OPT_JSON) {
            ctx->json = 1;
        } else if (ch == '?') {
            if (optopt)
                return mqa_usage_error(ctx, "unknown option -%c", optopt);
            return mqa_usage_error(ctx, "unknown option %s", argv[optind - 1]);
        } else if (ch == ':') {
            const mqa_opt *o = opt_of(cmd, optopt);
            return mqa_usage_error(ctx, "option -%c (--%s) needs a value", optopt,
                                   o ? o->long_name : "?");
        } else if (ch == 'h') {
            *help = 1;
        } else {
            ctx->val[ch & 127] = optarg ? trim(optarg) : "";
        }
    }
    if (optind < argc)
        return mqa_usage_error(ctx, "unexpected argument '%s'", argv[optind]);
    if (*help)
        return 0;
    if (mqa_arg(ctx, 'n'))
        ctx->namesrv = mqa_arg(ctx, 'n');
    if (!ctx->namesrv || !*ctx->namesrv)
        return mqa_usage_error(ctx, "empty name server address");
    return check_required(ctx, cmd);
}

/* ------------------------------------------------------------------ */
/* Output helpers                                                      */
/* ------------------------------------------------------------------ */

void mqa_print_json(json_t *v)
{
    char *text =
        json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));

    if (text) {
        fputs(text, stdout);
        fputc('\n', stdout);
        free(text);
    }
    json_decref(v);
}

json_t *mqa_json_str(const char *s)
{
    json_t *v = json_string(s ? s : "");

    return v ? v : json_string("");
}

json_t *mqa_json_strings(char *const *v, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, mqa_json_str(v[i]));
    return a;
}

/*
 * MQVersion.Version ordinals: 16 pre-releases of 3.0.0, then for every
 * version from 3.0.1 on a _SNAPSHOT ordinal followed by the release one.
 * The versions run 3.0.1-3.0.15, 3.1.0-3.2.9, 3.3.1-3.9.9 (patch 1-9),
 * 4.0.0-5.9.9; later ordinals print as the last one, as Java does.
 */
const char *mqa_version_desc(int ordinal, char *buf, size_t cap)
{
    static const char *const early[16] = {
        "V3_0_0_SNAPSHOT", "V3_0_0_ALPHA1", "V3_0_0_BETA1", "V3_0_0_BETA2",
        "V3_0_0_BETA3", "V3_0_0_BETA4", "V3_0_0_BETA5", "V3_0_0_BETA6_SNAPSHOT",
        "V3_0_0_BETA6", "V3_0_0_BETA7_SNAPSHOT", "V3_0_0_BETA7", "V3_0_0_BETA8_SNAPSHOT",
        "V3_0_0_BETA8", "V3_0_0_BETA9_SNAPSHOT", "V3_0_0_BETA9", "V3_0_0_FINAL",
    };
    int major, minor, patch;

    if (ordinal < 0) {
        snprintf(buf, cap, "%d", ordinal);
        return buf;
    }
    if (ordinal < 16) {
        snprintf(buf, cap, "%s", early[ordinal]);
        return buf;
    }
    if (ordinal > 611)
        ordinal = 611;
    int k = (ordinal - 16) / 2, snapshot = (ordinal - 16) % 2 == 0;
    if (k < 15) {
        major = 3, minor = 0, patch = k + 1;
    } else if (k < 35) {
        major = 3, minor = 1 + (k - 15) / 10, patch = (k - 15) % 10;
    } else if (k < 98) {
        major = 3, minor = 3 + (k - 35) / 9, patch = 1 + (k - 35) % 9;
    } else {
        major = 4 + (k - 98) / 100, minor = (k - 98) / 10 % 10, patch = (k - 98) % 10;
    }
    snprintf(buf, cap, "V%d_%d_%d%s", major, minor, patch, snapshot ? "_SNAPSHOT" : "");
    return buf;
}

const char *mqa_time(int64_t ms, int with_ms, char *buf, size_t cap)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    size_t n;

    localtime_r(&secs, &tm);
    n = strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
    if (with_ms && n < cap)
        snprintf(buf + n, cap - n, ",%03d", (int)(ms % 1000));
    return buf;
}

const char *mqa_double(double v, char *buf, size_t cap)
{
    if (isfinite(v) && fabs(v) < 1e15 && v == (double)(long long)v) {
        snprintf(buf, cap, "%.1f", v);
        return buf;
    }
    snprintf(buf, cap, "%.15g", v);
    return buf;
}

const char *mqa_retry_topic(const char *group, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s", MQA_RETRY_PREFIX, group);
    return buf;
}

/* ------------------------------------------------------------------ */
/* Look-ups the commands share                                         */
/* ------------------------------------------------------------------ */

int mqa_repeat(mqa_ctx *ctx, int (*once)(mqa_ctx *ctx))
{
    int interval = 0, rc;

    if ((rc = mqa_arg_int(ctx, 'i', 0, &interval)) != 0)
        return rc;
    if (mqa_arg(ctx, 'i') && interval <= 0)
        return mqa_usage_error(ctx, "the interval (-i) must be a positive number of seconds");
    for (;;) {
        if ((rc = once(ctx)) != MQA_OK || interval <= 0)
            return rc;
        fflush(stdout);
        sleep((unsigned)interval);
    }
}

int mqa_cluster_masters(const mqa_ctx *ctx, const char *cluster, lsmq_admin_cluster_info **ci,
                        const char ***addrs, size_t *n)
{
    *ci = NULL;
    *addrs = NULL;
    *n = 0;
    if (lsmq_admin_get_cluster_info(ctx->admin, ctx->namesrv, ctx->timeout_ms, ci) != 0)
        return mqa_fail(ctx);
    if (lsmq_admin_cluster_masters(*ci, cluster, addrs, n) != 0) {
        lsmq_admin_cluster_info_free(*ci);
        *ci = NULL;
        return mqa_failf(ctx,
                         "cluster %s not found: make sure the specified clusterName exists "
                         "or the name server connected to is correct",
                         cluster);
    }
    return MQA_OK;
}

int mqa_route_masters(const mqa_ctx *ctx, const char *topic, lsmq_admin_route **route,
                      const char ***addrs, size_t *n)
{
    *addrs = NULL;
    *n = 0;
    if (lsmq_admin_get_route(ctx->admin, ctx->namesrv, topic, ctx->timeout_ms, route) != 0)
        return mqa_fail(ctx);
    *addrs = proto_xcalloc((*route)->n_brokers + 1, sizeof **addrs);
    for (size_t i = 0; i < (*route)->n_brokers; i++) {
        const char *m = lsmq_admin_broker_master(&(*route)->brokers[i]);
        if (m)
            (*addrs)[(*n)++] = m;
    }
    return MQA_OK;
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    mqa_ctx ctx;
    int help = 0, rc;

    if (argc < 2 || (strcmp(argv[1], "help") == 0 && argc == 2)) {
        print_commands(stdout);
        return MQA_OK;
    }
    if (strcmp(argv[1], "help") == 0) {
        const mqa_command *cmd = find_command(argv[2]);
        if (argc > 3) {
            fprintf(stderr, "usage: mqadmin help [<command>]\n");
            return MQA_USAGE;
        }
        if (!cmd) {
            fprintf(stderr, "mqadmin: the command %s does not exist.\n", argv[2]);
            print_commands(stderr);
            return MQA_USAGE;
        }
        print_command_help(stdout, cmd);
        return MQA_OK;
    }
    current = find_command(argv[1]);
    if (!current) {
        fprintf(stderr, "mqadmin: the command %s does not exist.\n", argv[1]);
        print_commands(stderr);
        return MQA_USAGE;
    }
    memset(&ctx, 0, sizeof ctx);
    ctx.cmd = current->name;
    ctx.timeout_ms = DEFAULT_TIMEOUT_MS;
    ctx.namesrv = getenv("NAMESRV_ADDR");
    if (!ctx.namesrv || !*ctx.namesrv)
        ctx.namesrv = DEFAULT_NAMESRV;
    if ((rc = parse_options(&ctx, current, argc - 1, argv + 1, &help)) != 0)
        return rc;
    if (help) {
        print_command_help(stdout, current);
        return MQA_OK;
    }
    if (lsmq_admin_create(&ctx.admin) != 0)
        return MQA_FAIL;
    rc = current->run(&ctx);
    lsmq_admin_destroy(ctx.admin);
    if (fflush(stdout) != 0 && rc == MQA_OK)
        rc = MQA_FAIL;
    return rc;
}
