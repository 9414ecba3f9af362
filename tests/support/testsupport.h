/* Helpers shared by the tests: temporary store directories and engines. */
#ifndef LSMQ_TESTSUPPORT_H
#define LSMQ_TESTSUPPORT_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "index.h"

/* A fresh directory under $TMPDIR (or /tmp); malloc'ed path. */
char *test_tmpdir(const char *tag);

/* rm -rf path (best effort) and free it. */
void test_rmdir_free(char *path);

/*
 * Bytes of the regular files under dir, down to depth levels of
 * subdirectories; 0 for a directory that is not there (or not yet).
 */
uint64_t test_dir_bytes(const char *dir, int depth);

/* engine_config with defaults, the given path and a 127.0.0.1:10911 store host. */
void test_engine_config(engine_config *c, const char *path);

/* Open an engine with c's extensions and then the indexes; fails the test on error. */
engine *test_engine_open(const engine_config *c);

/* Create a topic with `queues` read and write queues; fails the test on error. */
void test_topic_create(engine *e, const char *topic, uint32_t queues);

/* An engine_msg over body and props (NUL-terminated strings). */
engine_msg test_msg(const char *body, const char *props);

/*
 * index/'s queries, each under a view of its own opened on e (as the
 * broker's handlers make them); the view failing to open fails the test.
 */
int test_locate(engine *e, uint64_t log_position, uint32_t *topic_id, uint32_t *queue_id,
                uint64_t *queue_offset);
int test_get_by_position(engine *e, uint64_t log_position, uint8_t **rec, size_t *len);
int test_search_time(engine *e, uint32_t topic_id, uint32_t queue_id, int64_t ts_ms,
                     index_time_boundary boundary, uint64_t *offset);
int test_query_key(engine *e, uint32_t topic_id, const char *key, size_t key_len,
                   unsigned kinds, int64_t begin_ms, int64_t end_ms, size_t max_hits,
                   index_key_hit **hits, size_t *n);

/*
 * Check every message against its idx_id, idx_time and idx_key entries and
 * every entry against its message, under one view. Returns the number of
 * problems; the first max_report are printed on stderr.
 */
size_t test_index_consistency(engine *e, size_t max_report);

/*
 * Compare two stores family by family and key by key, each under a view
 * of its own (a replica's meta "A" aside). Returns the number of
 * differences; the first max_report are printed on stderr.
 */
size_t test_store_diff(engine *a, engine *b, size_t max_report);

/*
 * test_store_diff of the stores under two storePathRootDirs, each opened
 * read-only (a RocksDB secondary), so their brokers may be running.
 */
size_t test_store_dir_diff(const char *dir_a, const char *dir_b, size_t max_report);

/* Completions of engine_apply: pass test_applied_cb and the struct as ctx. */
typedef struct test_applied {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t done;
    size_t failed;
    int last_error; /* of the last that failed, 0 if none did */
} test_applied;
void test_applied_init(test_applied *w);
void test_applied_destroy(test_applied *w);
void test_applied_cb(void *ctx, int status);
/* Wait until n have completed; the last error (0 when none failed). */
int test_applied_wait(test_applied *w, size_t n);

/* engine_apply one batch and wait until it is durable: its outcome. */
int test_apply_wait(engine *e, const engine_log_batch *b);

#endif
