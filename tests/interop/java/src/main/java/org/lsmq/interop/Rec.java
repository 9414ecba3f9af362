package org.lsmq.interop;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageExt;

/** What a listener saw of one delivered message, plus a thread-safe log of them. */
final class Rec {
    final String consumer;
    final String topic;
    final String tags;
    final String keys;
    final String body;
    final String idx;
    final String msgId;
    final String originMsgId;
    final String retryTopic;
    final int queueId;
    final long queueOffset;
    final int reconsumeTimes;
    final long atMillis;

    Rec(String consumer, MessageExt m) {
        this.consumer = consumer;
        this.topic = m.getTopic();
        this.tags = m.getTags();
        this.keys = m.getKeys();
        this.body = m.getBody() == null ? null : new String(m.getBody(), StandardCharsets.UTF_8);
        this.idx = m.getUserProperty(Scenarios.IDX_PROP);
        this.msgId = m.getMsgId();
        this.originMsgId = m.getProperty(MessageConst.PROPERTY_ORIGIN_MESSAGE_ID);
        this.retryTopic = m.getProperty(MessageConst.PROPERTY_RETRY_TOPIC);
        this.queueId = m.getQueueId();
        this.queueOffset = m.getQueueOffset();
        this.reconsumeTimes = m.getReconsumeTimes();
        this.atMillis = System.currentTimeMillis();
    }

    @Override
    public String toString() {
        return "{" + consumer + " topic=" + topic + " q=" + queueId + "@" + queueOffset + " tags=" + tags
            + " keys=" + keys + " body=" + body + " idx=" + idx + " reconsume=" + reconsumeTimes + "}";
    }

    /** Append-only log of deliveries. */
    static final class Log {
        private final List<Rec> all = new ArrayList<>();

        synchronized void add(Rec r) {
            all.add(r);
        }

        synchronized List<Rec> snapshot() {
            return new ArrayList<>(all);
        }

        /** deliveries per key */
        synchronized Map<String, Integer> countByKey() {
            Map<String, Integer> m = new HashMap<>();
            for (Rec r : all) {
                m.merge(String.valueOf(r.keys), 1, Integer::sum);
            }
            return m;
        }

        synchronized long distinctKeysIn(java.util.Set<String> wanted) {
            return all.stream().map(r -> r.keys).filter(wanted::contains).distinct().count();
        }
    }
}
