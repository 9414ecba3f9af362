/*
 * A response read over the wire and the checks the end-to-end tests make on
 * it: its code and remark, its body as JSON. They fail the running cmocka
 * test rather than return errors. Header-only (static inline) like
 * e2e_msg.h; include it after <cmocka.h>.
 */
#ifndef LSMQ_TEST_E2E_REPLY_H
#define LSMQ_TEST_E2E_REPLY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "remoting.h"
#include "wire.h"

/* A response; its body points into frame. Release both with e2e_reply_free. */
typedef struct e2e_reply {
    proto_cmd *cmd;
    uint8_t *frame;
} e2e_reply;

/* Send req (taken) on sock and read until its response. */
static inline e2e_reply e2e_call(int sock, proto_cmd *req, const void *body, size_t len)
{
    e2e_reply r = {0};
    assert_int_equal(wire_call(sock, req, body, len, &r.cmd, &r.frame), 0);
    return r;
}

static inline void e2e_reply_free(e2e_reply *r)
{
    proto_cmd_free(r->cmd);
    free(r->frame);
    memset(r, 0, sizeof *r);
}

/* The response has this code and, unless remark is NULL, exactly this remark. */
static inline void e2e_expect_code(const e2e_reply *r, int code, const char *remark)
{
    const proto_cmd *c = r->cmd;
    if (c->code != code || (remark && (!c->remark || strcmp(c->remark, remark) != 0)))
        fail_msg("expected code %d with remark \"%s\", got %d \"%s\"", code,
                 remark ? remark : "", c->code, c->remark ? c->remark : "(none)");
}

/* The response has this code and, unless remark_part is NULL, a remark containing it. */
static inline void e2e_expect_code_has(const e2e_reply *r, int code, const char *remark_part)
{
    const proto_cmd *c = r->cmd;
    if (c->code != code || (remark_part && (!c->remark || !strstr(c->remark, remark_part))))
        fail_msg("expected code %d with remark containing \"%s\", got %d \"%s\"", code,
                 remark_part ? remark_part : "", c->code, c->remark ? c->remark : "(none)");
}

/* The response body as JSON (the caller decrefs); fails the test when it is not. */
static inline json_t *e2e_body_json(const e2e_reply *r)
{
    json_error_t err;
    json_t *j = json_loadb((const char *)r->cmd->body, r->cmd->body_len, 0, &err);
    if (!j)
        fail_msg("body is not JSON: %s: %.*s", err.text, (int)r->cmd->body_len,
                 (const char *)r->cmd->body);
    return j;
}

#endif
