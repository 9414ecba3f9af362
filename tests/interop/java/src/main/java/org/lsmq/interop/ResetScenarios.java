package org.lsmq.interop;

import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;

/**
 * Retroactive consumption: a group's offsets reset to an instant with the admin API
 * (DefaultMQAdminExt, what mqadmin resetOffsetByTime runs), and CONSUME_FROM_TIMESTAMP.
 */
final class ResetScenarios {
    /** ResponseCode.CONSUMER_NOT_ONLINE (the class moved packages between 4.x and 5.x) */
    static final int CONSUMER_NOT_ONLINE = 206;

    private ResetScenarios() {
    }

    /** Where each queue's first message of the batch is: queueId -> lowest queue offset. */
    static Map<Integer, Long> firstOffsets(Map<String, Scenarios.Sent> batch) {
        Map<Integer, Long> first = new TreeMap<>();
        for (Scenarios.Sent s : batch.values()) {
            first.merge(s.result().getMessageQueue().getQueueId(), s.result().getQueueOffset(), Math::min);
        }
        return first;
    }

    static DefaultMQPushConsumer logging(Ctx ctx, String group, String instance, String topic, String who, Rec.Log log)
        throws Exception {
        return ctx.consumer(group, instance, topic, "*", (msgs, cc) -> {
            for (MessageExt m : msgs) {
                log.add(new Rec(who, m));
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
    }

    /**
     * As mqadmin resetOffsetByTime: INVOKE_BROKER_TO_RESET_OFFSET to each broker of the topic;
     * when a broker answers CONSUMER_NOT_ONLINE (upstream brokers do for a group with no member
     * online), the offsets are committed directly (resetOffsetByTimestampOld).
     */
    static void resetGroupToTime(Ctx ctx, String topic, String group, long t) throws Exception {
        DefaultMQAdminExt admin = new DefaultMQAdminExt();
        admin.setNamesrvAddr(ctx.namesrv);
        admin.setInstanceName("admin_" + group);
        admin.start();
        try {
            Map<MessageQueue, Long> table = admin.resetOffsetByTimestamp(topic, group, t, true);
            Map<String, Long> byQueue = new TreeMap<>();
            table.forEach((mq, off) -> byQueue.put(Scenarios.mqName(mq), off));
            ctx.info("resetOffsetByTimestamp(%d) answered %s", t, byQueue);
        } catch (MQClientException e) {
            if (e.getResponseCode() != CONSUMER_NOT_ONLINE) {
                throw e;
            }
            var stats = admin.resetOffsetByTimestampOld(group, topic, t, true);
            ctx.info("group offline (CONSUMER_NOT_ONLINE): offsets committed directly, %d queues", stats.size());
        } finally {
            admin.shutdown();
        }
    }

    /** The admin API's SEARCH_OFFSET_BY_TIMESTAMP for each queue of the topic. */
    static Map<Integer, Long> searchOffsets(Ctx ctx, DefaultMQProducer p, String topic, long t) throws Exception {
        Map<Integer, Long> found = new TreeMap<>();
        for (MessageQueue mq : Scenarios.routeOf(ctx, p, topic, 10_000)) {
            found.put(mq.getQueueId(), p.searchOffset(mq, t));
        }
        return found;
    }

    /**
     * Checks that log holds only messages of `expected`, and that the lowest offset delivered
     * from each queue is start.get(queueId) (listener threads run concurrently, so the log is
     * not in queue order); returns the problems.
     */
    static List<String> startsAt(Rec.Log log, Map<String, Scenarios.Sent> expected, Map<Integer, Long> start,
                                 String topic, Ctx ctx) {
        List<String> problems = new ArrayList<>();
        Map<Integer, Long> lowest = new TreeMap<>();
        for (Rec r : log.snapshot()) {
            Scenarios.Sent s = expected.get(r.keys);
            if (s == null) {
                problems.add("unexpected delivery " + r);
                continue;
            }
            lowest.merge(r.queueId, r.queueOffset, Math::min);
            Scenarios.checkContent(ctx, r, s, topic, problems);
        }
        if (!lowest.equals(start)) {
            problems.add("lowest offset delivered per queue " + lowest + ", expected " + start);
        }
        return problems;
    }

    static void resetByTime(Ctx ctx) throws Exception {
        final int n = 10;
        String topic = ctx.name("rs");
        String group = ctx.name("rsC");
        DefaultMQProducer p = ctx.producer(ctx.name("rsP"), 4);
        Map<String, Scenarios.Sent> before = Scenarios.sendMany(ctx, p, topic, "before", n, i -> "Before");
        // T on a whole second, since consumeTimestamp (yyyyMMddHHmmss) cannot name a finer instant;
        // both batches at least 50 ms away from it
        long t = (System.currentTimeMillis() + 50) / 1000 * 1000 + 1000;
        Thread.sleep(Math.max(0, t + 50 - System.currentTimeMillis()));
        Map<String, Scenarios.Sent> after = Scenarios.sendMany(ctx, p, topic, "after", n, i -> "After");
        ctx.check(before.size() == n && after.size() == n, "both batches acknowledged (%d, %d)", before.size(), after.size());
        Map<String, Scenarios.Sent> all = new HashMap<>(before);
        all.putAll(after);
        Map<Integer, Long> firstAfter = firstOffsets(after);

        Map<Integer, Long> searched = searchOffsets(ctx, p, topic, t);
        Map<Integer, Long> expectSearched = new TreeMap<>();
        searched.keySet().forEach(q -> expectSearched.put(q, firstAfter.getOrDefault(q, searched.get(q))));
        ctx.check(searched.equals(expectSearched),
            "searchOffset(T) of each queue is its first message stored at or after T: %s (expected %s)", searched, expectSearched);

        Rec.Log log1 = new Rec.Log();
        DefaultMQPushConsumer c1 = logging(ctx, group, group + "_1", topic, "c1", log1);
        c1.start();
        boolean all1 = Ctx.waitFor(30_000, () -> log1.distinctKeysIn(all.keySet()) == 2 * n);
        ctx.check(all1, "member 1 received both batches (%d/%d)", log1.distinctKeysIn(all.keySet()), 2 * n);
        Thread.sleep(1000); // consume offsets advance right after the listener returns
        ctx.shutdown(c1);

        resetGroupToTime(ctx, topic, group, t);
        Rec.Log log2 = new Rec.Log();
        logging(ctx, group, group + "_2", topic, "c2", log2).start();
        boolean all2 = Ctx.waitFor(30_000, () -> log2.distinctKeysIn(after.keySet()) == n);
        ctx.check(all2, "member 2 received the batch stored after T again (%d/%d)", log2.distinctKeysIn(after.keySet()), n);
        Thread.sleep(1500);
        Scenarios.report(ctx, "after the reset, each queue resumed at its first message stored at or after T, nothing earlier",
            startsAt(log2, after, firstAfter, topic, ctx));

        // A new group with CONSUME_FROM_TIMESTAMP. The client searches by time only when the
        // broker has no offset (QUERY_NOT_FOUND); for a new group on a queue that still holds
        // offset 0, brokers (upstream and lsmq alike, REMOTING.md §3.3) answer 0, so the group
        // starts at each queue's first message.
        Rec.Log log3 = new Rec.Log();
        String tsGroup = ctx.name("rsT");
        DefaultMQPushConsumer c3 = logging(ctx, tsGroup, tsGroup + "_1", topic, "c3", log3);
        c3.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_TIMESTAMP);
        c3.setConsumeTimestamp(DateTimeFormatter.ofPattern("yyyyMMddHHmmss").withZone(ZoneId.systemDefault())
            .format(Instant.ofEpochMilli(t)));
        c3.start();
        boolean all3 = Ctx.waitFor(30_000, () -> log3.distinctKeysIn(all.keySet()) == 2 * n);
        ctx.check(all3, "new CONSUME_FROM_TIMESTAMP group (consumeTimestamp %s) received both batches (%d/%d)",
            c3.getConsumeTimestamp(), log3.distinctKeysIn(all.keySet()), 2 * n);
        Thread.sleep(1000);
        Map<Integer, Long> zero = new TreeMap<>();
        firstOffsets(all).keySet().forEach(q -> zero.put(q, 0L));
        Scenarios.report(ctx, "the new group started each queue at offset 0 (the broker's answer for a new group)",
            startsAt(log3, all, zero, topic, ctx));
    }
}
