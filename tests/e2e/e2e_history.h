/*
 * The history of a failover test and its checker: what producers had
 * acknowledged (SEND_OK, with the queue and offset the broker named), what
 * failed, what a consumer received; then, once the load has stopped and
 * the replicas have caught up, each broker's copy of the topic read back
 * over PULL_MESSAGE from its own port (no routing) and compared with the
 * history:
 *
 *  - lost:      an acknowledged body missing on a broker, or stored there
 *               at another (queue, offset) than the one acknowledged;
 *  - conflicts: a (queue, offset) holding different bodies on two brokers;
 *  - consumed:  acknowledged bodies the consumer received (at least once);
 *    duplicates: deliveries beyond the first of a body.
 *
 * Bodies are NUL-free strings, unique per send (e.g. "p<thread>-<n>").
 * Times are proto_mono_ms(). The history is thread-safe (any thread);
 * functions abort on allocation failure and do not assert, so tests of any
 * shape (kills, switch-overs, partitions) can use it. Problems found by the
 * checker are described on stderr, the first few of each kind.
 */
#ifndef LSMQ_TEST_E2E_HISTORY_H
#define LSMQ_TEST_E2E_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct e2e_history e2e_history;

/* An empty history; free it with e2e_history_destroy. */
e2e_history *e2e_history_create(void);
void e2e_history_destroy(e2e_history *h);

/*
 * A send acknowledged SEND_OK: body (copied), the queue and offset of the
 * answer, and its offset message id, whose store host names the broker
 * that took it (NULL or undecodable: unknown). Stamped with the time now.
 */
void e2e_history_acked(e2e_history *h, const char *body, int queue, int64_t offset,
                       const char *offset_msg_id);

/* A send that failed, or that was stored without SEND_OK (a flush or slave timeout). */
void e2e_history_failed(e2e_history *h);

/* The consumer received body (len bytes; need not be NUL-terminated). */
void e2e_history_consumed(e2e_history *h, const void *body, size_t len);

long e2e_history_acked_count(e2e_history *h);
long e2e_history_failed_count(e2e_history *h);

/* Whether the consumer has received every acknowledged body. */
bool e2e_history_all_consumed(e2e_history *h);

/*
 * The time of the first SEND_OK stamped at or after since_ms taken by the
 * broker listening on port (port > 0), by any broker but -port (port < 0),
 * or by any broker (port 0); -1 when there is none yet.
 */
int64_t e2e_history_first_ack(e2e_history *h, int64_t since_ms, int port);

/*
 * The longest time between two consecutive SEND_OKs within [from_ms,
 * to_ms], the window's ends counting as SEND_OKs (no SEND_OK at all: the
 * whole window).
 */
int64_t e2e_history_max_gap_ms(e2e_history *h, int64_t from_ms, int64_t to_ms);

/* What e2e_history_check found. */
typedef struct e2e_history_report {
    long acknowledged; /* SEND_OKs in the history */
    long failed;       /* sends without SEND_OK */
    long lost;         /* acknowledged bodies not at their place on every broker */
    long conflicts;    /* (queue, offset)s with different bodies on two brokers */
    long consumed;     /* acknowledged bodies the consumer received */
    long duplicates;   /* deliveries beyond the first of a body */
} e2e_history_report;

/*
 * Read queues 0..queues-1 of topic from each of the n brokers listening on
 * ports[] (every message up to each queue's max offset) and compare them
 * with the history into *out. Returns 0, or -1 when a broker could not be
 * read to its end (*out then holds what was found so far).
 */
int e2e_history_check(e2e_history *h, const char *topic, int queues, const int *ports, int n,
                      e2e_history_report *out);

#endif
