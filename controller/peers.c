/*
 * Parsing the controllers' list (peers.h).
 */
#include "peers.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"

/* "nK" with K up to 6 digits: K + 1, or 0 when malformed. */
static uint64_t raft_id_of(const char *id)
{
    size_t n = strlen(id);
    if (n < 2 || n > 7 || id[0] != 'n')
        return 0;
    uint64_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if (id[i] < '0' || id[i] > '9')
            return 0;
        k = k * 10 + (uint64_t)(id[i] - '0');
    }
    if (n > 2 && id[1] == '0')
        return 0; /* "n01" would alias "n1" */
    return k + 1;
}

/* host:port with a non-empty host and a port 1..65535. */
static int addr_ok(const char *a)
{
    const char *colon = strrchr(a, ':');
    if (!colon || colon == a || colon[1] == '\0')
        return 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    return *end == '\0' && port > 0 && port <= 65535;
}

static int parse_entry(const char *s, size_t len, ctl_peer *p)
{
    const char *eq = memchr(s, '=', len);
    if (!eq)
        return LSMQ_EINVAL;
    size_t id_len = (size_t)(eq - s), addr_len = len - id_len - 1;
    if (id_len == 0 || id_len > CTL_ID_MAX || addr_len == 0 || addr_len > CTL_ADDR_MAX)
        return LSMQ_EINVAL;
    memcpy(p->id, s, id_len);
    p->id[id_len] = '\0';
    memcpy(p->addr, eq + 1, addr_len);
    p->addr[addr_len] = '\0';
    p->raft_id = raft_id_of(p->id);
    return p->raft_id != 0 && addr_ok(p->addr) ? 0 : LSMQ_EINVAL;
}

int ctl_peers_parse(const char *s, ctl_peer *out, size_t *n)
{
    size_t count = 0;
    const char *p = s ? s : "";
    while (*p) {
        size_t len = strcspn(p, ";,");
        if (len > 0) {
            if (count == CTL_PEERS_MAX || parse_entry(p, len, &out[count]) != 0)
                goto bad;
            for (size_t i = 0; i < count; i++)
                if (out[i].raft_id == out[count].raft_id ||
                    strcmp(out[i].addr, out[count].addr) == 0)
                    goto bad;
            count++;
        }
        p += len;
        if (*p)
            p++;
    }
    if (count == 0)
        goto bad;
    *n = count;
    return 0;
bad:
    proto_log(PROTO_LOG_ERROR, "controller: bad peer list '%s' (want n0=host:port;n1=...)",
              s ? s : "");
    return LSMQ_EINVAL;
}

const ctl_peer *ctl_peers_by_id(const ctl_peer *p, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(p[i].id, id) == 0)
            return &p[i];
    return NULL;
}

const ctl_peer *ctl_peers_by_raft_id(const ctl_peer *p, size_t n, uint64_t raft_id)
{
    for (size_t i = 0; i < n; i++)
        if (p[i].raft_id == raft_id)
            return &p[i];
    return NULL;
}
