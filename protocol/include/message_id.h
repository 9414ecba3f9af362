/*
 * Message identities (REMOTING.md §4.7-4.10): the offset message id, the
 * client unique id (UNIQ_KEY), the batch body encoding and the tag hash.
 */
#ifndef LSMQ_PROTO_MESSAGE_ID_H
#define LSMQ_PROTO_MESSAGE_ID_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

#define PROTO_MSGID_V4_LEN 32  /* hex chars: 4-byte ip + port + offset */
#define PROTO_MSGID_V6_LEN 56

/*
 * Offset message id: upper-case hex of store host ip (4 or 16 bytes), port
 * (int32) and log position (int64). out must hold PROTO_MSGID_V6_LEN + 1.
 * Returns the length written (NUL-terminated).
 */
size_t proto_msgid_encode(const proto_host *store_host, uint64_t log_position, char *out);

/* Decode an offset message id (32 or 56 hex chars, either case). 0 or LSMQ_EINVAL. */
int proto_msgid_decode(const char *id, size_t len, proto_host *store_host,
                       uint64_t *log_position);

/*
 * A client unique id in the Java layout (ip, pid, a per-process value, ms
 * since the start of the month, counter) as 32 upper-case hex chars for an
 * IPv4 address. Thread-safe; out must hold 33 bytes.
 */
void proto_uniq_id_new(const uint8_t ip4[4], char out[33]);

/* Java String.hashCode of the tag (UTF-16 code units); 0 for an empty tag. */
int64_t proto_tag_hash(const char *tag, size_t len);

/* One message of a SEND_BATCH_MESSAGE body (views into the body). */
typedef struct proto_batch_entry {
    int32_t flag;
    const uint8_t *body;
    uint32_t body_len;
    const char *props;
    uint32_t props_len;
} proto_batch_entry;

/*
 * Iterate a batch body: returns 1 and fills e for the next entry, 0 at the
 * clean end, LSMQ_ECORRUPT on a malformed entry. *pos starts at 0.
 */
int proto_batch_next(const uint8_t *body, size_t len, size_t *pos, proto_batch_entry *e);

/*
 * Encode one batch entry at out (cap bytes); returns its size, LSMQ_ETOOBIG
 * (cap too small, props over PROTO_PROPS_MAX), or LSMQ_EINVAL (a NULL view
 * with a non-zero length).
 */
long proto_batch_encode_entry(const proto_batch_entry *e, uint8_t *out, size_t cap);
size_t proto_batch_entry_size(const proto_batch_entry *e);

#endif
