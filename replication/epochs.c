/*
 * A master's epoch history in a header field (HELLO's answer when a
 * replica is rebased): "epoch:start:prevEpoch:prevEnd" per entry, comma
 * separated, oldest first. The replica stores it with its new position,
 * so it holds the same history as its master.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl_internal.h"

void repl__history_format(char *out, size_t cap, const engine_epoch_entry *h, size_t n)
{
    size_t len = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n && len < cap; i++) {
        int w = snprintf(out + len, cap - len, "%s%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%" PRIu64,
                         i ? "," : "", h[i].epoch, h[i].start_seq, h[i].prev_epoch,
                         h[i].prev_end_seq);
        if (w < 0 || (size_t)w >= cap - len) {
            out[len] = '\0'; /* cannot happen at REPL_HISTORY_TEXT_MAX: keep whole entries */
            return;
        }
        len += (size_t)w;
    }
}

/* One decimal number ending at `end`: 0 or LSMQ_ECORRUPT. */
static int number(const char **p, char end, uint64_t *v)
{
    char *stop;

    if (**p < '0' || **p > '9')
        return LSMQ_ECORRUPT;
    unsigned long long x = strtoull(*p, &stop, 10);
    if (*stop != end)
        return LSMQ_ECORRUPT;
    *v = x;
    *p = end ? stop + 1 : stop;
    return 0;
}

int repl__history_parse(const char *text, engine_epoch_entry *h, size_t *n)
{
    const char *p = text;

    *n = 0;
    if (!text || !*text)
        return 0;
    for (;;) {
        if (*n == ENGINE_EPOCHS_KEPT)
            return LSMQ_ECORRUPT;
        engine_epoch_entry *x = &h[*n];
        const char *comma = strchr(p, ',');
        char last = comma ? ',' : '\0';
        if (number(&p, ':', &x->epoch) || number(&p, ':', &x->start_seq) ||
            number(&p, ':', &x->prev_epoch) || number(&p, last, &x->prev_end_seq))
            return LSMQ_ECORRUPT;
        if (*n > 0 && x->epoch <= h[*n - 1].epoch)
            return LSMQ_ECORRUPT; /* epochs only go up */
        (*n)++;
        if (!comma)
            return 0;
    }
}
