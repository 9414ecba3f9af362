/*
 * TAG subscriptions (REMOTING.md §6.6): "*" (or empty) takes everything;
 * otherwise the expression is split on "||", parts trimmed, empties
 * dropped. The broker filters by the tags' hash codes; the client checks
 * the actual TAGS string again to drop hash collisions, as Java does.
 */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "message_id.h"

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

int lsmq__sub_parse(const char *topic, const char *expr, subscription **out, lsmq_errslot *err)
{
    subscription *s;
    const char *p;

    *out = NULL;
    if (!lsmq__valid_name(topic, LSMQ_TOPIC_MAX + 128)) {
        lsmq__error(err, -1, "bad topic name '%s'", topic ? topic : "(null)");
        return LSMQ_EINVAL;
    }
    s = proto_xcalloc(1, sizeof *s);
    s->topic = proto_xstrdup(topic);
    s->version = proto_wall_ms();
    while (expr && is_blank(*expr))
        expr++;
    if (expr == NULL || *expr == '\0' || strcmp(expr, "*") == 0) {
        s->all = 1;
        s->expr = proto_xstrdup("*");
        *out = s;
        return 0;
    }
    s->expr = proto_xstrdup(expr);
    p = expr;
    for (;;) {
        const char *bar = strstr(p, "||");
        const char *end = bar ? bar : p + strlen(p);
        const char *b = p, *e = end;

        while (b < e && is_blank(*b))
            b++;
        while (e > b && is_blank(e[-1]))
            e--;
        if (e > b) {
            s->tags = proto_xrealloc(s->tags, (s->n_tags + 1) * sizeof *s->tags);
            s->codes = proto_xrealloc(s->codes, (s->n_tags + 1) * sizeof *s->codes);
            s->tags[s->n_tags] = proto_xstrndup(b, (size_t)(e - b));
            s->codes[s->n_tags++] = proto_tag_hash(b, (size_t)(e - b));
        }
        if (!bar)
            break;
        p = bar + 2;
    }
    if (s->n_tags == 0) {
        lsmq__error(err, -1, "tag expression '%s' names no tag", expr);
        lsmq__sub_free(s);
        return LSMQ_EINVAL;
    }
    *out = s;
    return 0;
}

void lsmq__sub_free(subscription *s)
{
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < s->n_tags; i++)
        free(s->tags[i]);
    free(s->tags);
    free(s->codes);
    free(s->topic);
    free(s->expr);
    free(s);
}

int lsmq__sub_match(const subscription *s, const char *tags)
{
    size_t i;

    if (s == NULL || s->all)
        return 1;
    if (tags == NULL)
        return 0;
    for (i = 0; i < s->n_tags; i++)
        if (strcmp(s->tags[i], tags) == 0)
            return 1;
    return 0;
}
