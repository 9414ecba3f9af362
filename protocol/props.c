/*
 * The message properties string (REMOTING.md §4.5): reading pairs with the
 * Java client's rules, looking one up, and appending one. Everything works
 * on views into the caller's bytes; nothing is copied or allocated.
 */
#include "props.h"

#include <string.h>

#include "errors.h"

void proto_props_iter_init(proto_props_iter *it, const char *props, size_t len)
{
    /* Keep NULL + 0 out of pointer arithmetic: an empty string is just empty. */
    if (props == NULL || len == 0) {
        it->p = NULL;
        it->end = NULL;
        return;
    }
    it->p = props;
    it->end = props + len;
}

/*
 * Cut the next 0x02-terminated segment (the last one may lack its 0x02) and
 * step past it. Returns 0 when the string is used up.
 */
static int next_segment(proto_props_iter *it, const char **seg, size_t *seg_len)
{
    const char *sep;

    if (it->p == NULL || it->p >= it->end)
        return 0;
    sep = memchr(it->p, PROTO_PROP_SEP, (size_t)(it->end - it->p));
    *seg = it->p;
    if (sep != NULL) {
        *seg_len = (size_t)(sep - it->p);
        it->p = sep + 1;
    } else {
        *seg_len = (size_t)(it->end - it->p);
        it->p = it->end;
    }
    return 1;
}

int proto_props_next(proto_props_iter *it, const char **name, size_t *name_len,
                     const char **value, size_t *value_len)
{
    const char *seg, *kv;
    size_t seg_len;

    while (next_segment(it, &seg, &seg_len)) {
        /*
         * Java skips anything shorter than "n\001v". The checks below would
         * reject such a segment anyway; this keeps the rule visible.
         */
        if (seg_len < 3)
            continue;
        /* The first 0x01 splits; later ones belong to the value. */
        kv = memchr(seg, PROTO_PROP_NAME_VALUE_SEP, seg_len);
        if (kv == NULL || kv == seg || kv == seg + seg_len - 1)
            continue;
        *name = seg;
        *name_len = (size_t)(kv - seg);
        *value = kv + 1;
        *value_len = seg_len - *name_len - 1;
        return 1;
    }
    return 0;
}

/*
 * Java loads the pairs into a map, so a repeated name keeps its last value;
 * scan the whole string and report the last match to agree with it.
 */
int proto_props_get(const char *props, size_t len, const char *name, const char **value,
                    size_t *value_len)
{
    proto_props_iter it;
    const char *n, *v;
    size_t n_len, v_len, want = strlen(name);
    int found = 0;

    proto_props_iter_init(&it, props, len);
    while (proto_props_next(&it, &n, &n_len, &v, &v_len)) {
        if (n_len == want && memcmp(n, name, want) == 0) {
            *value = v;
            *value_len = v_len;
            found = 1;
        }
    }
    return found;
}

/* Nonempty and free of both separator bytes, so it reads back unchanged. */
static int prop_part_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0)
        return 0;
    return memchr(s, PROTO_PROP_NAME_VALUE_SEP, len) == NULL &&
           memchr(s, PROTO_PROP_SEP, len) == NULL;
}

int proto_props_append(char *buf, size_t cap, size_t *used, const char *name,
                       size_t name_len, const char *value, size_t value_len)
{
    char *p;

    if (!prop_part_valid(name, name_len) || !prop_part_valid(value, value_len))
        return LSMQ_EINVAL;
    /* Written so that no sum can wrap: *used <= cap is checked first. */
    if (*used > cap || name_len > cap - *used || value_len > cap - *used - name_len ||
        cap - *used - name_len - value_len < 2)
        return LSMQ_ETOOBIG;

    p = buf + *used;
    memcpy(p, name, name_len);
    p += name_len;
    *p++ = PROTO_PROP_NAME_VALUE_SEP;
    memcpy(p, value, value_len);
    p += value_len;
    *p++ = PROTO_PROP_SEP;
    *used += name_len + value_len + 2;
    return 0;
}
