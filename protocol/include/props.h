/*
 * The message properties string (REMOTING.md §4.5): name 0x01 value 0x02,
 * repeated. Decoding follows the Java client's rules: split on 0x02, skip
 * segments shorter than 3 bytes, the first 0x01 splits name from value, and
 * both must be non-empty.
 */
#ifndef LSMQ_PROTO_PROPS_H
#define LSMQ_PROTO_PROPS_H

#include <stddef.h>

#define PROTO_PROP_NAME_VALUE_SEP '\001'
#define PROTO_PROP_SEP '\002'

#define PROTO_PROP_KEYS "KEYS"
#define PROTO_PROP_TAGS "TAGS"
#define PROTO_PROP_UNIQ_KEY "UNIQ_KEY"
#define PROTO_PROP_DELAY "DELAY"
#define PROTO_PROP_WAIT "WAIT"
#define PROTO_PROP_TIMER_DELIVER_MS "TIMER_DELIVER_MS"
#define PROTO_PROP_TIMER_DELAY_MS "TIMER_DELAY_MS"
#define PROTO_PROP_TIMER_DELAY_SEC "TIMER_DELAY_SEC"
#define PROTO_PROP_TIMER_OUT_MS "TIMER_OUT_MS"
#define PROTO_PROP_TIMER_ENQUEUE_MS "TIMER_ENQUEUE_MS"
#define PROTO_PROP_START_DELIVER_TIME "__STARTDELIVERTIME" /* ali-ons */
#define PROTO_PROP_REAL_TOPIC "REAL_TOPIC"
#define PROTO_PROP_REAL_QID "REAL_QID"

/* Iterator over the pairs of a properties string; a view, nothing copied. */
typedef struct proto_props_iter {
    const char *p;
    const char *end;
} proto_props_iter;

void proto_props_iter_init(proto_props_iter *it, const char *props, size_t len);

/* Next valid pair: 1 and the views set, or 0 at the end. */
int proto_props_next(proto_props_iter *it, const char **name, size_t *name_len,
                     const char **value, size_t *value_len);

/*
 * Value of property `name` (NUL-terminated): 1 and the view set, 0 if absent.
 * A repeated name yields its last value, as Java's map would keep.
 */
int proto_props_get(const char *props, size_t len, const char *name, const char **value,
                    size_t *value_len);

/*
 * Append "name\001value\002" at buf + *used (cap bytes in all). Returns 0, or
 * LSMQ_ETOOBIG without writing if it does not fit, LSMQ_EINVAL if name or
 * value is empty or contains a separator byte.
 */
int proto_props_append(char *buf, size_t cap, size_t *used, const char *name,
                       size_t name_len, const char *value, size_t value_len);

#endif
