/*
 * replication: a master ships its committed write batches, in sequence
 * order, to replicas that apply them through their own writer.
 *
 * The replicated log is RocksDB's WAL as the engine hands it out
 * (engine_log_open / engine_log_next): every state change of a broker is
 * one WriteBatch with a sequence, so a replica that applies every batch
 * after the checkpoint it was made from holds exactly the master's store.
 * Master and replica talk remoting frames on haListenPort, each side on a
 * thread and libev loop of its own, so the broker's loop never waits for a
 * WAL read, a checkpoint file or a replica (replication/README.md has the
 * frames and the flow).
 *
 *   master   repl_master_create (before engine_open: its engine hooks wake
 *            the shipper) -> repl_master_start (after engine_open) ->
 *            repl_master_stop -> engine_close -> repl_master_destroy.
 *   replica  repl_replica_prepare (before engine_open: makes <store>/db
 *            from a checkpoint of the master when the store has no
 *            position) -> engine_open with config.replica ->
 *            repl_replica_start -> repl_replica_stop (before engine_close).
 *
 * Conventions:
 *   - Opaque types with create/destroy (or start/stop) pairs; configs and
 *     status records are plain structs the caller fills or reads.
 *   - Functions return 0 or a negative LSMQ_E* code (protocol/errors.h) or
 *     -errno; where an errbuf is passed a failure leaves a sentence there.
 *   - Strings in configs are copied; status arrays are malloc'ed and freed
 *     by the caller with free().
 *   - Addresses are "host:port". Sequences are the master's RocksDB
 *     sequences; a batch of N operations uses N of them. Every shipped
 *     batch carries (epoch, seq, count).
 *   - Epochs (failover): a controller numbers the group's masters. Each
 *     master's sequences are its own, so a store stands at a position
 *     (epoch, seq) (engine_position). A master entering a newer epoch
 *     writes a promotion record (engine_epoch_begin) at start; a replica
 *     of an older epoch standing exactly where the new master stood when
 *     promoted is rebased onto it, any other is made again from a
 *     checkpoint. Older epochs are refused both ways (README.md, "Epochs
 *     and divergence"). With every epoch 0 nothing of this happens.
 *   - Threads: the functions here may be called from any thread unless
 *     they say otherwise. Callbacks run on the replication thread (or, for
 *     the engine hook, the writer thread) and must be short: hand the news
 *     to the broker's loop (ev_async_send).
 */
#ifndef LSMQ_REPL_H
#define LSMQ_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "errors.h"

/* Room for "host:port" in status records (longer addresses are cut). */
#define REPL_ADDR_MAX 128

/* ------------------------------------------------------------------ */
/* Master                                                              */
/* ------------------------------------------------------------------ */

typedef struct repl_master repl_master;

typedef struct repl_master_config {
    const char *host;              /* haListenPort's address; NULL or "" = every interface */
    int port;                      /* haListenPort; 0 picks a free one (repl_master_port) */
    const char *work_dir;          /* checkpoints are made here (<store>/ha); created */
    uint64_t epoch;                /* the controller's; newer than the store's position: a
                                      promotion record is written at start. 0: the store's */
    uint32_t in_sync;              /* inSyncReplicas: acks that make a batch "acked"; default 1 */
    uint64_t max_gap_bytes;        /* a replica further behind (log bytes) is not in sync;
                                      default 256 MiB (haMaxGapNotInSync) */
    uint32_t window_bytes;         /* shipped and unacknowledged bytes per replica; default 32 MiB */
    uint32_t heartbeat_ms;         /* a frame at least this often; default 1000 */
    uint32_t dead_after_ms;        /* nothing heard this long: drop the replica; default 5000 */
    /*
     * Replication thread: the sequence acknowledged by at least `in_sync`
     * replicas moved up to seq (every batch whose last sequence is <= seq
     * is applied there, as each replica's flush mode says). Never goes back
     * while the master runs.
     */
    void (*acked_cb)(void *ctx, uint64_t seq);
    void *ctx;
} repl_master_config;

/* Fill c with the defaults above (host NULL, port 0, no callback). */
void repl_master_config_init(repl_master_config *c);

/*
 * A master that does not serve yet. Before engine_open: declare
 * repl_master_extension(m) in the engine config. The config is copied.
 * 0, or LSMQ_EINVAL (no work_dir, in_sync 0).
 */
int repl_master_create(const repl_master_config *c, repl_master **out);

/* The engine hooks (every write wakes the shipper); owned by m, valid until repl_master_destroy. */
const engine_extension *repl_master_extension(repl_master *m);

/*
 * After engine_open: enter the configured epoch (a promotion record,
 * synced, when it is newer than the store's position), listen on
 * haListenPort and serve replicas from a thread of its own. Old
 * checkpoints in work_dir are removed. 0, or -errno (the port is taken:
 * errbuf says so), LSMQ_EINVAL (started twice), LSMQ_EIO / LSMQ_ENOSPC
 * (the promotion record).
 */
int repl_master_start(repl_master *m, engine *e, char *errbuf, size_t errlen);

/* The port it listens on (after start; the chosen one when the config said 0). */
int repl_master_port(const repl_master *m);

/* Close every replica connection and join the thread. Before engine_close. Again: no-op. */
void repl_master_stop(repl_master *m);
/* After repl_master_stop (or without a start) and after engine_close. NULL is fine. */
void repl_master_destroy(repl_master *m);

/* Replicas connected and streaming (any phase but checkpoint transfer). */
size_t repl_master_replicas(repl_master *m);
/* Of those, the ones in sync (within max_gap_bytes, judged again every tick): fewer
 * than in_sync means a SYNC send cannot be acknowledged soon (SLAVE_NOT_AVAILABLE). */
size_t repl_master_in_sync(repl_master *m);
/* The sequence acknowledged by `in_sync` replicas (or the acknowledgement
 * set), as acked_cb last said (0: none yet). */
uint64_t repl_master_acked(repl_master *m);
/* The last sequence written on the master, as the write hook saw it (engine_last_sequence at start). */
uint64_t repl_master_last_seq(repl_master *m);
/* The epoch it serves (after start): the config's, or the store's when that is newer. */
uint64_t repl_master_epoch(repl_master *m);

/*
 * Controller mode: from now on a batch is acknowledged once every replica
 * listed (by the address it announces, repl_replica_config.self_addr)
 * has it: acked is the minimum of their acknowledged sequences, a listed
 * replica that is not connected holding it at what it last acknowledged
 * (0 if never heard). n == 0: the master alone is the set, every write is
 * acknowledged as it is written. Never called: inSyncReplicas rules.
 * The acknowledged sequence never moves back; acked_cb reports it on the
 * replication thread. Any thread, any time (before start too); copied.
 */
void repl_master_set_ack_set(repl_master *m, const char *const *replica_addrs, size_t n);

typedef enum repl_phase {
    REPL_PHASE_HANDSHAKE = 0,      /* connected, HELLO not answered yet */
    REPL_PHASE_CHECKPOINT,         /* fetching a checkpoint */
    REPL_PHASE_STREAMING,          /* following the log */
} repl_phase;

/* The name of a phase ("streaming"); static. */
const char *repl_phase_name(repl_phase p);

/* What the master knows of one replica. */
typedef struct repl_replica_info {
    char addr[REPL_ADDR_MAX];      /* the replica broker's address, as it announced it */
    char peer[REPL_ADDR_MAX];      /* the connection's remote address */
    uint64_t acked_seq;            /* the last sequence it has applied (as its flush mode says) */
    uint64_t lag_bytes;            /* master's next log position - the replica's */
    uint64_t lag_msgs;             /* messages committed after acked_seq */
    bool in_sync;
    repl_phase phase;
    uint64_t epoch;                /* the replica's, as it announced it */
    uint64_t checkpoint_bytes;     /* phase checkpoint: bytes it has fetched, */
    uint64_t checkpoint_total;     /* of this many */
} repl_replica_info;

/* A copy of every connected replica's state: *out malloc'ed (free()), NULL when *n is 0. */
int repl_master_status(repl_master *m, repl_replica_info **out, size_t *n);

/* ------------------------------------------------------------------ */
/* Replica                                                             */
/* ------------------------------------------------------------------ */

typedef struct repl_replica repl_replica;

typedef struct repl_replica_config {
    const char *store_path;        /* storePathRootDir; the store is <store_path>/db */
    const char *master_addr;       /* "host:haPort"; NULL: wait for repl_replica_set_master */
    const char *self_addr;         /* this broker's address, for the master's haStatus; may be NULL */
    uint64_t epoch;                /* the oldest master epoch followed (the controller's);
                                      a master of an older one is refused */
    uint32_t connect_timeout_ms;   /* default 3000 */
    uint32_t retry_min_ms;         /* reconnect back-off: first wait, default 100, */
    uint32_t retry_max_ms;         /* doubling up to this, default 5000 */
    uint32_t heartbeat_ms;         /* an ACK at least this often; default 1000 */
    uint32_t dead_after_ms;        /* nothing heard this long: reconnect; default 5000 */
    uint32_t prepare_timeout_ms;   /* repl_replica_prepare gives up after; 0 = never */
    /*
     * Replication thread: the master no longer holds the log after our
     * applied sequence (or the store holds none): the store must be made
     * again from a checkpoint (stop, engine_close, repl_replica_prepare with
     * refetch, engine_open, start). The follower waits, reconnecting
     * seldom, until then. NULL: the status says it. Never stop the
     * replica from inside the callback (stop joins this thread): post.
     */
    void (*checkpoint_needed_cb)(void *ctx);
    /*
     * Replication thread: the master's confirmed sequence (what its
     * acknowledgement rule says every replica that matters holds) moved,
     * as its HELLO answer, batches and heartbeats say; seq counts that
     * master's log. `restart` on the first report since following began
     * (a new master, a reconnection or a rebase): the store's sequences
     * count that master's log from `since`, its position then, and what
     * it held before must be confirmed at `since`. A first report comes
     * before any batch of that master is applied. NULL: ignored.
     */
    void (*confirmed_cb)(void *ctx, uint64_t seq, uint64_t since, bool restart);
    void *ctx;
} repl_replica_config;

/* Fill c with the defaults above (every pointer NULL). */
void repl_replica_config_init(repl_replica_config *c);

/*
 * Before engine_open. Unless the store already has a position (a
 * replica's, or a former master's: engine_position; refetch false): fetch
 * a checkpoint of the master into a temporary directory under
 * <store_path>/ha, verify every file's size and checksum (a bad file is
 * fetched again), record the checkpoint's (epoch, sequence) as its
 * position, and only then rename it to
 * <store_path>/db (an old db/ is removed). A crash at any point leaves
 * either the old store or no db/ at all, so the next call fetches again.
 * Blocks, logging progress, and retries a master that cannot be reached
 * with back-off until prepare_timeout_ms; a master of an epoch older than
 * c->epoch is not used. *applied_seq: the sequence of the store's
 * position now (for the log). 0, or -ETIMEDOUT, LSMQ_EINVAL (no
 * master address), LSMQ_EIO, LSMQ_ECORRUPT (the store does not open), with
 * errbuf set.
 */
int repl_replica_prepare(const repl_replica_config *c, bool refetch, uint64_t *applied_seq,
                         char *errbuf, size_t errlen);

/*
 * After engine_open with config.replica: follow the master from the
 * store's position on a thread of its own (rebased onto a master of a
 * newer epoch when HELLO says so), applying batches
 * through engine_apply in order, each once, acknowledging what is applied
 * (written as the store's flush mode says: engine_apply), and
 * reconnecting with back-off when the link breaks. The config is
 * copied. 0, or LSMQ_EINVAL (no store path; the engine is not a replica).
 */
int repl_replica_start(const repl_replica_config *c, engine *e, repl_replica **out);

/* A master address learned later (the name server's brokerId 0); copied. Reconnects. */
void repl_replica_set_master(repl_replica *r, const char *addr);
/* Follow addr at epoch or newer (the controller's word): a newer epoch raises the
 * replica's minimum (never lowered) and says HELLO again. */
void repl_replica_set_master_epoch(repl_replica *r, const char *addr, uint64_t epoch);

/* Close the connection, wait for applies in flight, join the thread, free r. NULL is fine. */
void repl_replica_stop(repl_replica *r);

typedef struct repl_replica_state {
    char master_addr[REPL_ADDR_MAX]; /* "" while unknown */
    uint64_t applied_seq;          /* applied in this store (engine_applied_sequence) */
    uint64_t master_seq;           /* the master's last sequence, as last heard */
    uint64_t epoch;                /* the master epoch followed */
    bool connected;                /* streaming from the master now */
    bool checkpoint_needed;        /* see checkpoint_needed_cb */
    int error;                     /* nonzero: replication stopped for good on this code
                                      (LSMQ_ECORRUPT: a batch this store cannot apply;
                                      the log says which); a restart tries again */
    int64_t last_read_ms;          /* wall clock of the last frame from the master, 0: none */
    int64_t last_write_ms;         /* wall clock of the last ACK sent to it, 0: none */
} repl_replica_state;

int repl_replica_status(repl_replica *r, repl_replica_state *out);

#endif
