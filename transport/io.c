/*
 * Bytes between a socket and a connection core, for both adapters: one
 * writev-style sendmsg over the queued chunks at a time, and one read into
 * the space the core offers (sized for the frame on its way).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport_internal.h"

#define IOV_BATCH 64

int transport__write(proto_conn *c, const int *fd)
{
    struct iovec iov[IOV_BATCH];
    struct msghdr mh;
    ssize_t w;
    size_t n;
    int rc;

    while (*fd >= 0 && (n = proto_conn_output_iov(c, iov, IOV_BATCH)) > 0) {
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = iov;
        mh.msg_iovlen = n;
        w = sendmsg(*fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
        if ((rc = proto_conn_output_done(c, (size_t)w)) != 0)
            return rc;
    }
    return 0;
}

int transport__read(proto_conn *c, const int *fd)
{
    size_t room = 0;
    uint8_t *space = proto_conn_input_space(c, &room);
    ssize_t n;
    int rc;

    if (space == NULL)
        return LSMQ_ENOMEM;
    do
        n = read(*fd, space, room);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        return 0;
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
    rc = proto_conn_input_done(c, (size_t)n);
    return rc == 0 ? 1 : rc;
}

const char *transport__why(proto_conn *c, int err, char *buf, size_t len)
{
    /* The core says in words why it refused input; the other codes say enough. */
    if ((err == LSMQ_ECORRUPT || err == LSMQ_ETOOBIG || err == LSMQ_ENOMEM) &&
        proto_conn_error(c)[0])
        snprintf(buf, len, "%s", proto_conn_error(c));
    else
        snprintf(buf, len, "%s", lsmq_strerror(err));
    return buf;
}
