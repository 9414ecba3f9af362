/*
 * One remoting connection with no I/O (the way hiredis's read.h and async.h
 * keep sockets out of the protocol): the bytes that come in are cut into
 * frames and decoded; responses are matched to our requests by opaque
 * (REMOTING.md §1.6) and requests the peer starts go to a callback; what
 * goes out waits in an output queue the owner writes from. Both ends use
 * it: the broker and name server for accepted connections, liblsmq and the
 * broker's registration for the connections they open.
 *
 * The owner does the I/O, usually through an adapter (transport/transport.h:
 * libev or blocking): it reads into proto_conn_input_space and reports the
 * bytes with proto_conn_input_done; it writes what proto_conn_output_iov
 * shows and reports it with proto_conn_output_done; it passes its
 * monotonic clock to proto_conn_expire. The connection asks for readiness
 * through hooks (hiredis's addRead/delRead/addWrite/scheduleTimer).
 *
 * States (enum proto_conn_state), one at a time:
 *   CONNECTING  the owner's connect has not finished: output waits, no input
 *   OPEN        frames in, frames out
 *   PAUSED      more than max_output bytes wait to go out: no input is read
 *               or delivered until the queue drains below half of that, so
 *               a peer that does not read cannot make us buffer without end
 *   CLOSING     close once the output is written: no input, nothing new out
 *   CLOSED      dead: every request waiting was failed, nothing goes in or out
 *
 * Conventions:
 *   - Opaque type; create/free. Byte ranges are pointer + length.
 *   - Functions return 0 or a negative LSMQ_E* code; why input was refused
 *     is in proto_conn_error.
 *   - Callbacks (responses, peer requests, failures) run from
 *     proto_conn_input_done and proto_conn_feed, proto_conn_output_done
 *     (input held back while PAUSED), proto_conn_expire, proto_conn_fail_all
 *     and proto_conn_expect (an older request on the same opaque). They
 *     may queue output, send requests and change the state of this
 *     connection, but must not free it: the owner frees it once the call
 *     that reported its end has returned.
 *   - Not thread-safe: one thread at a time (the owner's loop thread).
 */
#ifndef LSMQ_PROTO_CONN_H
#define LSMQ_PROTO_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "remoting.h"

typedef struct proto_conn proto_conn;

enum proto_conn_state {
    PROTO_CONN_CONNECTING,
    PROTO_CONN_OPEN,
    PROTO_CONN_PAUSED,
    PROTO_CONN_CLOSING,
    PROTO_CONN_CLOSED,
};

/* A received response: the command and the frame its body points into. */
typedef struct proto_reply {
    proto_cmd *cmd;
    uint8_t *frame;
} proto_reply;

/* Free a reply and its frame (NULL is fine). */
void proto_reply_free(proto_reply *r);

/*
 * Completion of a request: rc 0 and the reply, which the callee owns (free
 * with proto_reply_free); or rc < 0 (-ETIMEDOUT, -ECONNRESET, LSMQ_ECLOSED,
 * ...), reply NULL and why a text saying what happened, valid during the
 * call. Runs exactly once per request that was accepted.
 */
typedef void proto_reply_cb(int rc, proto_reply *reply, const char *why, void *arg);

/*
 * A request the peer started. req and its body (a view into the input
 * buffer, no copy) are valid during the call only; answer it with
 * proto_conn_reply, now or later with its opaque.
 */
typedef void proto_request_cb(proto_conn *c, proto_cmd *req, void *arg);

/* How the connection asks its owner for readiness; any hook may be NULL. */
typedef struct proto_conn_hooks {
    void *data;
    /* Start (on != 0) or stop reading. */
    void (*want_read)(void *data, int on);
    /* Output was queued on an empty queue: write it before the loop waits. */
    void (*want_write)(void *data);
    /* Call proto_conn_expire at at_ms (monotonic) or later; INT64_MAX: never. */
    void (*deadline)(void *data, int64_t at_ms);
} proto_conn_hooks;

typedef struct proto_conn_options {
    const char *name;     /* the peer, for texts ("10.0.0.5:9876"); copied */
    size_t max_frame;     /* larger frames kill the connection; 0: PROTO_FRAME_MAX_DEFAULT */
    size_t max_output;    /* pause input past this many unsent bytes; 0: never */
    int connecting;       /* start CONNECTING (else OPEN) */
} proto_conn_options;

/* A new connection. Aborts when out of memory. */
proto_conn *proto_conn_create(const proto_conn_options *opts);
/* Free it: fails nothing (call proto_conn_fail_all first), calls no hook. NULL is fine. */
void proto_conn_free(proto_conn *c);

void proto_conn_set_hooks(proto_conn *c, const proto_conn_hooks *hooks);
void proto_conn_set_request_cb(proto_conn *c, proto_request_cb *cb, void *arg);

enum proto_conn_state proto_conn_state(const proto_conn *c);
/* The name given at creation; valid while c lives. */
const char *proto_conn_name(const proto_conn *c);
/* Why the last input was refused ("oversized frame ..."); valid until the next call. */
const char *proto_conn_error(const proto_conn *c);

/* ---- State ---- */

/* The connect finished: CONNECTING -> OPEN; reading starts, queued output goes. */
void proto_conn_connected(proto_conn *c);
/* Close once the output is written: -> CLOSING (the owner closes when it drained). */
void proto_conn_close_after_write(proto_conn *c);
/*
 * The connection is dead: -> CLOSED, and every request still waiting fails
 * with err (why NULL: "connection to NAME closed: <err>"). Again: no-op.
 */
void proto_conn_fail_all(proto_conn *c, int err, const char *why);

/* ---- Input ---- */

/*
 * Where to read the next bytes: *room bytes at the returned pointer (at
 * least a 64 KiB chunk, or the rest of a large frame whose length is
 * known, so it arrives in one buffer). NULL when that memory cannot be had.
 */
uint8_t *proto_conn_input_space(proto_conn *c, size_t *room);
/*
 * n bytes were read into the space: deliver every whole frame (responses to
 * their callbacks, requests to the request callback) while the state
 * allows. 0, or LSMQ_ECORRUPT / LSMQ_ETOOBIG / LSMQ_ENOMEM when the input
 * is unusable: the connection must then be closed.
 */
int proto_conn_input_done(proto_conn *c, size_t n);
/* The same for bytes read elsewhere (copied in first): tests, fuzzing. */
int proto_conn_feed(proto_conn *c, const void *bytes, size_t len);

/* ---- Output ---- */

/* For proto_conn_send and proto_conn_reply: take the malloc'ed body over instead of copying it. */
#define PROTO_SEND_TAKE_BODY 1

/*
 * Queue cmd (encoded now; not kept) with a body. Returns 0, LSMQ_ECLOSED
 * (CLOSING or CLOSED: nothing queued) or LSMQ_ETOOBIG. A taken body is
 * freed whatever the outcome.
 */
int proto_conn_send(proto_conn *c, const proto_cmd *cmd, void *body, size_t body_len, int flags);
/*
 * Queue the response to the peer's request `opaque`: sets resp's opaque and
 * response flag, then as proto_conn_send. A response to the oneway request
 * being delivered is dropped (its sender expects none): returns 0.
 */
int proto_conn_reply(proto_conn *c, int32_t opaque, proto_cmd *resp, void *body,
                     size_t body_len, int flags);
/* Queue a whole encoded frame, taken over (freed if the connection is closing). */
int proto_conn_send_frame(proto_conn *c, uint8_t *frame, size_t len);

/* Up to max pieces of the queued output, in order; how many. Valid until the next call. */
size_t proto_conn_output_iov(const proto_conn *c, struct iovec *iov, size_t max);
/*
 * n bytes of that output were written. May resume a PAUSED connection, and
 * so deliver the input held back: returns as proto_conn_input_done.
 */
int proto_conn_output_done(proto_conn *c, size_t n);
/* Bytes queued and not yet written. */
size_t proto_conn_output_bytes(const proto_conn *c);

/* ---- Our requests ---- */

/*
 * Send req with the next opaque of this connection (written into req) and
 * expect its response by deadline_ms; cb NULL sends it oneway. 0 and cb
 * will run exactly once; or an error (LSMQ_ECLOSED, LSMQ_ETOOBIG) and cb
 * never runs.
 */
int proto_conn_request(proto_conn *c, proto_cmd *req, const void *body, size_t body_len,
                       int64_t deadline_ms, proto_reply_cb *cb, void *arg);
/*
 * Expect the response to a request encoded elsewhere with this opaque
 * (queue it with proto_conn_send_frame). An older request still waiting
 * with the same opaque fails with -ETIMEDOUT. On a CLOSED connection cb
 * runs at once with LSMQ_ECLOSED.
 */
void proto_conn_expect(proto_conn *c, int32_t opaque, int64_t deadline_ms, proto_reply_cb *cb,
                       void *arg);
/* Fail the requests whose deadline is at or before now_ms; the next deadline, or INT64_MAX. */
int64_t proto_conn_expire(proto_conn *c, int64_t now_ms);
/* Requests waiting for their response. */
size_t proto_conn_pending(const proto_conn *c);

#endif
