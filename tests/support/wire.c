#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int32_t next_opaque = 1000;

int wire_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sin;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(sin.sin_port);
}

int wire_connect(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

int32_t wire_send(int fd, proto_cmd *cmd, const void *body, size_t body_len)
{
    if (!proto_cmd_is_response(cmd))
        cmd->opaque = __atomic_add_fetch(&next_opaque, 1, __ATOMIC_SEQ_CST);
    uint8_t *frame;
    size_t len;
    int32_t opaque = cmd->opaque;
    if (proto_cmd_encode(cmd, body, body_len, &frame, &len) != 0)
        return -1;
    int rc = write_all(fd, frame, len);
    free(frame);
    return rc == 0 ? opaque : -1;
}

int wire_recv(int fd, proto_cmd **out, uint8_t **frame)
{
    uint8_t hdr[4];
    if (read_all(fd, hdr, 4) != 0)
        return -1;
    uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    if (len > PROTO_FRAME_MAX_DEFAULT)
        return -1;
    uint8_t *buf = malloc(len + 4);
    if (!buf)
        return -1;
    memcpy(buf, hdr, 4);
    if (read_all(fd, buf + 4, len) != 0) {
        free(buf);
        return -1;
    }
    char err[128];
    if (proto_cmd_decode(buf, len + 4, out, err, sizeof err) != 0) {
        fprintf(stderr, "wire_recv: undecodable frame: %s\n", err);
        free(buf);
        return -1;
    }
    *frame = buf;
    return 0;
}

int wire_call(int fd, proto_cmd *cmd, const void *body, size_t body_len, proto_cmd **resp,
              uint8_t **frame)
{
    int32_t opaque = wire_send(fd, cmd, body, body_len);
    proto_cmd_free(cmd);
    if (opaque == -1)
        return -1;
    for (;;) {
        if (wire_recv(fd, resp, frame) != 0)
            return -1;
        if (proto_cmd_is_response(*resp) && (*resp)->opaque == opaque)
            return 0;
        proto_cmd_free(*resp);
        free(*frame);
    }
}

static int wait_port(int port, pid_t pid, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        int fd = wire_connect(port, 1000);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return -1; /* it died */
        usleep(20000);
    }
    return -1;
}

int wire_start(wire_proc *p, const char *prog, int port, const char *const *args)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", LSMQ_BIN_DIR, prog);
    const char *argv[64];
    int n = 0;
    argv[n++] = path;
    for (int i = 0; args && args[i] && n < 62; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* Die with the test: an orphaned broker would hold ctest's pipe open. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execv(path, (char *const *)argv);
        perror("execv");
        _exit(127);
    }
    p->pid = pid;
    p->port = port;
    if (wait_port(port, pid, 20000) != 0) {
        wire_kill9(p);
        return -1;
    }
    return 0;
}

int wire_stop(wire_proc *p, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        int status;
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        usleep(10000);
    }
    wire_kill9(p);
    return -1;
}

void wire_kill9(wire_proc *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}
