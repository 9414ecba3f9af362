/*
 * Inside the master: the state master.c (thread, hook, status),
 * master_stream.c (HELLO, shipping, ACKs) and master_checkpoint.c
 * (checkpoints served file by file) share. Everything but the fields
 * marked otherwise belongs to the replication thread.
 */
#ifndef LSMQ_REPL_MASTER_INTERNAL_H
#define LSMQ_REPL_MASTER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <ev.h>

#include "net.h"
#include "repl_internal.h"

/* A shipped frame waiting for its ACK. */
typedef struct repl_inflight {
    uint64_t last_seq;
    uint32_t bytes;
    uint32_t batches;
} repl_inflight;

/* One replica connection (a follower, or a checkpoint fetch). */
typedef struct repl_link {
    struct repl_link *next;
    struct repl_master *m;
    conn *c;
    uint64_t conn_id;
    /* Read by status under m->lock; written under it by the thread. */
    repl_phase phase;
    char addr[REPL_ADDR_MAX];
    char peer[REPL_ADDR_MAX];
    uint64_t epoch;
    uint64_t acked_seq;        /* durable on the replica */
    uint64_t replica_position; /* its next log position, from its last ACK */
    bool in_sync;
    /* Streaming. */
    engine_log_reader *reader;
    uint64_t shipped_seq;      /* last sequence shipped */
    repl_inflight *q;          /* ring of frames waiting for an ACK */
    size_t q_head, q_len, q_cap;
    uint64_t unacked_bytes;
    uint32_t unacked_batches;
    int64_t last_heard_ms;
    int64_t last_sent_ms;
    /* Checkpoint served (phase CHECKPOINT). */
    char *cp_dir;              /* NULL when none */
    uint64_t cp_id;
    int cp_fd;                 /* the file last read, kept open */
    char cp_file[256];
    uint64_t cp_total;         /* bytes in its files (status, under m->lock) */
    uint64_t cp_served;        /* bytes answered so far (status, under m->lock) */
} repl_link;

/* Messages committed up to a sequence: the ring lag in messages is read from. */
typedef struct repl_commit_mark {
    uint64_t first_seq;
    uint64_t msgs_before;      /* messages committed since start before this batch */
    uint64_t msgs_total;       /* and with it */
} repl_commit_mark;

#define REPL_MARKS 65536

/* A member of the acknowledgement set (repl_master_set_ack_set). */
typedef struct repl_ack_member {
    char addr[REPL_ADDR_MAX];
    uint64_t acked;            /* the last sequence it acknowledged, kept while it is away */
} repl_ack_member;

struct repl_master {
    repl_master_config cfg;    /* host and work_dir point at the copies below */
    char *host;
    char *work_dir;
    engine_extension ext;
    engine *e;
    pthread_t thread;
    bool started;
    struct ev_loop *loop;
    server *srv;
    int port;
    ev_async wake;             /* writes, and stop */
    ev_timer tick;             /* heartbeats, dead replicas */
    atomic_bool stopping;
    uint64_t next_cp_id;
    /* The writer thread's hook meets the thread here. */
    pthread_mutex_t hook_lock;
    bool hook_on;              /* the loop takes wake-ups */
    repl_commit_mark *marks;   /* ring of REPL_MARKS */
    size_t marks_next;
    uint64_t msgs_total;
    /* The links, for status readers on other threads. */
    pthread_mutex_t lock;
    repl_link *links;
    atomic_uint_fast64_t acked;
    atomic_size_t n_streaming;
    atomic_size_t n_in_sync;
    /* The acknowledgement set, under lock; ack_set_on and ack_alone also for the hook. */
    atomic_bool ack_set_on;    /* acked is the set's minimum, not the in_sync-th highest */
    atomic_bool ack_alone;     /* the set is empty: every write is acked as it is written */
    repl_ack_member *ack_set;
    size_t ack_n;
    /* The epoch it serves (its store's, after the promotion record) and its history. */
    uint64_t epoch;
    engine_epoch_entry promotion; /* the newest history entry: epoch 0 when none is ours */
    atomic_uint_fast64_t last_seq; /* as the write hook last saw it */
    int64_t stale_logged_ms;   /* the last "this master is stale" line (thread's) */
};

/* master.c */
/* The link of a connection, made on its first request. */
repl_link *repl__link_of(struct repl_master *m, conn *c);
/* Messages committed after seq (by the ring; a lower bound past its start). */
uint64_t repl__msgs_after(struct repl_master *m, uint64_t seq);
/* Recount streaming and in-sync replicas and move the acknowledged sequence. */
void repl__master_recount(struct repl_master *m);

/* master_ackset.c */
/* Under m->lock: a link's acknowledged sequence moved; its set member keeps it. */
void repl__ack_set_note(struct repl_master *m, const char *addr, uint64_t acked);
/* Under m->lock, with the set on: the sequence the whole set holds. */
uint64_t repl__ack_set_quorum(struct repl_master *m);
void repl__ack_set_free(struct repl_master *m);

/* master_stream.c */
void repl__stream_register(struct repl_master *m);
/* Ship what the log holds to every streaming link, as far as each window allows. */
void repl__ship_all(struct repl_master *m);
/* Heartbeats to quiet links; drop links that went silent. */
void repl__stream_tick(struct repl_master *m, int64_t now_ms);
void repl__stream_close(repl_link *l);

/* master_checkpoint.c */
void repl__checkpoint_register(struct repl_master *m);
void repl__checkpoint_close(repl_link *l);

#endif
