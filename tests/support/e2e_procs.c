#include "e2e_procs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testsupport.h"
#include "clock.h"

#define MAX_ARGS 48

/* own args, then extra, NULL-terminated, into out (MAX_ARGS slots). */
static void join_args(const char **out, const char *const *own, const char *const *extra)
{
    int n = 0;
    for (int i = 0; own[i] && n < MAX_ARGS - 1; i++)
        out[n++] = own[i];
    for (int i = 0; extra && extra[i] && n < MAX_ARGS - 1; i++)
        out[n++] = extra[i];
    out[n] = NULL;
}

int e2e_broker_restart(e2e_broker *b, const char *const *extra)
{
    char port[64], ns_port[64], ha_port[64], store[600];
    snprintf(port, sizeof port, "--listenPort=%d", b->proc.port);
    snprintf(ns_port, sizeof ns_port, "--embeddedNamesrvPort=%d", b->namesrv_port);
    /* Not listenPort + 1, the default, which another test's free port can be. */
    snprintf(ha_port, sizeof ha_port, "--haListenPort=%d", b->ha_port);
    snprintf(store, sizeof store, "--storePathRootDir=%s", b->store_dir);
    const char *own[] = {port, ns_port, ha_port, store, "--embedded-namesrv",
                         "--brokerIP1=127.0.0.1", NULL};
    const char *args[MAX_ARGS];
    join_args(args, own, extra);
    return wire_start(&b->proc, "mqbroker", b->proc.port, args);
}

int e2e_broker_init(e2e_broker *b, const char *tag)
{
    memset(b, 0, sizeof *b);
    b->proc.port = wire_free_port();
    /* Each is bound and released at once: a later one can be an earlier one again. */
    do
        b->namesrv_port = wire_free_port();
    while (b->namesrv_port == b->proc.port);
    do
        b->ha_port = wire_free_port();
    while (b->ha_port == b->proc.port || b->ha_port == b->namesrv_port);
    if (b->proc.port <= 0 || b->namesrv_port <= 0 || b->ha_port <= 0)
        return -1;
    snprintf(b->addr, sizeof b->addr, "127.0.0.1:%d", b->proc.port);
    snprintf(b->namesrv, sizeof b->namesrv, "127.0.0.1:%d", b->namesrv_port);
    b->store_dir = test_tmpdir(tag);
    return 0;
}

int e2e_broker_start(e2e_broker *b, const char *tag, const char *const *extra)
{
    if (e2e_broker_init(b, tag) != 0)
        return -1;
    if (e2e_broker_restart(b, extra) != 0) {
        test_rmdir_free(b->store_dir);
        b->store_dir = NULL;
        return -1;
    }
    return 0;
}

int e2e_broker_stop(e2e_broker *b, int timeout_ms)
{
    int status = wire_stop(&b->proc, timeout_ms);
    test_rmdir_free(b->store_dir);
    b->store_dir = NULL;
    if (status != 0)
        fprintf(stderr, "mqbroker exited with status %d\n", status);
    return status;
}

void e2e_broker_kill(e2e_broker *b)
{
    wire_kill9(&b->proc);
    test_rmdir_free(b->store_dir);
    b->store_dir = NULL;
}

int e2e_broker_setup(e2e_broker *b, const char *tag, const char *const *extra, int *fd)
{
    *fd = -1;
    if (e2e_broker_start(b, tag, extra) != 0)
        return -1;
    *fd = wire_connect(b->proc.port, 20000);
    return *fd >= 0 ? 0 : -1;
}

int e2e_broker_teardown(e2e_broker *b, int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
    return e2e_broker_stop(b, 30000) == 0 ? 0 : -1;
}

int e2e_namesrv_start(wire_proc *p, int port, const char *const *extra)
{
    if (port == 0)
        port = wire_free_port();
    char listen[64];
    snprintf(listen, sizeof listen, "--listenPort=%d", port);
    const char *own[] = {listen, NULL};
    const char *args[MAX_ARGS];
    join_args(args, own, extra);
    return wire_start(p, "mqnamesrv", port, args);
}

/* GET_ROUTEINFO_BY_TOPIC's response code, or -1 when the name server did not answer. */
static int route_code(int namesrv_port, const char *topic)
{
    int fd = wire_connect(namesrv_port, 2000);
    if (fd < 0)
        return -1;
    proto_cmd *req = proto_cmd_request(RC_GET_ROUTEINFO_BY_TOPIC), *resp = NULL;
    uint8_t *frame = NULL;
    int code = -1;
    proto_cmd_set(req, "topic", topic);
    if (wire_call(fd, req, NULL, 0, &resp, &frame) == 0) {
        code = resp->code;
        proto_cmd_free(resp);
        free(frame);
    }
    close(fd);
    return code;
}

long e2e_wait_route(int namesrv_port, const char *topic, int code, int timeout_ms)
{
    long start = proto_mono_ms();
    do {
        if (route_code(namesrv_port, topic) == code)
            return proto_mono_ms() - start;
        usleep(20000);
    } while (proto_mono_ms() - start < timeout_ms);
    return -1;
}
