/*
 * mqadmin internals: the command table, option values and the output
 * helpers shared by the command families (mqadmin_topic.c,
 * mqadmin_cluster.c, mqadmin_consumer.c, mqadmin_message.c,
 * mqadmin_print.c, mqadmin_offset.c, mqadmin_ha.c, mqadmin_controller.c; messages are shown by
 * mqadmin_msgfmt.c). mqadmin.c holds main(), option parsing and help.
 *
 * A command declares its options the way upstream's SubCommand does
 * (letter, long name, argument or flag, required, description); mqadmin.c
 * adds the common -n/--namesrvAddr, -h/--help and --json, parses argv and
 * calls the command's run function with the values.
 */
#ifndef LSMQ_TOOLS_MQADMIN_H
#define LSMQ_TOOLS_MQADMIN_H

#include <stdint.h>

#include <jansson.h>

#include "lsmq_admin.h"

/* Exit statuses. */
enum mqa_status {
    MQA_OK = 0,
    MQA_FAIL = 1,  /* a server refused, or a transport error */
    MQA_USAGE = 2, /* bad options */
};

/* How an option is required. */
enum mqa_need {
    MQA_OPTIONAL = 0,
    MQA_REQUIRED = 1,
    MQA_ONE_OF = 2, /* exactly one option of the command marked MQA_ONE_OF */
};

typedef struct mqa_opt {
    char letter;           /* the short option; 0 ends a table */
    const char *long_name; /* upstream's long name */
    int has_arg;
    int need;              /* enum mqa_need */
    const char *desc;
} mqa_opt;

typedef struct mqa_ctx {
    const char *cmd;      /* the command's name, for messages */
    const char *namesrv;  /* -n, else $NAMESRV_ADDR, else 127.0.0.1:9876 */
    int json;             /* --json */
    int timeout_ms;
    const char *val[128]; /* option values by letter; "" for a flag given */
    lsmq_admin *admin;    /* every admin call goes through it; it keeps the last error */
} mqa_ctx;

typedef struct mqa_command {
    const char *name;
    const char *desc;
    const mqa_opt *opts;
    int (*run)(mqa_ctx *ctx); /* returns an enum mqa_status */
} mqa_command;

/* The command families; each table ends with a NULL name. */
extern const mqa_command mqa_topic_commands[];
extern const mqa_command mqa_cluster_commands[];
extern const mqa_command mqa_consumer_commands[];
extern const mqa_command mqa_message_commands[];  /* mqadmin_message.c, mqadmin_print.c */
extern const mqa_command mqa_print_commands[];
extern const mqa_command mqa_offset_commands[];   /* mqadmin_offset.c */
extern const mqa_command mqa_ha_commands[];       /* mqadmin_ha.c */
extern const mqa_command mqa_controller_commands[]; /* mqadmin_controller.c */
extern const mqa_command mqa_epoch_commands[];      /* mqadmin_epoch.c */

/*
 * The master addresses of a cluster's brokers. On success *ci owns the
 * strings (free it, and free() the *addrs array, after use); MQA_FAIL
 * after printing why (name server unreachable, no such cluster).
 */
int mqa_cluster_masters(const mqa_ctx *ctx, const char *cluster, lsmq_admin_cluster_info **ci,
                        const char ***addrs, size_t *n);

/* The master addresses of a topic's brokers, from its route (same rules). */
int mqa_route_masters(const mqa_ctx *ctx, const char *topic, lsmq_admin_route **route,
                      const char ***addrs, size_t *n);

/* The value of option `letter` (trimmed), or NULL when not given. */
const char *mqa_arg(const mqa_ctx *ctx, char letter);

/*
 * Typed option values: 0 and *out (dflt when the option is absent), or
 * MQA_USAGE after printing why the value is bad.
 */
int mqa_arg_int(const mqa_ctx *ctx, char letter, int dflt, int *out);
int mqa_arg_bool(const mqa_ctx *ctx, char letter, int dflt, int *out);
int mqa_arg_i64(const mqa_ctx *ctx, char letter, int64_t dflt, int64_t *out);
/*
 * A point in time as RocketMQ's tools accept it: milliseconds since the
 * epoch, "yyyy-MM-dd#HH:mm:ss:SSS" in local time, or (with allow_now)
 * "now".
 */
int mqa_arg_time(const mqa_ctx *ctx, char letter, int allow_now, int64_t dflt, int64_t *out);

/*
 * Run once(ctx), and with -i SECONDS again every SECONDS until it fails or
 * the tool is interrupted (clusterList, haStatus). Returns its status.
 */
int mqa_repeat(mqa_ctx *ctx, int (*once)(mqa_ctx *ctx));

/* ---- Messages (mqadmin_msgfmt.c) ---- */

/* The detail block of upstream's queryMsgById ("Topic:", "Keys:", ...), body included. */
void mqa_print_message(const lsmq_message *m, int with_offset_id);
/* printMsg's line: "MSGID: <id> MessageExt [...] BODY: <body>". */
void mqa_print_message_line(const lsmq_message *m, int print_body);
/* The message as a JSON object (new reference). */
json_t *mqa_message_json(const lsmq_message *m, int with_body);
/* KEYS has `key` among its words. */
int mqa_keys_contain(const lsmq_message *m, const char *key);
/* The message's tag matches a "TagA || TagB" expression ("*" matches all). */
int mqa_tags_match(const lsmq_message *m, const char *expr);

/* Print "mqadmin CMD: <message>" and the command's usage line; MQA_USAGE. */
int mqa_usage_error(const mqa_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print "mqadmin CMD: <the admin handle's last error>" on stderr; MQA_FAIL. */
int mqa_fail(const mqa_ctx *ctx);

/* Print "mqadmin CMD: <message>" on stderr; MQA_FAIL. */
int mqa_failf(const mqa_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print "mqadmin CMD: warning: <the admin handle's last error>" on stderr. */
void mqa_warn(const mqa_ctx *ctx);

/* Print v as one line of compact JSON (keys sorted) and release it. */
void mqa_print_json(json_t *v);

/* A C string as a JSON string (jansson refuses invalid UTF-8: then ""). */
json_t *mqa_json_str(const char *s);

/* An array of strings as a JSON array. */
json_t *mqa_json_strings(char *const *v, size_t n);

/* MQVersion ordinal -> "V4_9_8" (MQVersion.getVersionDesc), written into buf. */
const char *mqa_version_desc(int ordinal, char *buf, size_t cap);

/* Local time "yyyy-MM-dd HH:mm:ss" (with_ms: ",SSS" appended). */
const char *mqa_time(int64_t ms, int with_ms, char *buf, size_t cap);

/* Java's Double.toString for the values tools print ("0.0", "12.5"). */
const char *mqa_double(double v, char *buf, size_t cap);

/* "%RETRY%" + group into buf. */
const char *mqa_retry_topic(const char *group, char *buf, size_t cap);

#define MQA_RETRY_PREFIX "%RETRY%"
#define MQA_DLQ_PREFIX "%DLQ%"

#endif
