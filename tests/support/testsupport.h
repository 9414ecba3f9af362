/* Helpers shared by the tests: temporary store directories and engines. */
#ifndef LSMQ_TESTSUPPORT_H
#define LSMQ_TESTSUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "engine.h"
#include "index.h"

/* A fresh directory under $TMPDIR (or /tmp); malloc'ed path. */
char *test_tmpdir(const char *tag);

/* rm -rf path (best effort) and free it. */
void test_rmdir_free(char *path);

/* engine_config with defaults, the given path and a 127.0.0.1:10911 store host. */
void test_engine_config(engine_config *c, const char *path);

/* Open an engine with the index hooks attached; fails the test on error. */
engine *test_engine_open(const engine_config *c);

/* Create a topic with `queues` read and write queues; fails the test on error. */
void test_topic_create(engine *e, const char *topic, uint32_t queues);

/* An engine_msg over body and props (NUL-terminated strings). */
engine_msg test_msg(const char *body, const char *props);

/*
 * Check every message against its idx_id, idx_time and idx_key entries and
 * every entry against its message, under one snapshot. Returns the number
 * of problems; the first max_report are printed on stderr.
 */
size_t test_index_consistency(engine *e, size_t max_report);

#endif
