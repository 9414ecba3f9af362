package org.lsmq.interop;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/** The interop scenarios. Each creates its own topics and groups (fresh names every run). */
final class Scenarios {
    /** user property carrying the message's index, checked on delivery */
    static final String IDX_PROP = "lsmq_idx";

    private Scenarios() {
    }

    /** Expected content of one produced message. */
    record Sent(int idx, String key, String tags, String body, SendResult result) {
    }

    static Message msg(String topic, String tags, String key, String body, int idx) {
        Message m = new Message(topic, tags, key, body.getBytes(StandardCharsets.UTF_8));
        m.putUserProperty(IDX_PROP, Integer.toString(idx));
        return m;
    }

    /** Sends count messages one by one; returns key -> Sent for those acknowledged SEND_OK. */
    static Map<String, Sent> sendMany(Ctx ctx, DefaultMQProducer p, String topic, String keyPrefix, int count,
                                      java.util.function.IntFunction<String> tagOf) {
        Map<String, Sent> sent = new LinkedHashMap<>();
        Map<Integer, Integer> perQueue = new TreeMap<>();
        int errors = 0;
        long t = System.nanoTime();
        for (int i = 0; i < count; i++) {
            String tags = tagOf.apply(i);
            String key = keyPrefix + i + "_" + ctx.runId;
            String body = "body of " + key + " tagged " + tags;
            try {
                SendResult r = p.send(msg(topic, tags, key, body, i));
                if (r.getSendStatus() != SendStatus.SEND_OK) {
                    ctx.fail("send %s: status %s", key, r.getSendStatus());
                    errors++;
                } else {
                    sent.put(key, new Sent(i, key, tags, body, r));
                    perQueue.merge(r.getMessageQueue().getQueueId(), 1, Integer::sum);
                }
            } catch (Exception e) {
                ctx.fail("send %s threw %s", key, e);
                errors++;
            }
            if (errors > 5) {
                ctx.fail("too many send errors, giving up after %d messages", i + 1);
                break;
            }
        }
        ctx.info("sent %d/%d messages to %s in %.2fs; per queue %s", sent.size(), count, topic,
            (System.nanoTime() - t) / 1e9, perQueue);
        return sent;
    }

    /** Sends count messages; key -> Sent when every one was acknowledged SEND_OK, else null (no check recorded). */
    static Map<String, Sent> sendManyQuiet(DefaultMQProducer p, String topic, String keyPrefix, int count,
                                           String runId) {
        Map<String, Sent> sent = new LinkedHashMap<>();
        for (int i = 0; i < count; i++) {
            String key = keyPrefix + i + "_" + runId;
            String body = "body of " + key;
            try {
                SendResult r = p.send(msg(topic, "TagF", key, body, i));
                if (r.getSendStatus() != SendStatus.SEND_OK) {
                    return null;
                }
                sent.put(key, new Sent(i, key, "TagF", body, r));
            } catch (Exception e) {
                return null;
            }
        }
        return sent;
    }

    /** Asks the name server (through the producer) for the topic's write queues, retrying up to timeoutMs. */
    static List<MessageQueue> routeOf(Ctx ctx, DefaultMQProducer p, String topic, long timeoutMs) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        Exception last = null;
        while (System.currentTimeMillis() < deadline) {
            try {
                List<MessageQueue> mqs = p.fetchPublishMessageQueues(topic);
                if (mqs != null && !mqs.isEmpty()) {
                    return mqs;
                }
            } catch (Exception e) {
                last = e;
            }
            Thread.sleep(200);
        }
        ctx.info("no route for %s from the name server: %s", topic, last);
        return null;
    }

    static String mqName(MessageQueue mq) {
        return mq.getBrokerName() + ":" + mq.getQueueId();
    }

    /** Queues of topic this consumer currently holds a process queue for (its rebalance result). */
    static Set<String> owned(DefaultMQPushConsumer c, String topic) {
        Set<String> s = new TreeSet<>();
        for (MessageQueue mq : c.getDefaultMQPushConsumerImpl().getRebalanceImpl().getProcessQueueTable().keySet()) {
            if (mq.getTopic().equals(topic)) {
                s.add(mqName(mq));
            }
        }
        return s;
    }

    /** Checks one delivery against what was sent. */
    static void checkContent(Ctx ctx, Rec r, Sent s, String topic, List<String> problems) {
        if (!topic.equals(r.topic)) {
            problems.add("topic " + r.topic + " != " + topic + " in " + r);
        }
        if (!s.tags().equals(r.tags)) {
            problems.add("tags " + r.tags + " != " + s.tags() + " in " + r);
        }
        if (!s.body().equals(r.body)) {
            problems.add("body mismatch in " + r);
        }
        if (!Integer.toString(s.idx()).equals(r.idx)) {
            problems.add("user property " + IDX_PROP + "=" + r.idx + " != " + s.idx() + " in " + r);
        }
        if (s.result() != null && s.result().getMsgId() != null && !s.result().getMsgId().contains(String.valueOf(r.msgId))) {
            problems.add("msgId " + r.msgId + " not the one the send returned (" + s.result().getMsgId() + ") in " + r);
        }
    }

    static void report(Ctx ctx, String what, List<String> problems) {
        ctx.check(problems.isEmpty(), "%s (%d problems)%s", what, problems.size(),
            problems.isEmpty() ? "" : ": " + String.join("; ", problems.subList(0, Math.min(5, problems.size()))));
    }

    // ------------------------------------------------------------------ ready

    /**
     * Not a test: waits (bounded) until the name server returns a writable route for TBW102,
     * i.e. a broker has registered and allows auto-creation. Run before the scenarios.
     */
    static void ready(Ctx ctx) throws Exception {
        long timeoutMs = Long.getLong("lsmq.readyTimeoutSec", 50) * 1000;
        DefaultMQProducer p = ctx.producer(ctx.name("readyP"), 4);
        List<MessageQueue> route = routeOf(ctx, p, "TBW102", timeoutMs);
        ctx.check(route != null, "name server has a writable route for TBW102 (a broker registered with "
            + "autoCreateTopicEnable=true): %s", route == null ? "none" : route.size() + " queues");
    }

    // ------------------------------------------------------------------ produce-consume

    static void produceConsume(Ctx ctx) throws Exception {
        final int n = 200;
        String topic = ctx.name("pc");
        DefaultMQProducer p = ctx.producer(ctx.name("pcP"), 4);
        ctx.info("topic %s does not exist yet: the first send goes through TBW102 and creates it", topic);
        Map<String, Sent> sent = sendMany(ctx, p, topic, "pc", n, i -> i % 2 == 0 ? "TagA" : "TagB");
        ctx.check(sent.size() == n, "all %d sends acknowledged SEND_OK (%d)", n, sent.size());

        List<MessageQueue> route = routeOf(ctx, p, topic, 10_000);
        ctx.check(route != null, "name server has a route for the auto-created topic");
        if (route != null) {
            ctx.check(route.size() == 4, "auto-created topic has 4 write queues (defaultTopicQueueNums=4, TBW102 has 8): %d",
                route.size());
        }

        Map<String, Sent> tagA = new HashMap<>();
        Set<String> tagB = new HashSet<>();
        sent.forEach((k, s) -> {
            if (s.tags().equals("TagA")) {
                tagA.put(k, s);
            } else {
                tagB.add(k);
            }
        });

        Rec.Log log = new Rec.Log();
        DefaultMQPushConsumer c = ctx.consumer(ctx.name("pcC"), ctx.name("pcC") + "_1", topic, "TagA",
            (msgs, cc) -> {
                for (MessageExt m : msgs) {
                    log.add(new Rec("c1", m));
                }
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            });
        c.start();
        boolean all = Ctx.waitFor(40_000, () -> log.distinctKeysIn(tagA.keySet()) == tagA.size());
        ctx.check(all, "consumer subscribed to TagA received all %d TagA messages (%d distinct)", tagA.size(),
            log.distinctKeysIn(tagA.keySet()));
        Thread.sleep(3000); // anything unexpected arriving late shows up here

        List<Rec> got = log.snapshot();
        List<String> problems = new ArrayList<>();
        int tagBSeen = 0;
        int unknown = 0;
        for (Rec r : got) {
            Sent s = tagA.get(r.keys);
            if (s == null) {
                if (tagB.contains(r.keys)) {
                    tagBSeen++;
                } else {
                    unknown++;
                }
                problems.add("unexpected delivery " + r);
                continue;
            }
            checkContent(ctx, r, s, topic, problems);
        }
        ctx.check(tagBSeen == 0, "no TagB message delivered to the TagA subscriber (%d)", tagBSeen);
        ctx.check(unknown == 0, "no unknown message delivered (%d)", unknown);
        long dups = log.countByKey().values().stream().filter(v -> v > 1).count();
        ctx.check(dups == 0, "no TagA message delivered twice (%d keys repeated)", dups);
        report(ctx, "bodies, tags, keys, user property and msgId of every delivery match what was sent", problems);
    }

    // ------------------------------------------------------------------ clustering

    static void clustering(Ctx ctx) throws Exception {
        final int n = 200;
        String topic = ctx.name("cl");
        String group = ctx.name("clC");
        DefaultMQProducer p = ctx.producer(ctx.name("clP"), 8);
        SendResult warm = p.send(msg(topic, "Warm", "warmup_" + ctx.runId, "warm-up", -1));
        ctx.check(warm.getSendStatus() == SendStatus.SEND_OK, "warm-up send creates the topic with 8 queues: %s", warm.getSendStatus());
        List<MessageQueue> route = routeOf(ctx, p, topic, 10_000);
        ctx.check(route != null && route.size() >= 4, "name server route has >= 4 queues (%s)",
            route == null ? "none" : Integer.toString(route.size()));

        Map<String, Rec.Log> logs = new LinkedHashMap<>();
        List<DefaultMQPushConsumer> cs = new ArrayList<>();
        for (String name : List.of("A", "B")) {
            Rec.Log log = new Rec.Log();
            logs.put(name, log);
            DefaultMQPushConsumer c = ctx.consumer(group, group + "_" + name, topic, "*", (msgs, cc) -> {
                for (MessageExt m : msgs) {
                    log.add(new Rec(name, m));
                }
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            });
            c.start();
            cs.add(c);
            ctx.info("consumer %s started", name);
        }
        Set<String> allQueues = new TreeSet<>();
        for (MessageQueue mq : cs.get(0).fetchSubscribeMessageQueues(topic)) {
            allQueues.add(mqName(mq));
        }
        ctx.info("readable queues of %s: %s", topic, allQueues);

        // Wait for a stable split: disjoint, covering every queue, both non-empty, unchanged for 1 s.
        long since = -1;
        long deadline = System.currentTimeMillis() + 45_000;
        Set<String> a = Set.of();
        Set<String> b = Set.of();
        boolean stable = false;
        while (System.currentTimeMillis() < deadline) {
            Set<String> na = owned(cs.get(0), topic);
            Set<String> nb = owned(cs.get(1), topic);
            Set<String> union = new TreeSet<>(na);
            union.addAll(nb);
            boolean good = !na.isEmpty() && !nb.isEmpty() && union.equals(allQueues) && na.size() + nb.size() == union.size();
            if (good && na.equals(a) && nb.equals(b)) {
                if (System.currentTimeMillis() - since >= 1000) {
                    stable = true;
                    break;
                }
            } else {
                since = good ? System.currentTimeMillis() : -1;
                a = na;
                b = nb;
            }
            Thread.sleep(50);
        }
        ctx.check(stable, "rebalance split the %d queues between A %s and B %s", allQueues.size(), a, b);
        if (stable && ctx.elapsed() > 25) {
            ctx.info("note: the split took long; NOTIFY_CONSUMER_IDS_CHANGED probably did not arrive (periodic rebalance is 20 s)");
        }
        Set<String> ownA = a;
        Set<String> ownB = b;

        Map<String, Sent> sent = sendMany(ctx, p, topic, "cl", n, i -> "T" + (i % 3));
        ctx.check(sent.size() == n, "all %d sends acknowledged SEND_OK (%d)", n, sent.size());
        boolean all = Ctx.waitFor(40_000, () -> {
            Set<String> keys = new HashSet<>();
            for (Rec.Log l : logs.values()) {
                for (Rec r : l.snapshot()) {
                    keys.add(r.keys);
                }
            }
            return keys.containsAll(sent.keySet());
        });
        Thread.sleep(2000);

        Map<String, List<String>> whoGot = new HashMap<>();
        List<String> problems = new ArrayList<>();
        Map<String, Integer> perConsumer = new TreeMap<>();
        for (Map.Entry<String, Rec.Log> e : logs.entrySet()) {
            Set<String> own = e.getKey().equals("A") ? ownA : ownB;
            for (Rec r : e.getValue().snapshot()) {
                Sent s = sent.get(r.keys);
                if (s == null) {
                    continue; // the warm-up message
                }
                perConsumer.merge(e.getKey(), 1, Integer::sum);
                whoGot.computeIfAbsent(r.keys, k -> new ArrayList<>()).add(e.getKey());
                checkContent(ctx, r, s, topic, problems);
                if (own.stream().noneMatch(q -> q.endsWith(":" + r.queueId))) {
                    problems.add("consumer " + e.getKey() + " got a message of a queue it does not own: " + r);
                }
            }
        }
        long lost = sent.keySet().stream().filter(k -> !whoGot.containsKey(k)).count();
        long both = whoGot.values().stream().filter(l -> new HashSet<>(l).size() > 1).count();
        long sameTwice = whoGot.values().stream().filter(l -> new HashSet<>(l).size() < l.size()).count();
        ctx.check(all && lost == 0, "no message lost: %d of %d delivered (%d lost)", n - lost, n, lost);
        ctx.check(both == 0, "no message delivered to both consumers (%d)", both);
        ctx.check(sameTwice == 0, "no message delivered twice to one consumer (%d)", sameTwice);
        ctx.check(perConsumer.getOrDefault("A", 0) > 0 && perConsumer.getOrDefault("B", 0) > 0,
            "both consumers received messages: %s", perConsumer);
        report(ctx, "content of every delivery matches and comes from a queue the consumer owns", problems);
    }

    // ------------------------------------------------------------------ offset-resume

    static void offsetResume(Ctx ctx) throws Exception {
        final int n1 = 40;
        final int n2 = 40;
        final int tolerance = 4;
        String topic = ctx.name("or");
        String group = ctx.name("orC");
        DefaultMQProducer p = ctx.producer(ctx.name("orP"), 4);
        Map<String, Sent> first = sendMany(ctx, p, topic, "first", n1, i -> "First");
        ctx.check(first.size() == n1, "first batch: %d sends acknowledged (%d)", n1, first.size());

        Rec.Log log1 = new Rec.Log();
        DefaultMQPushConsumer c1 = ctx.consumer(group, group + "_1", topic, "*", (msgs, cc) -> {
            for (MessageExt m : msgs) {
                log1.add(new Rec("c1", m));
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c1.start();
        boolean all1 = Ctx.waitFor(40_000, () -> log1.distinctKeysIn(first.keySet()) == n1);
        ctx.check(all1, "first consumer received the first batch (%d/%d)", log1.distinctKeysIn(first.keySet()), n1);
        Thread.sleep(1500); // consume offsets advance right after the listener returns
        long tShut = System.nanoTime();
        ctx.shutdown(c1);
        ctx.info("first consumer shut down in %.2fs (offsets are committed on shutdown)", (System.nanoTime() - tShut) / 1e9);

        Map<String, Sent> second = sendMany(ctx, p, topic, "second", n2, i -> "Second");
        ctx.check(second.size() == n2, "second batch: %d sends acknowledged (%d)", n2, second.size());

        Rec.Log log2 = new Rec.Log();
        DefaultMQPushConsumer c2 = ctx.consumer(group, group + "_2", topic, "*", (msgs, cc) -> {
            for (MessageExt m : msgs) {
                log2.add(new Rec("c2", m));
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c2.start();
        boolean all2 = Ctx.waitFor(40_000, () -> log2.distinctKeysIn(second.keySet()) == n2);
        ctx.check(all2, "second consumer of the same group received the whole second batch (%d/%d)",
            log2.distinctKeysIn(second.keySet()), n2);
        Thread.sleep(3000);
        long again = log2.distinctKeysIn(first.keySet());
        ctx.check(again <= tolerance, "second consumer resumed from the committed offsets: %d first-batch messages redelivered (tolerance %d)",
            again, tolerance);
        List<String> problems = new ArrayList<>();
        Map<String, Sent> both = new HashMap<>(first);
        both.putAll(second);
        for (Rec r : log2.snapshot()) {
            Sent s = both.get(r.keys);
            if (s == null) {
                problems.add("unexpected delivery " + r);
            } else {
                checkContent(ctx, r, s, topic, problems);
            }
        }
        report(ctx, "content of every delivery to the second consumer matches", problems);
    }

    // ------------------------------------------------------------------ retry

    static void retry(Ctx ctx) throws Exception {
        final int n = 2;
        String topic = ctx.name("rt");
        String group = ctx.name("rtC");
        String retryTopic = "%RETRY%" + group;
        DefaultMQProducer p = ctx.producer(ctx.name("rtP"), 4);
        Map<String, Sent> sent = sendMany(ctx, p, topic, "retry", n, i -> "TagR");
        ctx.check(sent.size() == n, "%d sends acknowledged (%d)", n, sent.size());

        Rec.Log log = new Rec.Log();
        Map<String, Integer> calls = new ConcurrentHashMap<>();
        DefaultMQPushConsumer c = ctx.consumer(group, group + "_1", topic, "*", (msgs, cc) -> {
            boolean later = false;
            for (MessageExt m : msgs) {
                log.add(new Rec("c", m));
                if (calls.merge(String.valueOf(m.getKeys()), 1, Integer::sum) == 1) {
                    later = true;
                }
            }
            return later ? ConsumeConcurrentlyStatus.RECONSUME_LATER : ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.setConsumeMessageBatchMaxSize(1);
        c.start();
        AtomicLong retryQueueAt = new AtomicLong(-1);
        boolean redelivered = Ctx.waitFor(50_000, () -> {
            if (retryQueueAt.get() < 0 && !owned(c, retryTopic).isEmpty()) {
                retryQueueAt.set(System.currentTimeMillis());
                ctx.info("consumer now pulls %s %s", retryTopic, owned(c, retryTopic));
            }
            Set<String> done = new HashSet<>();
            for (Rec r : log.snapshot()) {
                if (r.reconsumeTimes >= 1) {
                    done.add(r.keys);
                }
            }
            return done.containsAll(sent.keySet());
        });
        Thread.sleep(1500);
        ctx.check(redelivered, "every message returned RECONSUME_LATER was redelivered with reconsumeTimes >= 1");

        List<String> problems = new ArrayList<>();
        for (Sent s : sent.values()) {
            List<Rec> rs = log.snapshot().stream().filter(r -> s.key().equals(r.keys)).toList();
            ctx.info("deliveries of %s: %s", s.key(), rs);
            if (rs.isEmpty()) {
                problems.add(s.key() + " never delivered");
                continue;
            }
            Rec r0 = rs.get(0);
            if (r0.reconsumeTimes != 0) {
                problems.add("first delivery has reconsumeTimes " + r0.reconsumeTimes);
            }
            checkContent(ctx, r0, s, topic, problems);
            if (rs.size() < 2) {
                continue;
            }
            Rec r1 = rs.get(1);
            ctx.info("%s redelivered %.1fs after the first delivery, reconsumeTimes=%d, RETRY_TOPIC=%s, ORIGIN_MESSAGE_ID=%s",
                s.key(), (r1.atMillis - r0.atMillis) / 1000.0, r1.reconsumeTimes, r1.retryTopic, r1.originMsgId);
            if (r1.reconsumeTimes != 1) {
                problems.add("first redelivery has reconsumeTimes " + r1.reconsumeTimes + " (expected 1)");
            }
            // the client puts the original topic back (from RETRY_TOPIC) before calling the listener
            checkContent(ctx, r1, s, topic, problems);
            if (!topic.equals(r1.retryTopic)) {
                problems.add("redelivery's RETRY_TOPIC property is " + r1.retryTopic + ", expected " + topic);
            }
            if (r1.originMsgId == null) {
                problems.add("redelivery has no ORIGIN_MESSAGE_ID property");
            }
            if (rs.size() > 2) {
                problems.add(s.key() + " delivered " + rs.size() + " times although the redelivery succeeded");
            }
        }
        report(ctx, "first delivery and redelivery carry the original topic, body, tags, keys, properties and msgId", problems);
    }

    // ------------------------------------------------------------------ batch

    static void batch(Ctx ctx) throws Exception {
        final int n = 10;
        String topic = ctx.name("bt");
        DefaultMQProducer p = ctx.producer(ctx.name("btP"), 4);
        SendResult warm = p.send(msg(topic, "Warm", "warmup_" + ctx.runId, "warm-up", -1));
        ctx.check(warm.getSendStatus() == SendStatus.SEND_OK, "warm-up send creates the topic: %s", warm.getSendStatus());

        List<Message> batch = new ArrayList<>();
        List<Sent> expected = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String key = "batch" + i + "_" + ctx.runId;
            String body = "batch body " + i + " of " + ctx.runId;
            batch.add(msg(topic, "TagBatch", key, body, i));
            expected.add(new Sent(i, key, "TagBatch", body, null));
        }
        SendResult r = p.send(batch);
        ctx.info("batch send result: %s", r);
        ctx.check(r.getSendStatus() == SendStatus.SEND_OK, "batch of %d acknowledged SEND_OK (%s)", n, r.getSendStatus());
        String[] ids = r.getMsgId() == null ? new String[0] : r.getMsgId().split(",");
        String[] offIds = r.getOffsetMsgId() == null ? new String[0] : r.getOffsetMsgId().split(",");
        ctx.check(ids.length == n, "send result msgId lists %d ids (%d)", n, ids.length);
        ctx.check(offIds.length == n, "send result offsetMsgId (broker's msgId header) lists %d ids (%d)", n, offIds.length);
        final int queue = r.getMessageQueue().getQueueId();
        final long base = r.getQueueOffset();

        Rec.Log log = new Rec.Log();
        Set<String> keys = new HashSet<>();
        expected.forEach(s -> keys.add(s.key()));
        DefaultMQPushConsumer c = ctx.consumer(ctx.name("btC"), ctx.name("btC") + "_1", topic, "*", (msgs, cc) -> {
            for (MessageExt m : msgs) {
                log.add(new Rec("c", m));
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        // one consume thread: deliveries reach the listener in pull order
        c.setConsumeThreadMin(1);
        c.setConsumeThreadMax(1);
        c.start();
        boolean all = Ctx.waitFor(40_000, () -> log.distinctKeysIn(keys) == n);
        Thread.sleep(1000);
        ctx.check(all, "all %d batch messages consumed (%d)", n, log.distinctKeysIn(keys));

        List<Rec> got = log.snapshot().stream().filter(x -> keys.contains(x.keys)).toList();
        List<String> problems = new ArrayList<>();
        List<String> idProblems = new ArrayList<>();
        for (int j = 0; j < got.size(); j++) {
            Rec x = got.get(j);
            int i = x.idx == null ? -1 : Integer.parseInt(x.idx);
            if (i != j) {
                problems.add("delivery #" + j + " is batch message #" + i + " (out of order or repeated)");
            }
            if (i < 0 || i >= n) {
                continue;
            }
            Sent s = expected.get(i);
            checkContent(ctx, x, s, topic, problems);
            if (x.queueId != queue) {
                problems.add("message #" + i + " in queue " + x.queueId + ", the batch went to queue " + queue);
            }
            if (x.queueOffset != base + i) {
                problems.add("message #" + i + " at queue offset " + x.queueOffset + ", expected " + (base + i));
            }
            if (ids.length == n && !ids[i].equals(x.msgId)) {
                idProblems.add("message #" + i + " msgId " + x.msgId + " != send result's " + ids[i]);
            }
        }
        ctx.check(got.size() == n, "each batch message delivered once (%d deliveries)", got.size());
        Set<String> deliveredIds = new HashSet<>();
        got.forEach(x -> deliveredIds.add(x.msgId));
        if (got.size() > 1 && deliveredIds.size() == 1 && !Arrays.asList(ids).containsAll(deliveredIds)) {
            // Upstream brokers up to 5.3.3 (seen with 4.9.7 and 5.3.3; 5.4.0 no longer does it)
            // append the batch's own properties to every entry. Since the 5.x producer gives the
            // batch itself a UNIQ_KEY, every entry then decodes with that one id (apache/rocketmq
            // issue 9416). The entry's own properties are what must be stored.
            ctx.info("every batch message came back with the same msgId %s: the broker appended the batch-level "
                + "properties (header 'i') to each entry, as upstream brokers <= 5.3.3 do (apache/rocketmq#9416)", deliveredIds);
        }
        report(ctx, "batch delivered in send order at consecutive offsets of one queue, content intact", problems);
        report(ctx, "each batch message is delivered with its own msgId (UNIQ_KEY) as the send result listed it", idProblems);
        ctx.info("queue %d offsets %d..%d; msgIds %s", queue, base, base + n - 1, Arrays.toString(ids));
    }
}
