/*
 * mqdump internals: options, the output buffer, the JSON form of a
 * message and the commands. mqdump.c holds main() and option parsing;
 * mqdump_out.c the output and progress bar; mqdump_json.c the message as
 * JSON (and base64); mqdump_filter.c time parsing and the message filters;
 * mqdump_dump.c, mqdump_get.c, mqdump_info.c and mqdump_timers.c the commands.
 */
#ifndef LSMQ_TOOLS_MQDUMP_H
#define LSMQ_TOOLS_MQDUMP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "index.h"
#include "record.h"

/* Exit statuses. */
enum mqd_status {
    MQD_OK = 0,
    MQD_FAIL = 1,  /* the store could not be read, or nothing was found */
    MQD_USAGE = 2, /* bad command or options */
};

#define MQD_MAX_PROPS 16
#define MQD_MAX_TAGS 16

typedef enum mqd_format { MQD_FORMAT_JSONL = 0, MQD_FORMAT_RAW = 1 } mqd_format;

/* Everything the command line said. Absent filters have has_* == 0. */
typedef struct mqd_opts {
    const char *command;
    const char *store_path;
    const char *arg;          /* TOPIC of `queues`, ID of `get` */
    const char *topic;
    int has_queue;
    uint32_t queue_id;
    uint64_t from_offset;     /* inclusive; 0 when absent */
    int has_to_offset;
    uint64_t to_offset;       /* exclusive */
    int has_begin, has_end;
    int64_t begin_ms, end_ms; /* inclusive */
    const char *tags[MQD_MAX_TAGS]; /* any of them */
    size_t ntags;
    const char *key;          /* a word of KEYS */
    const char *prop_names[MQD_MAX_PROPS], *prop_values[MQD_MAX_PROPS]; /* all of them */
    size_t nprops;
    mqd_format format;
    int progress;             /* -1 auto (stderr is a terminal), 0 never, 1 always */
    int scan;                 /* stats: exact counts by reading every message */
    int has_due_before;       /* timers: due time < due_before_ms */
    int64_t due_before_ms;
} mqd_opts;

/* Set by SIGINT/SIGTERM: long loops stop early and clean up. */
extern volatile sig_atomic_t mqd_interrupted;

/* ---- mqdump_out.c: buffered standard output ---- */

/* Append bytes to stdout's buffer; written out in big chunks. */
void mqd_out(const void *p, size_t len);
void mqd_out_str(const char *s);
void mqd_out_char(char c);
void mqd_out_u64(uint64_t v);
void mqd_out_i64(int64_t v);
/* Write what is buffered. 0, or -1 once output failed (a closed pipe, a full disk). */
int mqd_out_flush(void);
/* Nonzero once a write failed; commands stop producing. */
int mqd_out_failed(void);

/* Progress on stderr; every call a no-op unless enabled. total may be 0 (unknown). */
void mqd_progress_start(int enabled, uint64_t total_msgs);
void mqd_progress_add(uint64_t msgs, uint64_t bytes);
void mqd_progress_end(void);

/* ---- mqdump_json.c ---- */

/* A JSON string literal for bytes; invalid UTF-8 becomes U+FFFD. */
void mqd_json_str(const char *s, size_t len);
/* "name": of an object's member (first: no comma before it). */
void mqd_json_field(const char *name, int first);
/* A member whose value is a property's, as a JSON string, or null when absent. */
void mqd_json_prop_field(const proto_record *r, const char *json_name, const char *prop);
/* "ip:port" of a host into buf (at least 64 bytes). */
const char *mqd_host_str(const proto_host *h, char *buf, size_t cap);
/* One message as one JSON object line. body is the (inflated) body to show. */
void mqd_json_message(const proto_record *r, const uint8_t *body, size_t body_len);

/* ---- mqdump_filter.c ---- */

/* Parse ms since the epoch, or yyyy-MM-dd#HH:mm:ss:SSS (local time). 0 or -1. */
int mqd_parse_time(const char *s, int64_t *ms);
/* Nonzero when the record passes the tag, key and property filters. */
int mqd_match_props(const mqd_opts *o, const proto_record *r);
/*
 * The body to show: zlib bodies the client compressed are inflated, as a
 * consumer sees them. *owned is malloc'ed (free it) when inflated, else NULL.
 */
void mqd_message_body(const proto_record *r, const uint8_t **body, size_t *len,
                      uint8_t **owned);

/* ---- The store the commands read ---- */

/* A read-only engine, one view of it, and its topics sorted by name. */
typedef struct mqd_store {
    engine *e;
    engine_view *v;
    engine_topic_config *topics;
    size_t ntopics;
} mqd_store;

/* A topic of the store by name or by id; NULL when absent. */
const engine_topic_config *mqd_topic(const mqd_store *s, const char *name);
const engine_topic_config *mqd_topic_by_id(const mqd_store *s, uint32_t topic_id);

/* ---- Commands; each returns an enum mqd_status ---- */

int mqd_cmd_topics(const mqd_store *s, const mqd_opts *o);
int mqd_cmd_queues(const mqd_store *s, const mqd_opts *o);
int mqd_cmd_stats(const mqd_store *s, const mqd_opts *o);
int mqd_cmd_dump(const mqd_store *s, const mqd_opts *o);
int mqd_cmd_get(const mqd_store *s, const mqd_opts *o);
int mqd_cmd_timers(const mqd_store *s, const mqd_opts *o);

/* Print "mqdump: <message>" on stderr. */
void mqd_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
