/*
 * The broker object: opens the store, creates the system topics, wires the
 * handler files onto the server and starts registration with the name
 * servers. Also the shared topic helpers (auto-create on send) and the
 * mapping of store errors to response codes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "broker.h"
#include "log.h"

typedef struct register_waiter {
    struct register_waiter *next;
    uint64_t gen;
    void (*fn)(void *arg);
    void *arg;
} register_waiter;

struct broker {
    broker_config cfg;
    engine *e;
    server *srv;
    char addr[96];
    proto_host store_host;
    broker_clients *clients;
    broker_pull *pull;
    broker_locks *locks;
    broker_registrar *registrar;
    broker_meta *meta;
    uint64_t topics_register_gen; /* loop thread */
    uint64_t registered_gen;      /* loop thread */
    register_waiter *waiters;
};

uint64_t broker_topics_register_gen(broker *b) { return b->topics_register_gen; }

void broker_after_register(broker *b, uint64_t gen, void (*fn)(void *), void *arg)
{
    if (gen <= b->registered_gen) {
        fn(arg);
        return;
    }
    register_waiter *w = malloc(sizeof *w);
    if (!w)
        abort();
    *w = (register_waiter){b->waiters, gen, fn, arg};
    b->waiters = w;
}

/* Run the waiters of generations up to gen (all of them when gen is UINT64_MAX). */
static void run_waiters(broker *b, uint64_t gen)
{
    register_waiter **pp = &b->waiters, *ready = NULL;
    while (*pp) {
        register_waiter *w = *pp;
        if (w->gen <= gen) {
            *pp = w->next;
            w->next = ready;
            ready = w;
        } else {
            pp = &w->next;
        }
    }
    while (ready) {
        register_waiter *w = ready;
        ready = w->next;
        w->fn(w->arg);
        free(w);
    }
}

void broker__registered(broker *b, uint64_t gen)
{
    if (gen > b->registered_gen)
        b->registered_gen = gen;
    run_waiters(b, b->registered_gen);
}

engine *broker_engine(broker *b) { return b->e; }
server *broker_server(broker *b) { return b->srv; }
const broker_config *broker_cfg(broker *b) { return &b->cfg; }
const char *broker_addr(broker *b) { return b->addr; }
const proto_host *broker_store_host(broker *b) { return &b->store_host; }
broker_clients *broker_clients_state(broker *b) { return b->clients; }
broker_pull *broker_pull_state(broker *b) { return b->pull; }
broker_locks *broker_locks_state(broker *b) { return b->locks; }
broker_meta *broker_meta_state(broker *b) { return b->meta; }

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
    default: return RS_SYSTEM_ERROR;
    }
}

void broker__topics_changed(broker *b, bool created)
{
    uint64_t gen = broker_register_now(b);
    if (created && gen > b->topics_register_gen)
        b->topics_register_gen = gen;
}

/* At start-up, before the loop runs: create a missing topic and wait for it. */
static int ensure_at_start(broker *b, const char *topic, uint32_t queues, uint32_t perm)
{
    engine_topic_config tc;
    if (engine_topic_get(b->e, topic, strlen(topic), &tc) == 0)
        return 0;
    memset(&tc, 0, sizeof tc);
    if (strlen(topic) >= sizeof tc.name)
        return LSMQ_ETOOBIG;
    strcpy(tc.name, topic);
    tc.read_queue_nums = tc.write_queue_nums = queues;
    tc.perm = perm;
    int rc = engine_topic_put(b->e, &tc, NULL);
    if (rc == 0)
        lsmq_log("broker: created topic %s (%u queues, perm %u)", topic, queues, perm);
    return rc;
}

int broker_topic_get_or_create_for(broker *b, conn *c, const proto_cmd *req, const char *topic,
                                   const char *default_topic, uint32_t queue_nums,
                                   engine_topic_config *out)
{
    int rc = broker_topic_wait_for(b, c, req, topic);
    if (rc != 0)
        return rc;
    if (engine_topic_get(b->e, topic, strlen(topic), out) == 0)
        return 0;
    if (!default_topic || !*default_topic)
        return LSMQ_ENOTFOUND;
    engine_topic_config def;
    if (engine_topic_get(b->e, default_topic, strlen(default_topic), &def) != 0)
        return LSMQ_ENOTFOUND;
    uint32_t perm = def.perm;
    if (strcmp(default_topic, BROKER_DEFAULT_TOPIC) == 0 && !b->cfg.auto_create_topic_enable)
        perm = ENGINE_PERM_READ | ENGINE_PERM_WRITE; /* not inheritable */
    if (!(perm & ENGINE_PERM_INHERIT))
        return LSMQ_ENOTFOUND;
    uint32_t queues = queue_nums < def.write_queue_nums ? queue_nums : def.write_queue_nums;
    if (queues == 0)
        queues = 1;
    return broker_topic_ensure_for(b, c, req, topic, queues,
                                   perm & ~(uint32_t)ENGINE_PERM_INHERIT, out);
}

/* Topics every broker has (a subset of what the Java broker creates, §6.1). */
static int create_system_topics(broker *b)
{
    int rc = 0;
    uint32_t rw = ENGINE_PERM_READ | ENGINE_PERM_WRITE, rwi = rw | ENGINE_PERM_INHERIT;
    if (b->cfg.auto_create_topic_enable)
        rc = ensure_at_start(b, BROKER_DEFAULT_TOPIC, b->cfg.default_topic_queue_nums, rwi);
    if (rc == 0)
        rc = ensure_at_start(b, "SELF_TEST_TOPIC", 1, rw);
    if (rc == 0)
        rc = ensure_at_start(b, "OFFSET_MOVED_EVENT", 1, rw);
    if (rc == 0)
        rc = ensure_at_start(b, b->cfg.broker_cluster_name, 16, rwi);
    if (rc == 0)
        rc = ensure_at_start(b, b->cfg.broker_name, 1, rwi);
    return rc;
}

int broker_create(const broker_config *cfg, server *srv, broker **out, char *errbuf,
                  size_t errlen)
{
    broker *b = calloc(1, sizeof *b);
    if (!b)
        abort();
    b->cfg = *cfg;
    b->srv = srv;
    snprintf(b->addr, sizeof b->addr, "%s:%d", cfg->broker_ip1, cfg->listen_port);
    if (inet_pton(AF_INET, cfg->broker_ip1, b->store_host.ip) != 1) {
        snprintf(errbuf, errlen, "brokerIP1 '%s' is not an IPv4 address", cfg->broker_ip1);
        free(b);
        return LSMQ_EINVAL;
    }
    b->store_host.port = (uint32_t)cfg->listen_port;

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
    ec.store_host = b->store_host;
    index_options io = {.key_index = b->cfg.message_index_enable};
    int rc = index_declare(&ec, &io);
    if (rc == 0)
        rc = engine_open(&ec, &b->e, errbuf, errlen);
    if (rc != 0) {
        free(b);
        return rc;
    }
    if ((rc = create_system_topics(b)) != 0) {
        snprintf(errbuf, errlen, "cannot prepare the store: %s", lsmq_strerror(rc));
        engine_close(b->e);
        free(b);
        return rc;
    }
    b->clients = broker_clients_create(b);
    b->pull = broker_pull_create(b);
    b->locks = broker_locks_create(b);
    b->meta = broker_meta_create(b);
    broker_send_register(b);
    broker_pull_register(b);
    broker_offsets_register(b);
    broker_clients_register(b);
    broker_locks_register(b);
    broker_sendback_register(b);
    broker_admin_register(b);
    b->registrar = broker_registrar_start(b);
    *out = b;
    return 0;
}

void broker_destroy(broker *b)
{
    if (!b)
        return;
    broker_registrar_stop(b->registrar);
    /* Closing the engine drains the writer; its completions are posted to the
     * loop and must run while the handler state they touch still exists. */
    engine_close(b->e);
    b->e = NULL;
    server_run_posted(b->srv);
    broker_meta_destroy(b->meta);
    run_waiters(b, UINT64_MAX); /* answer what still waited for a registration */
    broker_pull_destroy(b->pull);
    broker_locks_destroy(b->locks);
    broker_clients_destroy(b->clients);
    free(b);
}
