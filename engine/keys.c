/* Key encodings of the engine's column families; see internal.h for the layouts. */
#include <string.h>

#include "internal.h"

size_t engine__key_msg(uint8_t out[MSG_KEY_LEN], uint32_t topic_id, uint32_t queue_id,
                       uint64_t offset)
{
    proto_put_u32(out, topic_id);
    proto_put_u32(out + 4, queue_id);
    proto_put_u64(out + 8, offset);
    return MSG_KEY_LEN;
}

bool engine__key_msg_parse(const uint8_t *key, size_t len, engine_msg_pos *at)
{
    if (len != MSG_KEY_LEN)
        return false;
    at->topic_id = proto_get_u32(key);
    at->queue_id = proto_get_u32(key + 4);
    at->queue_offset = proto_get_u64(key + 8);
    return true;
}

size_t engine__key_hwm(uint8_t out[HWM_KEY_LEN], uint32_t topic_id, uint32_t queue_id)
{
    out[0] = 'H';
    proto_put_u32(out + 1, topic_id);
    proto_put_u32(out + 5, queue_id);
    return HWM_KEY_LEN;
}

size_t engine__key_offset(uint8_t *out, size_t cap, const char *group, size_t group_len,
                          uint32_t topic_id, uint32_t queue_id)
{
    size_t need = group_len + 1 + 8;
    if (need > cap)
        return 0;
    memcpy(out, group, group_len);
    out[group_len] = 0;
    proto_put_u32(out + group_len + 1, topic_id);
    proto_put_u32(out + group_len + 5, queue_id);
    return need;
}

bool engine__key_offset_parse(const uint8_t *key, size_t len, engine_consumer_offset *o)
{
    /* The group has no 0x00, so the separator sits 9 bytes from the end. */
    if (len < 10 || key[len - 9] != 0)
        return false;
    o->group = (const char *)key;
    o->group_len = len - 9;
    o->topic_id = proto_get_u32(key + len - 8);
    o->queue_id = proto_get_u32(key + len - 4);
    return true;
}
