/* What the files of transport/ share: waiting on a socket, and moving bytes
 * between a socket and a connection core. Internal to transport/. */
#ifndef LSMQ_TRANSPORT_INTERNAL_H
#define LSMQ_TRANSPORT_INTERNAL_H

#include <stdint.h>

#include "conn.h"

struct addrinfo;

/*
 * Resolve "host:port" (transport_split_addr) into *res, to freeaddrinfo: 0,
 * or LSMQ_EINVAL (malformed) / -EHOSTUNREACH (unresolvable) with why set.
 */
int transport__resolve(const char *addr, struct addrinfo **res, char *why, size_t why_len);
/* A socket for ai (non-blocking, TCP_NODELAY) with its connect started: 0 or -errno. */
int transport__connect_one(const struct addrinfo *ai, int *fd);
/* Wait until fd is ready for events (POLLIN/POLLOUT) or the deadline: 0, -ETIMEDOUT, -errno. */
int transport__wait_fd(int fd, short events, int64_t deadline_ms);
/* How a connect on fd ended: 0 or -errno. */
int transport__connect_result(int fd);

/*
 * Write c's output to *fd until it is all written (0) or the socket is full
 * (-EAGAIN); -errno when the write failed, or the core's error when input
 * it held back, delivered as the queue drained, was refused. Stops early
 * when *fd became -1 (the owner closed it from a callback).
 */
int transport__write(proto_conn *c, const int *fd);
/*
 * One read from *fd into c, delivering what completes: 1, 0 when the peer
 * closed, -EAGAIN when nothing was there, -errno, or the core's error
 * (LSMQ_ECORRUPT, LSMQ_ETOOBIG, LSMQ_ENOMEM).
 */
int transport__read(proto_conn *c, const int *fd);

/* A sentence for an error of transport__read/transport__write. */
const char *transport__why(proto_conn *c, int err, char *buf, size_t len);

#endif
