/*
 * Broker configuration with RocketMQ's broker.conf key names, from a file
 * (-c), the name server list (-n) and --key=value on the command line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "config_file.h"

void broker_config_init(broker_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->broker_cluster_name, sizeof c->broker_cluster_name, "DefaultCluster");
    snprintf(c->broker_name, sizeof c->broker_name, "broker-a");
    snprintf(c->broker_ip1, sizeof c->broker_ip1, "127.0.0.1");
    c->listen_port = 10911;
    const char *home = getenv("HOME");
    snprintf(c->store_path_root_dir, sizeof c->store_path_root_dir, "%s/store",
             home && *home ? home : ".");
    c->flush_interval_commit_log = 500;
    c->auto_create_topic_enable = true;
    c->auto_create_subscription_group = true;
    c->message_index_enable = true;
    c->default_topic_queue_nums = 8;
    c->file_reserved_time = 72;
    c->disk_max_used_space_ratio = 75;
    c->max_message_size = 4u << 20;
    c->broker_permission = 6;
    c->register_interval_ms = 30000;
    c->channel_expired_timeout_ms = 120000;
    c->long_polling_enable = true;
    c->short_polling_time_ms = 1000;
    c->block_cache_bytes = 256u << 20;
    c->embedded_namesrv_port = 9876;
    c->writer_queue_max = 65536;
    c->kept_requests_max = 65536;
}

static void say(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (!errbuf || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

static int parse_u64(const char *v, uint64_t max, uint64_t *out)
{
    if (!*v || !isdigit((unsigned char)*v))
        return LSMQ_EINVAL;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || x > max)
        return LSMQ_EINVAL;
    *out = x;
    return 0;
}

static int parse_bool(const char *v, bool *out)
{
    if (strcasecmp(v, "true") == 0)
        *out = true;
    else if (strcasecmp(v, "false") == 0)
        *out = false;
    else
        return LSMQ_EINVAL;
    return 0;
}

static int set_string(char *dst, size_t cap, const char *v)
{
    if (strlen(v) >= cap)
        return LSMQ_ETOOBIG;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

typedef enum { K_STR, K_U32, K_I32, K_I64, K_U64, K_BOOL, K_FLUSH } kind;

typedef struct key_def {
    const char *name;
    kind k;
    size_t off;
    size_t size;   /* strings */
    uint64_t max;  /* numbers */
} key_def;

#define STR(n, f) {n, K_STR, offsetof(broker_config, f), sizeof(((broker_config *)0)->f), 0}
#define U32(n, f, m) {n, K_U32, offsetof(broker_config, f), 0, m}
#define I32(n, f, m) {n, K_I32, offsetof(broker_config, f), 0, m}
#define I64(n, f, m) {n, K_I64, offsetof(broker_config, f), 0, m}
#define U64(n, f, m) {n, K_U64, offsetof(broker_config, f), 0, m}
#define BOOL(n, f) {n, K_BOOL, offsetof(broker_config, f), 0, 0}

static const key_def keys[] = {
    STR("brokerClusterName", broker_cluster_name),
    STR("brokerName", broker_name),
    I64("brokerId", broker_id, 1u << 20),
    STR("namesrvAddr", namesrv_addr),
    STR("brokerIP1", broker_ip1),
    I32("listenPort", listen_port, 65535),
    STR("storePathRootDir", store_path_root_dir),
    {"flushDiskType", K_FLUSH, offsetof(broker_config, flush_disk_type_sync), 0, 0},
    U32("flushIntervalCommitLog", flush_interval_commit_log, 3600000),
    BOOL("autoCreateTopicEnable", auto_create_topic_enable),
    BOOL("autoCreateSubscriptionGroup", auto_create_subscription_group),
    BOOL("messageIndexEnable", message_index_enable),
    U32("defaultTopicQueueNums", default_topic_queue_nums, 1024),
    U32("fileReservedTime", file_reserved_time, 24 * 365 * 10),
    U32("diskMaxUsedSpaceRatio", disk_max_used_space_ratio, 100),
    U32("maxMessageSize", max_message_size, 64u << 20),
    U32("brokerPermission", broker_permission, 7),
    U32("registerNameServerPeriod", register_interval_ms, 3600000),
    U32("channelExpiredTimeout", channel_expired_timeout_ms, 3600000),
    BOOL("longPollingEnable", long_polling_enable),
    U32("shortPollingTimeMills", short_polling_time_ms, 3600000),
    U64("rocksdbBlockCacheSize", block_cache_bytes, UINT64_MAX),
    BOOL("embeddedNamesrv", embedded_namesrv),
    I32("embeddedNamesrvPort", embedded_namesrv_port, 65535),
    U32("writerQueueMax", writer_queue_max, 1u << 24),
    U32("keptRequestsMax", kept_requests_max, 1u << 24),
};

int broker_config_set(broker_config *c, const char *key, const char *value, char *errbuf,
                      size_t errlen)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const key_def *d = &keys[i];
        if (strcmp(d->name, key) != 0)
            continue;
        char *field = (char *)c + d->off;
        uint64_t u = 0;
        int rc = 0;
        switch (d->k) {
        case K_STR: rc = set_string(field, d->size, value); break;
        case K_BOOL: rc = parse_bool(value, (bool *)field); break;
        case K_FLUSH:
            if (strcmp(value, "SYNC_FLUSH") == 0)
                *(int *)field = 1;
            else if (strcmp(value, "ASYNC_FLUSH") == 0)
                *(int *)field = 0;
            else
                rc = LSMQ_EINVAL;
            break;
        case K_U32:
            if ((rc = parse_u64(value, d->max, &u)) == 0)
                *(uint32_t *)field = (uint32_t)u;
            break;
        case K_I32:
            if ((rc = parse_u64(value, d->max, &u)) == 0)
                *(int *)field = (int)u;
            break;
        case K_I64:
            if ((rc = parse_u64(value, d->max, &u)) == 0)
                *(int64_t *)field = (int64_t)u;
            break;
        case K_U64:
            if ((rc = parse_u64(value, d->max, &u)) == 0)
                *(uint64_t *)field = u;
            break;
        }
        if (rc != 0)
            say(errbuf, errlen, "bad value for %s: '%s'", key, value);
        return rc;
    }
    say(errbuf, errlen, "unknown configuration key '%s'", key);
    return LSMQ_ENOTFOUND;
}

static int set_cb(void *cfg, const char *key, const char *value, char *why, size_t why_len)
{
    return broker_config_set(cfg, key, value, why, why_len);
}

int broker_config_load(broker_config *c, const char *path, char *errbuf, size_t errlen)
{
    return server_config_file_load(path, set_cb, c, errbuf, errlen);
}

int broker_config_parse_args(broker_config *c, int argc, char **argv, char *errbuf,
                             size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-c") == 0 || strcmp(a, "-n") == 0) && i + 1 >= argc) {
            say(errbuf, errlen, "%s needs a value", a);
            return LSMQ_EINVAL;
        }
        int rc;
        if (strcmp(a, "-c") == 0) {
            rc = broker_config_load(c, argv[++i], errbuf, errlen);
        } else if (strcmp(a, "-n") == 0) {
            rc = broker_config_set(c, "namesrvAddr", argv[++i], errbuf, errlen);
        } else if (strcmp(a, "--embedded-namesrv") == 0) {
            c->embedded_namesrv = true;
            rc = 0;
        } else if ((rc = server_config_apply_option(a, set_cb, c, errbuf, errlen)) != 0) {
            rc = rc > 0 ? 0 : rc;
        } else {
            say(errbuf, errlen, "unknown argument '%s' (use -c FILE, -n ADDRS, --key=value)", a);
            rc = LSMQ_EINVAL;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}
