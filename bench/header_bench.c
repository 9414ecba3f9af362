/*
 * Micro-benchmark of the JSON remoting header codec: decodes a Java client's
 * SEND_MESSAGE_V2 request header and encodes the decoded command, N times,
 * once with lsmq's reader and writer (protocol/header_json_*.c, through
 * proto_cmd_decode / proto_cmd_encode_prefix) and once with the jansson
 * codec they replaced (kept as the tests' reference), and prints ns/op.
 *
 *   lsmq-header-bench [iterations]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "header_json_ref.h"
#include "remoting.h"

/* As the Java 4.9/5.x client writes it (fastjson escapes the property separators). */
static const char header[] =
    "{\"code\":310,\"extFields\":{\"a\":\"please_rename_unique_group_name\",\"b\":\"TopicTest\","
    "\"c\":\"TBW102\",\"d\":\"4\",\"e\":\"2\",\"f\":\"0\",\"g\":\"1700000000123\",\"h\":\"0\","
    "\"i\":\"KEYS\\u0001OrderID188\\u0002UNIQ_KEY\\u00017F00000145CE18B4AAC2612C5B9C0000"
    "\\u0002WAIT\\u0001true\\u0002TAGS\\u0001TagA\\u0002\",\"j\":\"0\",\"k\":\"false\","
    "\"m\":\"false\",\"n\":\"broker-a\"},\"flag\":0,\"language\":\"JAVA\",\"opaque\":1234,"
    "\"serializeTypeCurrentRPC\":\"JSON\",\"version\":453}";

static double now_ns(void)
{
    return (double)proto_mono_ns();
}

static uint8_t *frame_of(const char *hdr, size_t *len)
{
    size_t n = strlen(hdr), total = 8 + n;
    uint8_t *f = proto_xmalloc(total);
    f[0] = (uint8_t)((total - 4) >> 24);
    f[1] = (uint8_t)((total - 4) >> 16);
    f[2] = (uint8_t)((total - 4) >> 8);
    f[3] = (uint8_t)(total - 4);
    f[4] = 0;
    f[5] = (uint8_t)(n >> 16);
    f[6] = (uint8_t)(n >> 8);
    f[7] = (uint8_t)n;
    memcpy(f + 8, hdr, n);
    *len = total;
    return f;
}

/* The new codec: one decode and one encode per iteration. */
static void run_new(const uint8_t *frame, size_t len, long iters, double *dec, double *enc)
{
    double t0, t_dec = 0, t_enc = 0;
    proto_cmd *cmd;
    uint8_t *out;
    size_t out_len;
    char err[128];
    long i;

    for (i = 0; i < iters; i++) {
        t0 = now_ns();
        if (proto_cmd_decode(frame, len, &cmd, err, sizeof err) != 0) {
            fprintf(stderr, "decode failed: %s\n", err);
            exit(1);
        }
        t_dec += now_ns() - t0;
        t0 = now_ns();
        if (proto_cmd_encode_prefix(cmd, 0, &out, &out_len) != 0)
            abort();
        t_enc += now_ns() - t0;
        free(out);
        proto_cmd_free(cmd);
    }
    *dec = t_dec / (double)iters;
    *enc = t_enc / (double)iters;
}

/* jansson: the reference decode and encode of the same header. */
static void run_old(const proto_cmd *cmd, long iters, double *dec, double *enc)
{
    double t0, t_dec = 0, t_enc = 0;
    ref_header r;
    char *out;
    long i;

    for (i = 0; i < iters; i++) {
        t0 = now_ns();
        ref_decode(header, sizeof header - 1, &r);
        if (!r.ok)
            abort();
        t_dec += now_ns() - t0;
        t0 = now_ns();
        out = ref_encode(cmd);
        t_enc += now_ns() - t0;
        free(out);
        ref_header_free(&r);
    }
    *dec = t_dec / (double)iters;
    *enc = t_enc / (double)iters;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 500000;
    double nd, ne, od, oe;
    size_t len;
    uint8_t *frame = frame_of(header, &len);
    proto_cmd *cmd;
    char err[128];

    if (iters <= 0 || proto_cmd_decode(frame, len, &cmd, err, sizeof err) != 0)
        return 2;
    /* Warm up both, then measure. */
    run_new(frame, len, iters / 10 + 1, &nd, &ne);
    run_old(cmd, iters / 10 + 1, &od, &oe);
    run_new(frame, len, iters, &nd, &ne);
    run_old(cmd, iters, &od, &oe);
    printf("SEND_MESSAGE_V2 header, %zu bytes, %ld iterations\n", sizeof header - 1, iters);
    printf("           decode ns/op  encode ns/op  total ns/op\n");
    printf("jansson    %12.0f  %12.0f  %11.0f\n", od, oe, od + oe);
    printf("lsmq       %12.0f  %12.0f  %11.0f\n", nd, ne, nd + ne);
    printf("speed-up   %11.1fx  %11.1fx  %10.1fx\n", od / nd, oe / ne, (od + oe) / (nd + ne));
    proto_cmd_free(cmd);
    free(frame);
    return 0;
}
