/*
 * What the files of replication/ share: the HA protocol's codes and field
 * names (replication/README.md describes them), the encoding of shipped
 * batches and checkpoint file lists, and file helpers. Internal to
 * replication/ (and its tests).
 *
 * Conventions are repl.h's. Encoders grow a proto_buf (aborting on
 * out-of-memory, the sizes are ours); decoders read bytes a peer sent and
 * return LSMQ_ECORRUPT for anything malformed.
 */
#ifndef LSMQ_REPL_INTERNAL_H
#define LSMQ_REPL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "engine.h"
#include "remoting.h"
#include "repl.h"

/*
 * Request codes on haListenPort: 960-969, a range RocketMQ does not use
 * (its HA codes are 901-908, its controller's 1001 on).
 */
enum {
    REPL_RC_HELLO = 960,            /* replica -> master: follow from appliedSeq */
    REPL_RC_BATCHES = 961,          /* master -> replica, oneway: committed batches */
    REPL_RC_ACK = 962,              /* replica -> master, oneway: durable up to appliedSeq */
    REPL_RC_HEARTBEAT = 963,        /* master -> replica, oneway: alive, at masterSeq */
    REPL_RC_CHECKPOINT_BEGIN = 964, /* replica -> master: make a checkpoint, list its files */
    REPL_RC_CHECKPOINT_READ = 965,  /* replica -> master: bytes of one checkpoint file */
    REPL_RC_CHECKPOINT_END = 966,   /* replica -> master: done with the checkpoint */
    REPL_RC_CHECKPOINT_NEEDED = 967 /* master -> replica, oneway: the log moved past you */
};

/* Response codes of our own (private, beside RocketMQ's 0..). */
enum {
    REPL_RS_CHECKPOINT_NEEDED = 960, /* HELLO: the retained log does not reach appliedSeq + 1 */
    REPL_RS_DIVERGED = 961,          /* HELLO: the replica holds more than the master */
    REPL_RS_STALE_EPOCH = 962,       /* HELLO: the replica knows a newer epoch than the master */
};

/* Header fields (extFields). */
#define REPL_F_EPOCH "epoch"
#define REPL_F_APPLIED_SEQ "appliedSeq"
#define REPL_F_LOG_POSITION "logPosition"
#define REPL_F_REPLICA_ADDR "replicaAddr"
#define REPL_F_MASTER_SEQ "masterSeq"
#define REPL_F_CONFIRMED_SEQ "confirmedSeq"
#define REPL_F_CHECKPOINT_ID "checkpointId"
#define REPL_F_CHECKPOINT_SEQ "checkpointSeq"
#define REPL_F_FILE "file"
#define REPL_F_OFFSET "offset"
#define REPL_F_LENGTH "length"
#define REPL_F_CRC "crc"
#define REPL_F_REBASE_SEQ "rebaseSeq"
#define REPL_F_HISTORY "epochHistory"

/* Frames a replica accepts: one batch can be as large as a writer group. */
#define REPL_MAX_FRAME (256u << 20)
/* A BATCHES frame is cut after this many bytes of batches (one larger batch goes alone). */
#define REPL_FRAME_BYTES (1u << 20)
/* At most this many shipped batches wait for an ACK, whatever their bytes. */
#define REPL_WINDOW_BATCHES 4096u
/* A checkpoint file is read in chunks of this size. */
#define REPL_CHUNK_BYTES (4u << 20)

/* A sequence, position or id header field: 0 when absent or not a positive number. */
uint64_t repl__get_u64(const proto_cmd *cmd, const char *key);
void repl__set_u64(proto_cmd *cmd, const char *key, uint64_t v);

/* ---- Batches (the body of REPL_RC_BATCHES) ------------------------------ */

/*
 * One shipped batch: u64 epoch | u64 seq | u32 count | u32 len | len bytes
 * of the WriteBatch, big-endian, repeated to the end of the body.
 */
#define REPL_BATCH_HEAD 24

typedef struct repl_batch {
    uint64_t epoch;
    engine_log_batch b; /* data points into the frame */
} repl_batch;

void repl__batch_put(proto_buf *out, uint64_t epoch, const engine_log_batch *b);
/*
 * The next batch of a body at *pos: 1 and *out (pointing into body), 0 at
 * the end, LSMQ_ECORRUPT when the bytes do not hold a whole batch.
 */
int repl__batch_next(const uint8_t *body, size_t len, size_t *pos, repl_batch *out);

/* ---- Checkpoint file lists (the body of a CHECKPOINT_BEGIN response) ---- */

/* One line per file: "<size> <name>\n"; names are plain file names. */
typedef struct repl_file {
    char name[256];
    uint64_t size;
} repl_file;

/* Every regular file of dir, as a list body. 0 or -errno. */
int repl__list_files(const char *dir, proto_buf *out);
/* The files of a list body: *out malloc'ed (free()). 0 or LSMQ_ECORRUPT. */
int repl__parse_files(const uint8_t *body, size_t len, repl_file **out, size_t *n);
/* A file name a peer may name: no '/', not "." or "..", not empty, fits. */
bool repl__safe_name(const char *name);

/* ---- Epoch histories (HELLO's rebase answer) ----------------------------- */

/* Room for ENGINE_EPOCHS_KEPT entries of four u64 in decimal. */
#define REPL_HISTORY_TEXT_MAX (ENGINE_EPOCHS_KEPT * 84)

/* "epoch:start:prevEpoch:prevEnd,..." oldest first; out holds REPL_HISTORY_TEXT_MAX. */
void repl__history_format(char *out, size_t cap, const engine_epoch_entry *h, size_t n);
/* The entries of such a text (h has room for ENGINE_EPOCHS_KEPT): 0 or LSMQ_ECORRUPT. */
int repl__history_parse(const char *text, engine_epoch_entry *h, size_t *n);

/* ---- Files -------------------------------------------------------------- */

/* Remove path and everything under it; a missing path is fine. 0 or -errno. */
int repl__remove_tree(const char *path);
/* fsync a directory (after creating, renaming or removing in it). 0 or -errno. */
int repl__sync_dir(const char *path);
/* Read len bytes at offset, fewer only at the end of the file (*got). 0 or -errno. */
int repl__pread_full(int fd, void *buf, size_t len, uint64_t offset, size_t *got);
/* CRC-32 (zlib's) of a whole file. 0 or -errno. */
int repl__file_crc(const char *path, uint32_t *crc);
/* CRC-32 of len (< 4 GiB) bytes, continuing from crc (0 to start). */
uint32_t repl__crc(uint32_t crc, const void *p, size_t len);
/* The CRC-32 of A followed by B, from theirs and B's length. */
uint32_t repl__crc_combine(uint32_t a, uint32_t b, uint64_t b_len);

/* ---- Test seams ---------------------------------------------------------- */

/*
 * Replaced by tests to damage what arrives: runs on every checkpoint chunk
 * the replica received, before it is checked. NULL in production.
 */
extern void (*repl__test_chunk_hook)(const char *file, uint64_t offset, uint8_t *data,
                                     size_t len);

#endif
