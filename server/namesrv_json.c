/*
 * JSON text the name server writes by hand. jansson only has string keys,
 * and route data needs fastjson's shapes: brokerAddrs keyed by bare
 * numbers ({0:"ip:port"}) for old clients, quoted ({"0":"ip:port"}) for
 * standard-JSON ones. Output is compact with keys in fastjson's sorted
 * order: the Go client splits brokerAddrs by hand and breaks on whitespace.
 * The buffer and the string literals are protocol/'s (buf.h, fastjson.h).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "namesrv_internal.h"

void namesrv__buf_broker_data(proto_buf *b, const ns_broker *bd, bool standard)
{
    /* Fields in fastjson's alphabetical order; 4.x-compatible (no zoneName). */
    proto_buf_puts(b, "{\"brokerAddrs\":{");
    for (size_t i = 0; i < bd->n_addrs; i++) {
        if (i)
            proto_buf_put(b, ",", 1);
        if (standard)
            proto_buf_printf(b, "\"%" PRId64 "\":", bd->addrs[i].id);
        else
            proto_buf_printf(b, "%" PRId64 ":", bd->addrs[i].id);
        proto_json_put_string(b, bd->addrs[i].addr, standard);
    }
    proto_buf_puts(b, "},\"brokerName\":");
    proto_json_put_string(b, bd->name, standard);
    proto_buf_puts(b, ",\"cluster\":");
    proto_json_put_string(b, bd->cluster, standard);
    proto_buf_puts(b, ",\"enableActingMaster\":false}");
}

void namesrv__buf_version(proto_buf *b, const ns_version *v)
{
    if (v->has_state)
        proto_buf_printf(b, "{\"counter\":%" PRId64 ",\"stateVersion\":%" PRId64
                          ",\"timestamp\":%" PRId64 "}",
                       v->counter, v->state_version, v->timestamp);
    else
        proto_buf_printf(b, "{\"counter\":%" PRId64 ",\"timestamp\":%" PRId64 "}", v->counter,
                       v->timestamp);
}
