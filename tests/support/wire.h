/*
 * Test helpers that speak the remoting protocol over a blocking socket and
 * run the real programs: start one, wait until it accepts connections, stop
 * it with SIGTERM and report how it exited. e2e_procs.h builds the usual
 * broker and name server set-ups on top.
 */
#ifndef LSMQ_TEST_WIRE_H
#define LSMQ_TEST_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "remoting.h"

/* A free TCP port on 127.0.0.1 (bound and released; good enough for tests). */
int wire_free_port(void);

/* Connect to 127.0.0.1:port with a receive timeout; fd or -1. */
int wire_connect(int port, int timeout_ms);

/* Send one command (its opaque is set to a fresh value and returned). -1 on error. */
int32_t wire_send(int fd, proto_cmd *cmd, const void *body, size_t body_len);

/*
 * Read one frame: *out decoded (free with proto_cmd_free), *frame the raw
 * frame that its body points into (free() it). 0, or -1 on timeout/EOF/error.
 */
int wire_recv(int fd, proto_cmd **out, uint8_t **frame);

/*
 * Send a request and read frames until the response with its opaque
 * arrives (server-initiated requests in between are skipped). Takes cmd.
 */
int wire_call(int fd, proto_cmd *cmd, const void *body, size_t body_len, proto_cmd **resp,
              uint8_t **frame);

/* A running program. */
typedef struct wire_proc {
    pid_t pid;
    int port;
} wire_proc;

/*
 * Start build/server/<prog> (path from the LSMQ_BIN_DIR compile definition)
 * with the given NULL-terminated extra args, wait until `port` accepts.
 * Returns 0 or -1.
 */
int wire_start(wire_proc *p, const char *prog, int port, const char *const *args);
/* SIGTERM, wait up to timeout_ms; returns the exit status (0 = clean) or -1 if killed. */
int wire_stop(wire_proc *p, int timeout_ms);
/* SIGKILL and reap. */
void wire_kill9(wire_proc *p);

#endif
