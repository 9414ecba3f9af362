/* Key encodings of the engine's column families; see internal.h for the layouts. */
#include <string.h>

#include "internal.h"

const char META_VERSION_KEY[1] = {'V'};
const char META_LOGPOS_KEY[1] = {'L'};
const char META_TOPICSEQ_KEY[1] = {'T'};

size_t key_msg(uint8_t out[MSG_KEY_LEN], uint32_t topic_id, uint32_t queue_id, uint64_t offset)
{
    proto_put_u32(out, topic_id);
    proto_put_u32(out + 4, queue_id);
    proto_put_u64(out + 8, offset);
    return MSG_KEY_LEN;
}

size_t key_hwm(uint8_t out[HWM_KEY_LEN], uint32_t topic_id, uint32_t queue_id)
{
    out[0] = 'H';
    proto_put_u32(out + 1, topic_id);
    proto_put_u32(out + 5, queue_id);
    return HWM_KEY_LEN;
}

size_t key_offset(uint8_t *out, size_t cap, const char *group, size_t group_len,
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
