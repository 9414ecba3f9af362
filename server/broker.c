/*
 * The broker object: the module table, and the store row near its head
 * (opens the engine, creates the system topics; closes the engine at
 * shutdown once every other module has stopped). broker_create walks the
 * table forwards, broker_destroy backwards (broker_internal.h says why the
 * order is safe). Also the mapping of store errors to response codes.
 *
 * A replica's store is opened the same way (replication declares what it
 * needs, broker_ha_declare) but gets no system topics of its own: it has
 * its master's. A replica made again from a checkpoint while it runs
 * closes and reopens the store through broker__store_close/_open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "alloc.h"
#include "broker_internal.h"
#include "log.h"

struct broker {
    broker_modules m;
};

int broker_store_error_code(int err)
{
    switch (err) {
    case 0: return RS_SUCCESS;
    case LSMQ_EBUSY: return RS_SYSTEM_BUSY;
    case LSMQ_ENOSPC: return RS_SERVICE_NOT_AVAILABLE;
    case LSMQ_ECLOSED: return RS_SERVICE_NOT_AVAILABLE;
    case LSMQ_ETOOBIG: return RS_MESSAGE_ILLEGAL;
    case LSMQ_EINVAL: return RS_MESSAGE_ILLEGAL;
    case LSMQ_ENOTFOUND: return RS_TOPIC_NOT_EXIST;
    case LSMQ_EREADONLY: return RS_SERVICE_NOT_AVAILABLE;
    default: return RS_SYSTEM_ERROR;
    }
}

/* ==== The store row ======================================================= */

/* At start-up, before the loop runs: create a missing topic and wait for it. */
static int ensure_at_start(engine *e, const char *topic, uint32_t queues, uint32_t perm)
{
    engine_topic_config tc;
    if (engine_topic_get(e, topic, strlen(topic), &tc) == 0)
        return 0;
    memset(&tc, 0, sizeof tc);
    if (strlen(topic) >= sizeof tc.name)
        return LSMQ_ETOOBIG;
    strcpy(tc.name, topic);
    tc.read_queue_nums = tc.write_queue_nums = queues;
    tc.perm = perm;
    int rc = engine_topic_put(e, &tc, NULL);
    if (rc == 0)
        proto_log(PROTO_LOG_INFO, "broker: created topic %s (%u queues, perm %u)", topic, queues, perm);
    return rc;
}

/* Topics every broker has (a subset of what the Java broker creates, §6.1). */
static int create_system_topics(const broker_config *cfg, engine *e)
{
    int rc = 0;
    uint32_t rw = ENGINE_PERM_READ | ENGINE_PERM_WRITE, rwi = rw | ENGINE_PERM_INHERIT;
    if (cfg->auto_create_topic_enable)
        rc = ensure_at_start(e, BROKER_DEFAULT_TOPIC, cfg->default_topic_queue_nums, rwi);
    if (rc == 0)
        rc = ensure_at_start(e, "SELF_TEST_TOPIC", 1, rw);
    if (rc == 0)
        rc = ensure_at_start(e, "OFFSET_MOVED_EVENT", 1, rw);
    if (rc == 0)
        rc = ensure_at_start(e, cfg->broker_cluster_name, 16, rwi);
    if (rc == 0)
        rc = ensure_at_start(e, cfg->broker_name, 1, rwi);
    return rc;
}

/* Open the engine under storePathRootDir with the indexes and what replication declares. */
int broker__store_open(broker_modules *m, char *errbuf, size_t errlen)
{
    broker_ctx *ctx = &m->ctx;
    const broker_config *cfg = &ctx->cfg;
    engine_config ec;
    engine_config_init(&ec);
    ec.store_path = cfg->store_path_root_dir;
    ec.flush_mode = cfg->flush_disk_type_sync ? ENGINE_SYNC_FLUSH : ENGINE_ASYNC_FLUSH;
    ec.flush_interval_ms = cfg->flush_interval_commit_log;
    ec.max_message_size = cfg->max_message_size;
    ec.file_reserved_hours = cfg->file_reserved_time;
    ec.disk_max_used_ratio = cfg->disk_max_used_space_ratio;
    ec.block_cache_bytes = cfg->block_cache_bytes;
    ec.writer_queue_max = cfg->writer_queue_max;
    ec.store_host = ctx->store_host;
    index_options io = {.key_index = cfg->message_index_enable};
    int rc = index_declare(&ec, &io);
    if (rc == 0)
        rc = engine_config_add_extension(&ec, broker_stats_extension(m->stats));
    if (rc == 0)
        rc = broker_ha_declare(m->ha, &ec);
    if (rc == 0)
        rc = engine_config_add_extension(&ec, broker_wake_extension(m->wake));
    if (rc == 0)
        rc = engine_open(&ec, &ctx->engine, errbuf, errlen);
    return rc;
}

void broker__store_close(broker_modules *m)
{
    engine_close(m->ctx.engine);
    m->ctx.engine = NULL;
    server_run_posted(m->ctx.srv);
}

/* Open the store; a master makes the system topics it lacks. */
static int store_create(broker_modules *m, char *errbuf, size_t errlen)
{
    broker_ctx *ctx = &m->ctx;
    const broker_config *cfg = &ctx->cfg;
    int rc = broker__store_open(m, errbuf, errlen);
    if (rc != 0 || ctx->replica)
        return rc;
    if ((rc = create_system_topics(cfg, ctx->engine)) != 0) {
        snprintf(errbuf, errlen, "cannot prepare the store: %s", lsmq_strerror(rc));
        engine_close(ctx->engine);
        ctx->engine = NULL;
        return rc;
    }
    return 0;
}

/*
 * Closing the engine drains the writer; its completions are posted to the
 * loop and run here, while every module's state still exists. From then on
 * ctx.engine is NULL and late work leaves the store alone.
 */
static void store_stop(broker_modules *m)
{
    broker__store_close(m);
}

/* ==== The table =========================================================== */

/* Start-up order; shutdown runs it backwards (broker_internal.h). */
static const broker_module modules[] = {
    {"stats", broker_stats_create, NULL, NULL, broker_stats_destroy},
    {"ha", broker_ha_create, NULL, NULL, broker_ha_destroy},
    {"wake", broker_wake_create, NULL, NULL, broker_wake_destroy},
    {"store", store_create, NULL, store_stop, NULL},
    {"registration", broker_registration_create, NULL, broker_registration_stop,
     broker_registration_destroy},
    {"meta", broker_meta_create, NULL, NULL, broker_meta_destroy},
    {"clients", broker_clients_create, broker_clients_register, NULL, broker_clients_destroy},
    {"locks", broker_locks_create, broker_locks_register, NULL, broker_locks_destroy},
    {"pull", broker_pull_create, broker_pull_register, NULL, broker_pull_destroy},
    {"send", broker_send_create, broker_send_register, NULL, broker_send_destroy},
    {"sendback", broker_sendback_create, broker_sendback_register, NULL,
     broker_sendback_destroy},
    {"ha-serve", broker_ha_start, broker_ha_register, broker_ha_stop, NULL},
    {"epoch", NULL, broker_epoch_register, NULL, NULL},
    {"offsets", NULL, broker_offsets_register, NULL, NULL},
    {"admin", broker_admin_create, broker_admin_register, NULL, broker_admin_destroy},
    {"admin-stats", NULL, broker_admin_stats_register, NULL, NULL},
    {"admin-groups", NULL, broker_admin_groups_register, NULL, NULL},
    {"query", NULL, broker_query_register, NULL, NULL},
    {"reset", NULL, broker_reset_register, NULL, NULL},
    {"timespan", NULL, broker_timespan_register, NULL, NULL},
    {"timer-status", NULL, broker_timer_status_register, NULL, NULL},
};
#define N_MODULES (sizeof modules / sizeof modules[0])

/* Stop, then destroy, the first n modules, last first. */
static void shut_down(broker_modules *m, size_t n)
{
    for (size_t i = n; i-- > 0;)
        if (modules[i].stop)
            modules[i].stop(m);
    for (size_t i = n; i-- > 0;)
        if (modules[i].destroy)
            modules[i].destroy(m);
}

static int ctx_init(broker_ctx *ctx, const broker_config *cfg, server *srv, char *errbuf,
                    size_t errlen)
{
    int rc = broker_config_check(cfg, errbuf, errlen);
    if (rc != 0)
        return rc;
    ctx->cfg = *cfg;
    ctx->srv = srv;
    ctx->replica = cfg->role == BROKER_SLAVE;
    snprintf(ctx->addr, sizeof ctx->addr, "%s:%d", cfg->broker_ip1, cfg->listen_port);
    snprintf(ctx->ha_addr, sizeof ctx->ha_addr, "%s:%d", cfg->broker_ip1,
             broker_config_ha_port(cfg));
    if (inet_pton(AF_INET, cfg->broker_ip1, ctx->store_host.ip) != 1) {
        snprintf(errbuf, errlen, "brokerIP1 '%s' is not an IPv4 address", cfg->broker_ip1);
        return LSMQ_EINVAL;
    }
    ctx->store_host.port = (uint32_t)cfg->listen_port;
    return 0;
}

int broker_create(const broker_config *cfg, server *srv, broker **out, char *errbuf,
                  size_t errlen)
{
    broker *b = proto_xcalloc(1, sizeof *b);
    int rc = ctx_init(&b->m.ctx, cfg, srv, errbuf, errlen);
    for (size_t i = 0; rc == 0 && i < N_MODULES; i++) {
        if (modules[i].create && (rc = modules[i].create(&b->m, errbuf, errlen)) != 0) {
            proto_log(PROTO_LOG_ERROR, "broker: module %s did not start", modules[i].name);
            shut_down(&b->m, i);
        }
    }
    if (rc != 0) {
        free(b);
        return rc;
    }
    for (size_t i = 0; i < N_MODULES; i++)
        if (modules[i].register_handlers)
            modules[i].register_handlers(&b->m);
    *out = b;
    return 0;
}

/* ==== What the controller agent drives =================================== */

void broker_set_fenced(broker *b, bool fenced)
{
    b->m.ctx.fenced = fenced;
}

bool broker_is_replica(const broker *b)
{
    return b->m.ctx.replica;
}

uint64_t broker_position(broker *b)
{
    return broker_ha_position(b->m.ha);
}

void broker_follow(broker *b, const char *ha_addr, uint64_t epoch)
{
    broker_ha_follow(b->m.ha, ha_addr, epoch);
}

void broker_set_ack_set(broker *b, const char *const *addrs, size_t n)
{
    broker_ha_set_ack_set(b->m.ha, addrs, n);
}

int broker_replicas(broker *b, broker_replica_state **out, size_t *n, uint64_t *last_seq)
{
    return broker_ha_replicas(b->m.ha, out, n, last_seq);
}

void broker_destroy(broker *b)
{
    if (!b)
        return;
    shut_down(&b->m, N_MODULES);
    free(b);
}
