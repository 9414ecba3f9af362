/*
 * transport: the sockets around protocol/'s connection core (conn.h), the
 * way hiredis's adapters/libev.h and its blocking context sit around
 * async.c and read.c. protocol/ stays a pure codec; this small library is
 * the one place that connects, reads, writes and waits, so liblsmq, the
 * admin transport, the broker's registration and the servers' accepted
 * connections all do it the same way.
 *
 *   - The libev adapter (transport_ev) drives one proto_conn on a loop: read
 *     and write watchers, a non-blocking connect with a timeout (to each
 *     address a host name resolves to, in turn), a timer for request
 *     deadlines, and, through a transport_flusher shared by the loop's
 *     connections, the write of everything one loop iteration queued just
 *     before the loop sleeps (Redis's beforeSleep).
 *   - The blocking adapter (transport_sync) runs one proto_conn on a socket
 *     with poll: connect with a deadline, call = send + wait for the
 *     matching response while the peer's own requests are answered (by a
 *     request callback on the connection) or skipped.
 * A connection may move from a loop to blocking I/O (transport_ev_detach,
 * transport_sync_adopt), as the broker does at shutdown when its loop no
 * longer runs.
 *
 * Conventions:
 *   - Addresses are "host:port" ("[v6]:port" for IPv6 literals).
 *   - Functions return 0 or a negative code: LSMQ_E* or -errno. Where a
 *     `why` buffer is passed, a failure leaves a sentence there.
 *   - Deadlines are proto_mono_ms() values (protocol/clock.h).
 *   - transport_ev and transport_flusher belong to their loop's thread;
 *     transport_sync to one thread at a time.
 *   - Sockets are non-blocking, close-on-exec, TCP_NODELAY; writes never
 *     raise SIGPIPE (MSG_NOSIGNAL).
 */
#ifndef LSMQ_TRANSPORT_H
#define LSMQ_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "conn.h"

struct addrinfo;

/* ------------------------------------------------------------------ */
/* Sockets                                                             */
/* ------------------------------------------------------------------ */

/* Split an address into host (brackets removed) and port. 0 or LSMQ_EINVAL. */
int transport_split_addr(const char *addr, char *host, size_t host_cap, char *port,
                        size_t port_cap);

/*
 * Connect to addr, trying each address it resolves to, waiting at most
 * until deadline_ms. *fd is connected (and non-blocking). 0, or
 * LSMQ_EINVAL (malformed address), -EHOSTUNREACH (unresolvable),
 * -ETIMEDOUT, -errno (the last address's failure).
 */
int transport_connect_wait(const char *addr, int64_t deadline_ms, int *fd, char *why,
                          size_t why_len);

/* ------------------------------------------------------------------ */
/* libev adapter                                                       */
/* ------------------------------------------------------------------ */

typedef struct transport_ev transport_ev;

/*
 * The write of queued output just before a loop sleeps, for every
 * connection of that loop: one per loop, created before its connections.
 */
typedef struct transport_flusher transport_flusher;
transport_flusher *transport_flusher_create(struct ev_loop *loop);
/* After every connection of the flusher was closed or detached. NULL is fine. */
void transport_flusher_destroy(transport_flusher *f);

/*
 * The connection ended: err 0 for an orderly end (the peer closed, or a
 * CLOSING connection wrote its last byte), else what failed (-errno, a
 * frame the core refused: LSMQ_ECORRUPT / LSMQ_ETOOBIG, -ETIMEDOUT for a
 * connect that took too long). why says it in words, valid during the
 * call. The watchers are stopped already; the owner then fails the
 * connection's requests (proto_conn_fail_all) and closes the adapter. It
 * is the last thing the adapter does in that callback, so the owner may
 * free the memory holding the adapter right there.
 */
typedef void transport_ev_end_cb(transport_ev *a, int err, const char *why, void *arg);

/*
 * One connection on a loop. Embedded in its owner's connection object
 * (STYLE.md: expose a struct only when callers embed it); the fields are
 * the adapter's own.
 */
struct transport_ev {
    struct ev_loop *loop;
    proto_conn *conn;
    transport_flusher *flusher;
    int fd;                        /* -1 once closed or detached */
    ev_io rio, wio;
    ev_timer timer;                /* the earlier of connect and request deadlines */
    int64_t connect_deadline_ms;   /* INT64_MAX when not connecting */
    int64_t request_deadline_ms;   /* from the core's deadline hook */
    ev_tstamp last_read;           /* ev_now of the last bytes read */
    struct addrinfo *addrs;        /* connecting: what the address resolved to */
    const struct addrinfo *addr_next; /* tried when the connect under way fails */
    struct transport_ev *flush_prev, *flush_next;
    int flush_queued;              /* on the flusher's list */
    transport_ev_end_cb *end;
    void *arg;
};

/*
 * Drive conn on loop through fd (non-blocking; connected, or connecting
 * when conn is CONNECTING, which then fails after connect_timeout_ms).
 * Installs conn's hooks. The adapter owns fd from here.
 */
void transport_ev_attach(transport_ev *a, proto_conn *conn, struct ev_loop *loop,
                        transport_flusher *f, int fd, int connect_timeout_ms,
                        transport_ev_end_cb *end, void *arg);
/*
 * Connect conn (CONNECTING) to addr without waiting and drive it on loop,
 * as transport_ev_attach does. The addresses addr resolves to are tried in
 * turn, each after the one before failed, until one connects or
 * connect_timeout_ms has passed since this call. Returns 0, or (nothing
 * attached) LSMQ_EINVAL (malformed address), -EHOSTUNREACH (unresolvable),
 * -errno, with why set.
 */
int transport_ev_connect(transport_ev *a, proto_conn *conn, struct ev_loop *loop,
                         transport_flusher *f, const char *addr, int connect_timeout_ms,
                         transport_ev_end_cb *end, void *arg, char *why, size_t why_len);
/*
 * Stop every watcher and close the fd; conn is left to its owner (its hooks
 * are removed). Safe inside the adapter's and the core's callbacks: the
 * struct stays readable until its owner frees it. Again: no-op.
 */
void transport_ev_close(transport_ev *a);
/*
 * A client connection given up: close it, fail what waits on *conn with
 * LSMQ_ECLOSED, free it and set *conn to NULL (NULL is fine). Not from
 * inside the connection's own callbacks.
 */
void transport_ev_discard(transport_ev *a, proto_conn **conn);
/* Stop every watcher and hand the fd back instead of closing it (-1 if closed). */
int transport_ev_detach(transport_ev *a);
/* Write what is queued now, without waiting for the socket (shutdown). */
void transport_ev_flush_now(transport_ev *a);
/* ev_now() of the last bytes read (of the attach when none): for idle sweeps. */
ev_tstamp transport_ev_last_read(const transport_ev *a);

/* ------------------------------------------------------------------ */
/* Blocking adapter                                                    */
/* ------------------------------------------------------------------ */

typedef struct transport_sync transport_sync;

/*
 * Connect to addr by deadline_ms (see transport_connect_wait) and make an
 * OPEN connection named addr. *out: close with transport_sync_close.
 */
int transport_sync_connect(const char *addr, int64_t deadline_ms, transport_sync **out,
                          char *why, size_t why_len);
/* Take over conn and its connected socket fd (from transport_ev_detach). */
transport_sync *transport_sync_adopt(proto_conn *conn, int fd);
/* Fail what still waits (LSMQ_ECLOSED), close the socket, free the connection. */
void transport_sync_close(transport_sync *s);

/* The connection, e.g. to set a request callback that answers the peer. */
proto_conn *transport_sync_conn(transport_sync *s);
/* What the last failure was; valid until the next call on s. */
const char *transport_sync_why(const transport_sync *s);

/*
 * Send req (its opaque as it is) and wait until its response or
 * deadline_ms. Requests the peer sends meanwhile go to the connection's
 * request callback (none: skipped). *reply: free with proto_reply_free.
 * Returns 0, or -ETIMEDOUT, -errno, LSMQ_ECORRUPT / LSMQ_ETOOBIG (the peer
 * sent garbage), LSMQ_ENOMEM, LSMQ_ECLOSED; the connection is unusable
 * after any failure.
 */
int transport_sync_call(transport_sync *s, const proto_cmd *req, const void *body,
                       size_t body_len, int64_t deadline_ms, proto_reply **reply);
/* Write everything queued on the connection, waiting at most until deadline_ms. */
int transport_sync_flush(transport_sync *s, int64_t deadline_ms);

#endif
