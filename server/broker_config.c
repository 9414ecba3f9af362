/*
 * Broker configuration with RocketMQ's broker.conf key names, from a file
 * (-c), the name server list (-n) and --key=value on the command line, and
 * the check that refuses combinations a broker cannot run with.
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
    c->role = BROKER_ASYNC_MASTER;
    c->in_sync_replicas = 1;
    c->sync_flush_timeout_ms = 5000;
    c->ha_max_gap_bytes = 256u << 20;
    c->wal_ttl_seconds = 3600;
    c->wal_size_limit_mb = 4096;
    c->controller_heartbeat_timeout_ms = 10000;
    c->broker_heartbeat_interval_ms = 1000;
    c->ha_max_time_slave_not_catchup_ms = 15000;
    c->timer_max_delay_sec = 259200;
    c->timer_wheel_enable = true;
    c->timer_precision_ms = 1000;
    broker_config_set(c, "messageDelayLevel", BROKER_DEFAULT_DELAY_LEVELS, NULL, 0);
}

static const char *const role_names[] = {"ASYNC_MASTER", "SYNC_MASTER", "SLAVE"};

const char *broker_role_name(broker_role r)
{
    return (unsigned)r < sizeof role_names / sizeof role_names[0] ? role_names[r] : "?";
}

int broker_config_ha_port(const broker_config *c)
{
    return c->ha_listen_port ? c->ha_listen_port : c->listen_port + 1;
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

static int set_string(char *dst, size_t cap, const char *v)
{
    if (strlen(v) >= cap)
        return LSMQ_ETOOBIG;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

typedef enum { K_STR, K_U32, K_I32, K_I64, K_U64, K_BOOL, K_FLUSH, K_ROLE, K_DELAY } kind;

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
    {"brokerRole", K_ROLE, offsetof(broker_config, role), 0, 0},
    I32("haListenPort", ha_listen_port, 65535),
    STR("haMasterAddress", ha_master_address),
    U32("inSyncReplicas", in_sync_replicas, 64),
    U32("syncFlushTimeout", sync_flush_timeout_ms, 3600000),
    BOOL("slaveReadEnable", slave_read_enable),
    BOOL("offsetCheckInSlave", offset_check_in_slave),
    U32("haMaxGapNotInSync", ha_max_gap_bytes, UINT32_MAX),
    U32("walTtlSeconds", wal_ttl_seconds, 30u * 24 * 3600),
    U32("walSizeLimitMB", wal_size_limit_mb, 1u << 20),
    BOOL("enableControllerMode", enable_controller_mode),
    STR("controllerAddr", controller_addr),
    U32("controllerHeartBeatTimeoutMills", controller_heartbeat_timeout_ms, 3600000),
    U32("brokerHeartbeatInterval", broker_heartbeat_interval_ms, 3600000),
    U32("haMaxTimeSlaveNotCatchup", ha_max_time_slave_not_catchup_ms, 3600000),
    {"messageDelayLevel", K_DELAY, offsetof(broker_config, message_delay_level),
     sizeof(((broker_config *)0)->message_delay_level), 0},
    U32("timerMaxDelaySec", timer_max_delay_sec, 100u * 365 * 24 * 3600),
    BOOL("timerWheelEnable", timer_wheel_enable),
    U32("timerPrecisionMs", timer_precision_ms, 3600000),
};

/*
 * messageDelayLevel as upstream reads it: tokens split by single spaces,
 * each a number and a unit s, m, h or d (lowercase). Level i+1 waits
 * token i. Fills c's table only when the whole string is good.
 */
static int parse_delay_levels(broker_config *c, const char *v, char *errbuf, size_t errlen)
{
    static const struct { char unit; int64_t ms; } units[] = {
        {'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000},
    };
    int64_t table[BROKER_DELAY_LEVELS_MAX];
    uint32_t n = 0;
    const char *p = v;
    while (*p) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int64_t unit_ms = 0;
        for (size_t u = 0; len > 1 && u < sizeof units / sizeof units[0]; u++)
            if (p[len - 1] == units[u].unit)
                unit_ms = units[u].ms;
        char num[24];
        uint64_t count = 0;
        bool ok = unit_ms > 0 && len - 1 < sizeof num;
        if (ok) {
            memcpy(num, p, len - 1);
            num[len - 1] = '\0';
            ok = parse_u64(num, (uint64_t)INT64_MAX / (uint64_t)unit_ms, &count) == 0;
        }
        if (!ok) {
            say(errbuf, errlen, "bad messageDelayLevel '%s': level %u ('%.*s') is not a number "
                                "followed by s, m, h or d (levels are separated by one space, "
                                "e.g. \"1s 5s 10s 30s 1m 2h 1d\")",
                v, n + 1, (int)(len < 32 ? len : 32), p);
            return LSMQ_EINVAL;
        }
        if (n == BROKER_DELAY_LEVELS_MAX) {
            say(errbuf, errlen, "messageDelayLevel names more than %d levels",
                BROKER_DELAY_LEVELS_MAX);
            return LSMQ_EINVAL;
        }
        table[n++] = (int64_t)count * unit_ms;
        p += len;
        if (*p == ' ' && *++p == '\0') {
            say(errbuf, errlen, "bad messageDelayLevel '%s': it ends with a space", v);
            return LSMQ_EINVAL;
        }
    }
    if (n == 0) {
        say(errbuf, errlen, "messageDelayLevel is empty: name at least one level, e.g. \"1s\"");
        return LSMQ_EINVAL;
    }
    if (strlen(v) >= sizeof c->message_delay_level)
        return LSMQ_ETOOBIG;
    memcpy(c->delay_level_ms, table, n * sizeof table[0]);
    c->delay_levels = n;
    strcpy(c->message_delay_level, v);
    return 0;
}

/* brokerRole's values, as upstream spells them. */
static int parse_role(const char *v, broker_role *out)
{
    for (size_t i = 0; i < sizeof role_names / sizeof role_names[0]; i++) {
        if (strcmp(v, role_names[i]) == 0) {
            *out = (broker_role)i;
            return 0;
        }
    }
    return LSMQ_EINVAL;
}

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
        case K_BOOL: rc = server_config_parse_bool(value, (bool *)field); break;
        case K_FLUSH:
            if (strcmp(value, "SYNC_FLUSH") == 0)
                *(int *)field = 1;
            else if (strcmp(value, "ASYNC_FLUSH") == 0)
                *(int *)field = 0;
            else
                rc = LSMQ_EINVAL;
            break;
        case K_ROLE: rc = parse_role(value, (broker_role *)field); break;
        case K_DELAY: return parse_delay_levels(c, value, errbuf, errlen);
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
        if (rc != 0 && d->k == K_ROLE)
            say(errbuf, errlen, "bad value for brokerRole: '%s' (ASYNC_MASTER, SYNC_MASTER or SLAVE)",
                value);
        else if (rc != 0)
            say(errbuf, errlen, "bad value for %s: '%s'", key, value);
        return rc;
    }
    say(errbuf, errlen, "unknown configuration key '%s'", key);
    return LSMQ_ENOTFOUND;
}

/* "host:port" with a port in 1..65535. */
static bool is_host_port(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return false;
    uint64_t port;
    return parse_u64(colon + 1, 65535, &port) == 0 && port > 0;
}

/* Controller mode: the controller names the master; brokerId names the broker in its group. */
static int check_controller_mode(const broker_config *c, char *errbuf, size_t errlen)
{
    if (!c->controller_addr[0]) {
        say(errbuf, errlen, "enableControllerMode=true needs controllerAddr (the controllers' "
                            "addresses, 'host:port;host:port;host:port')");
        return LSMQ_EINVAL;
    }
    if (c->broker_id < 1) {
        say(errbuf, errlen, "in controller mode brokerId names this broker in group %s and the "
                            "controller decides who is master: set brokerId to 1, 2, 3, ... (one "
                            "per broker of the group)", c->broker_name);
        return LSMQ_EINVAL;
    }
    if (c->role == BROKER_SLAVE) {
        say(errbuf, errlen, "in controller mode the controller decides who is master; brokerRole "
                            "says how a master answers sends: SYNC_MASTER (after its sync state "
                            "set has the message) or ASYNC_MASTER");
        return LSMQ_EINVAL;
    }
    if (c->ha_master_address[0]) {
        say(errbuf, errlen, "in controller mode the controller names the master: remove "
                            "haMasterAddress");
        return LSMQ_EINVAL;
    }
    if (c->broker_heartbeat_interval_ms == 0 ||
        c->controller_heartbeat_timeout_ms < 2 * c->broker_heartbeat_interval_ms) {
        say(errbuf, errlen, "controllerHeartBeatTimeoutMills (%u) must be at least twice "
                            "brokerHeartbeatInterval (%u, > 0): a master's lease is what is left "
                            "between them",
            c->controller_heartbeat_timeout_ms, c->broker_heartbeat_interval_ms);
        return LSMQ_EINVAL;
    }
    return 0;
}

int broker_config_check_controller_mode(const broker_config *c, char *errbuf, size_t errlen)
{
    int rc = check_controller_mode(c, errbuf, errlen);
    if (rc != 0)
        return rc;
    int ha_port = broker_config_ha_port(c);
    if (ha_port <= 0 || ha_port > 65535 || (c->listen_port != 0 && ha_port == c->listen_port)) {
        say(errbuf, errlen, "haListenPort %d cannot be used beside listenPort %d: set "
                            "haListenPort to a free port of its own", ha_port, c->listen_port);
        return LSMQ_EINVAL;
    }
    return 0;
}

int broker_config_check(const broker_config *c, char *errbuf, size_t errlen)
{
    bool slave = c->role == BROKER_SLAVE;
    const char *role = broker_role_name(c->role);
    int ha_port = broker_config_ha_port(c);
    if (slave && c->broker_id == 0) {
        say(errbuf, errlen, "brokerRole=SLAVE needs brokerId > 0: brokerId 0 is the master of "
                            "broker group %s", c->broker_name);
        return LSMQ_EINVAL;
    }
    if (!slave && c->broker_id != 0) {
        say(errbuf, errlen, "brokerRole=%s needs brokerId=0 (brokerId %lld is a replica's: set "
                            "brokerRole=SLAVE)", role, (long long)c->broker_id);
        return LSMQ_EINVAL;
    }
    if (!slave && c->ha_master_address[0]) {
        say(errbuf, errlen, "haMasterAddress is for a replica (brokerRole=SLAVE); this broker is "
                            "a %s", role);
        return LSMQ_EINVAL;
    }
    if (c->ha_master_address[0] && !is_host_port(c->ha_master_address)) {
        say(errbuf, errlen, "haMasterAddress '%s' is not host:port", c->ha_master_address);
        return LSMQ_EINVAL;
    }
    if (slave && !c->ha_master_address[0] && !c->namesrv_addr[0] && !c->embedded_namesrv &&
        !c->enable_controller_mode) {
        say(errbuf, errlen, "a replica (brokerRole=SLAVE) needs haMasterAddress or a name server "
                            "(namesrvAddr) to find its master");
        return LSMQ_EINVAL;
    }
    if (ha_port <= 0 || ha_port > 65535 || (c->listen_port != 0 && ha_port == c->listen_port)) {
        say(errbuf, errlen, "haListenPort %d cannot be used beside listenPort %d: set "
                            "haListenPort to a free port of its own", ha_port, c->listen_port);
        return LSMQ_EINVAL;
    }
    if (c->role == BROKER_SYNC_MASTER && c->in_sync_replicas == 0) {
        say(errbuf, errlen, "brokerRole=SYNC_MASTER with inSyncReplicas=0 would wait for no "
                            "replica: use ASYNC_MASTER, or inSyncReplicas >= 1");
        return LSMQ_EINVAL;
    }
    if (c->role == BROKER_SYNC_MASTER && c->sync_flush_timeout_ms == 0) {
        say(errbuf, errlen, "brokerRole=SYNC_MASTER needs syncFlushTimeout > 0 (ms)");
        return LSMQ_EINVAL;
    }
    return 0;
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
