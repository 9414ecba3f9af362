/*
 * Addresses and connects (transport.h, Sockets): one place that resolves
 * "host:port", makes the socket (non-blocking, close-on-exec, TCP_NODELAY)
 * and connects, without waiting or waiting with poll up to a deadline.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "transport.h"
#include "transport_internal.h"

#define HOST_MAX 256
#define PORT_MAX 16

int transport_split_addr(const char *addr, char *host, size_t host_cap, char *port,
                        size_t port_cap)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    const char *h = addr;
    size_t hlen;

    if (colon == NULL || colon == addr || colon[1] == '\0')
        return LSMQ_EINVAL;
    hlen = (size_t)(colon - addr);
    if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= host_cap || strlen(colon + 1) >= port_cap)
        return LSMQ_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

int transport__resolve(const char *addr, struct addrinfo **res, char *why, size_t why_len)
{
    struct addrinfo hints;
    char host[HOST_MAX], port[PORT_MAX];
    int gai;

    if (transport_split_addr(addr, host, sizeof host, port, sizeof port) != 0) {
        snprintf(why, why_len, "malformed address '%s' (want host:port)", addr ? addr : "");
        return LSMQ_EINVAL;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    *res = NULL;
    gai = getaddrinfo(host, port, &hints, res);
    if (gai != 0 || *res == NULL) {
        snprintf(why, why_len, "cannot resolve %.64s: %s", host,
                 gai ? gai_strerror(gai) : "no address");
        if (*res)
            freeaddrinfo(*res);
        return -EHOSTUNREACH;
    }
    return 0;
}

int transport__connect_one(const struct addrinfo *ai, int *out)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    int one = 1, rc;

    if (fd < 0)
        return -errno;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        rc = -errno;
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

int transport__wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - proto_mono_ms();
        struct pollfd p = {.fd = fd, .events = events};
        int n;

        if (left <= 0)
            return -ETIMEDOUT;
        n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n > 0)
            return 0; /* ready, or an error the next call will tell */
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

int transport__connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    return -err;
}

int transport_connect_wait(const char *addr, int64_t deadline_ms, int *fd, char *why,
                          size_t why_len)
{
    struct addrinfo *res, *ai;
    int rc, s = -1;

    if ((rc = transport__resolve(addr, &res, why, why_len)) != 0)
        return rc;
    rc = -ECONNREFUSED;
    for (ai = res; ai; ai = ai->ai_next) {
        if ((rc = transport__connect_one(ai, &s)) != 0)
            continue;
        if ((rc = transport__wait_fd(s, POLLOUT, deadline_ms)) == 0)
            rc = transport__connect_result(s);
        if (rc == 0)
            break;
        close(s);
        if (rc == -ETIMEDOUT)
            break; /* the time is up for the other addresses as well */
    }
    freeaddrinfo(res);
    if (rc != 0) {
        snprintf(why, why_len, "connect to %s: %s", addr, strerror(-rc));
        return rc;
    }
    *fd = s;
    return 0;
}
