/*
 * How mqadmin shows a stored message: the detail block of upstream's
 * QueryMsgByIdSubCommand.printMsg, the one-line MessageExt.toString that
 * printMsg uses, and the JSON object --json prints for a message.
 *
 * Upstream writes the body to /tmp/rocketmq/msgbodys/<id> and prints the
 * path; here the body is printed instead ("Message Body:"), as text with
 * control bytes escaped, so nothing is left behind on disk.
 */
#include <stdio.h>
#include <string.h>

#include "mqadmin.h"

/* Java's "[" + value + "]" for a String that may be null. */
static const char *or_null(const char *s)
{
    return s ? s : "null";
}

/* The body as one line of text: \n, \t, \\ and other control bytes escaped. */
static void put_body(FILE *out, const lsmq_message *m)
{
    size_t len = 0;
    const unsigned char *p = lsmq_message_body(m, &len);

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = p[i];
        if (ch == '\n')
            fputs("\\n", out);
        else if (ch == '\t')
            fputs("\\t", out);
        else if (ch == '\\')
            fputs("\\\\", out);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(out, "\\x%02x", ch);
        else
            fputc(ch, out);
    }
}

/* Java's HashMap.toString of the properties, in stored order: {A=1, B=2}. */
static void print_properties(FILE *out, const lsmq_message *m)
{
    size_t n = lsmq_message_property_count(m);

    fputc('{', out);
    for (size_t i = 0; i < n; i++) {
        const char *value = NULL;
        const char *name = lsmq_message_property_at(m, i, &value);
        fprintf(out, "%s%s=%s", i ? ", " : "", name, value ? value : "");
    }
    fputc('}', out);
}

void mqa_print_message(const lsmq_message *m, int with_offset_id)
{
    char when[64], host[96];

    if (with_offset_id)
        printf("%-20s %s\n", "OffsetID:", lsmq_message_offset_id(m));
    printf("%-20s %s\n", "Topic:", lsmq_message_topic(m));
    printf("%-20s [%s]\n", "Tags:", or_null(lsmq_message_tags(m)));
    printf("%-20s [%s]\n", "Keys:", or_null(lsmq_message_keys(m)));
    printf("%-20s %d\n", "Queue ID:", lsmq_message_queue_id(m));
    printf("%-20s %lld\n", "Queue Offset:", (long long)lsmq_message_queue_offset(m));
    printf("%-20s %lld\n", "CommitLog Offset:", (long long)lsmq_message_commit_log_offset(m));
    printf("%-20s %d\n", "Reconsume Times:", lsmq_message_reconsume_times(m));
    printf("%-20s %s\n", "Born Timestamp:",
           mqa_time(lsmq_message_born_timestamp(m), 1, when, sizeof when));
    printf("%-20s %s\n", "Store Timestamp:",
           mqa_time(lsmq_message_store_timestamp(m), 1, when, sizeof when));
    printf("%-20s %s\n", "Born Host:", lsmq_admin_message_born_host(m, host, sizeof host));
    printf("%-20s %s\n", "Store Host:", lsmq_admin_message_store_host(m, host, sizeof host));
    printf("%-20s %d\n", "System Flag:", lsmq_message_sys_flag(m));
    printf("%-20s ", "Properties:");
    print_properties(stdout, m);
    printf("\n%-20s ", "Message Body:");
    put_body(stdout, m);
    printf("\n");
}

void mqa_print_message_line(const lsmq_message *m, int print_body)
{
    char born[96], store[96];
    size_t len = 0;

    lsmq_message_body(m, &len);
    printf("MSGID: %s MessageExt [brokerName=%s, queueId=%d, queueOffset=%lld, sysFlag=%d, "
           "bornTimestamp=%lld, bornHost=/%s, storeTimestamp=%lld, storeHost=/%s, msgId=%s, "
           "commitLogOffset=%lld, reconsumeTimes=%d, toString()=Message{topic='%s', flag=%d, "
           "properties=",
           lsmq_message_id(m), lsmq_message_broker_name(m), lsmq_message_queue_id(m),
           (long long)lsmq_message_queue_offset(m), lsmq_message_sys_flag(m),
           (long long)lsmq_message_born_timestamp(m),
           lsmq_admin_message_born_host(m, born, sizeof born),
           (long long)lsmq_message_store_timestamp(m),
           lsmq_admin_message_store_host(m, store, sizeof store), lsmq_message_offset_id(m),
           (long long)lsmq_message_commit_log_offset(m), lsmq_message_reconsume_times(m),
           lsmq_message_topic(m), lsmq_message_flag(m));
    print_properties(stdout, m);
    printf(", bodyLength=%zu}] BODY: ", len);
    if (print_body)
        put_body(stdout, m);
    else
        printf("NOT PRINT BODY");
    printf("\n");
}

static json_t *str_or_null(const char *s)
{
    return s ? mqa_json_str(s) : json_null();
}

json_t *mqa_message_json(const lsmq_message *m, int with_body)
{
    char host[96];
    size_t len = 0;
    const char *body = lsmq_message_body(m, &len);
    json_t *o = json_object(), *props = json_object();

    json_object_set_new(o, "msgId", mqa_json_str(lsmq_message_id(m)));
    json_object_set_new(o, "offsetMsgId", mqa_json_str(lsmq_message_offset_id(m)));
    json_object_set_new(o, "topic", mqa_json_str(lsmq_message_topic(m)));
    json_object_set_new(o, "tags", str_or_null(lsmq_message_tags(m)));
    json_object_set_new(o, "keys", str_or_null(lsmq_message_keys(m)));
    json_object_set_new(o, "brokerName", mqa_json_str(lsmq_message_broker_name(m)));
    json_object_set_new(o, "queueId", json_integer(lsmq_message_queue_id(m)));
    json_object_set_new(o, "queueOffset", json_integer(lsmq_message_queue_offset(m)));
    json_object_set_new(o, "commitLogOffset", json_integer(lsmq_message_commit_log_offset(m)));
    json_object_set_new(o, "reconsumeTimes", json_integer(lsmq_message_reconsume_times(m)));
    json_object_set_new(o, "bornTimestamp", json_integer(lsmq_message_born_timestamp(m)));
    json_object_set_new(o, "storeTimestamp", json_integer(lsmq_message_store_timestamp(m)));
    json_object_set_new(o, "bornHost",
                        mqa_json_str(lsmq_admin_message_born_host(m, host, sizeof host)));
    json_object_set_new(o, "storeHost",
                        mqa_json_str(lsmq_admin_message_store_host(m, host, sizeof host)));
    json_object_set_new(o, "sysFlag", json_integer(lsmq_message_sys_flag(m)));
    json_object_set_new(o, "flag", json_integer(lsmq_message_flag(m)));
    for (size_t i = 0; i < lsmq_message_property_count(m); i++) {
        const char *value = NULL;
        const char *name = lsmq_message_property_at(m, i, &value);
        json_object_set_new(props, name, mqa_json_str(value));
    }
    json_object_set_new(o, "properties", props);
    json_object_set_new(o, "bodyLength", json_integer((json_int_t)len));
    if (with_body) {
        /* null when the body is not UTF-8 text */
        json_t *text = json_stringn(body ? body : "", len);
        json_object_set_new(o, "body", text ? text : json_null());
    }
    return o;
}

/* Whether `word` is one of the space-separated words of `list`. */
static int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, word, n) == 0)
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

int mqa_keys_contain(const lsmq_message *m, const char *key)
{
    return has_word(lsmq_message_keys(m), key);
}

int mqa_tags_match(const lsmq_message *m, const char *expr)
{
    const char *tags = lsmq_message_tags(m);
    for (const char *p = expr; p;) {
        const char *bar = strstr(p, "||");
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        while (len > 0 && *p == ' ')
            p++, len--;
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if ((len == 1 && *p == '*') ||
            (tags && strlen(tags) == len && strncmp(tags, p, len) == 0))
            return 1;
        p = bar ? bar + 2 : NULL;
    }
    return 0;
}
