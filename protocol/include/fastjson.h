/*
 * fastjson text, the JSON dialect of Java's RocketMQ (REMOTING.md §5.1),
 * both ways:
 *
 *  - reading: Java writes maps whose keys are not strings with the key as
 *    it is: {0:"ip:port"} for broker ids, {{"brokerName":"b","queueId":0,
 *    "topic":"t"}:{...}} for MessageQueue keys. No JSON parser takes either,
 *    so proto_fastjson_to_json rewrites such text as standard JSON first;
 *  - writing: string literals the way fastjson writes them, optionally in
 *    its BrowserCompatible form (only ASCII on the wire), with bytes that
 *    are not UTF-8 replaced as Java's decoder would.
 *
 * Conventions: text is pointer + length; results are malloc'ed and the
 * caller's. Pure, any thread.
 */
#ifndef LSMQ_PROTO_FASTJSON_H
#define LSMQ_PROTO_FASTJSON_H

#include <stddef.h>

#include "buf.h"

/* Deeper nesting than this is refused (LSMQ_ECORRUPT). */
#define PROTO_FASTJSON_MAX_DEPTH 128

/*
 * Rewrite fastjson text as compact standard JSON: a non-string map key
 * becomes a string, a number key its digits ({0:"a"} -> {"0":"a"}), an
 * object or array key its own compact JSON text ({{"queueId":0}:1} ->
 * {"{\"queueId\":0}":1}). Strings are copied untouched; whitespace outside
 * them is dropped. Structure (brackets, commas, colons, string ends) is
 * checked here; number syntax, escapes and UTF-8 are left to the JSON
 * parser that reads the result.
 *
 * @param[out] out malloc'ed NUL-terminated JSON; free() it.
 * @return 0, or LSMQ_ECORRUPT (not fastjson, or nested too deep).
 */
int proto_fastjson_to_json(const char *text, size_t len, char **out);

/*
 * Append s as a JSON string literal: quote and backslash escaped, control
 * characters as \u00XX. With ascii_only every character past 0x7F goes out
 * as \uXXXX (a surrogate pair past U+FFFF); otherwise UTF-8 is copied.
 * Bytes that are not UTF-8 become \ufffd either way, one per piece Java's
 * decoder would replace.
 */
void proto_json_put_string(proto_buf *b, const char *s, int ascii_only);

#endif
