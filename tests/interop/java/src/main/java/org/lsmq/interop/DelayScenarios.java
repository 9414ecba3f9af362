package org.lsmq.interop;

import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageAccessor;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * Delayed delivery: delay levels, 5.x timer messages, retry back-off and dead letters.
 * The broker's delay table comes from LSMQ_DELAY_LEVELS (what against-lsmq.sh starts the
 * broker with; upstream's default table otherwise). A delivery must never come earlier than
 * its due time minus LSMQ_DELAY_TOLERANCE_MS (default 50 ms: the clock is the same machine's)
 * and within LATE_MS after it.
 */
final class DelayScenarios {
    static final String UPSTREAM_LEVELS = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";
    static final long LATE_MS = 10_000;

    private DelayScenarios() {
    }

    /** Delay of each level in ms, index 0 = level 1 (upstream's messageDelayLevel format). */
    static long[] levels() {
        String s = System.getenv("LSMQ_DELAY_LEVELS");
        String[] parts = (s == null || s.isBlank() ? UPSTREAM_LEVELS : s.trim()).split(" +");
        long[] ms = new long[parts.length];
        for (int i = 0; i < parts.length; i++) {
            String p = parts[i];
            long unit = switch (p.charAt(p.length() - 1)) {
                case 's' -> 1000L;
                case 'm' -> 60_000L;
                case 'h' -> 3_600_000L;
                case 'd' -> 86_400_000L;
                default -> throw new IllegalArgumentException("bad delay level " + p);
            };
            ms[i] = Long.parseLong(p.substring(0, p.length() - 1)) * unit;
        }
        return ms;
    }

    static long levelMs(int level) {
        long[] t = levels();
        return t[Math.min(level, t.length) - 1];
    }

    static long tolerance() {
        String s = System.getenv("LSMQ_DELAY_TOLERANCE_MS");
        return s == null || s.isBlank() ? 50 : Long.parseLong(s.trim());
    }

    /** One delivery: when the listener saw it, and what. */
    record Seen(long at, String key, String msgId, String topic, int reconsumeTimes, long storeMs, String body) {
        static Seen of(MessageExt m) {
            return new Seen(System.currentTimeMillis(), m.getKeys(), m.getMsgId(), m.getTopic(), m.getReconsumeTimes(),
                m.getStoreTimestamp(), new String(m.getBody(), StandardCharsets.UTF_8));
        }
    }

    /** Thread-safe deliveries by key. */
    static final class Seens {
        final Map<String, List<Seen>> byKey = new ConcurrentHashMap<>();

        void add(Seen s) {
            byKey.computeIfAbsent(String.valueOf(s.key()), k -> new ArrayList<>());
            synchronized (this) {
                byKey.get(String.valueOf(s.key())).add(s);
            }
        }

        synchronized List<Seen> of(String key) {
            return new ArrayList<>(byKey.getOrDefault(key, List.of()));
        }

        synchronized int count(String key) {
            return byKey.getOrDefault(key, List.of()).size();
        }
    }

    /** A warm-up send creates the topic; a consumer of it is started and has received it. */
    static DefaultMQPushConsumer readyConsumer(Ctx ctx, DefaultMQProducer p, String topic, String group, Seens seen,
                                               ConsumeConcurrentlyStatus answer) throws Exception {
        String warmKey = "warm_" + ctx.runId;
        SendResult w = p.send(new Message(topic, "TagD", warmKey, "warm-up".getBytes(StandardCharsets.UTF_8)));
        ctx.check(w.getSendStatus() == SendStatus.SEND_OK, "warm-up send creates %s: %s", topic, w.getSendStatus());
        DefaultMQPushConsumer c = ctx.consumer(group, group + "_1", topic, "*", (msgs, cc) -> {
            ConsumeConcurrentlyStatus st = ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            for (MessageExt m : msgs) {
                seen.add(Seen.of(m));
                if (!warmKey.equals(m.getKeys())) {
                    st = answer;
                }
            }
            return st;
        });
        c.setConsumeMessageBatchMaxSize(1);
        c.start();
        ctx.check(Ctx.waitFor(30_000, () -> seen.count(warmKey) > 0), "the consumer is running (warm-up received)");
        return c;
    }

    /** Checks one key's single delivery against its due time. */
    static void checkDue(Ctx ctx, Seens seen, String key, String msgId, long due, List<String> problems) {
        List<Seen> got = seen.of(key);
        if (got.size() != 1) {
            problems.add(key + " delivered " + got.size() + " times (expected once)");
            return;
        }
        Seen s = got.get(0);
        ctx.info("%s due %d: received %+d ms, stored %+d ms from due", key, due, s.at() - due, s.storeMs() - due);
        if (s.at() < due - tolerance()) {
            problems.add(key + " received " + (due - s.at()) + " ms before its due time");
        }
        if (s.storeMs() < due - tolerance()) {
            problems.add(key + " stored (made visible) " + (due - s.storeMs()) + " ms before its due time");
        }
        if (s.at() > due + LATE_MS) {
            problems.add(key + " received " + (s.at() - due) + " ms after its due time");
        }
        if (!msgId.equals(s.msgId())) {
            problems.add(key + " delivered with msgId " + s.msgId() + ", the send returned " + msgId);
        }
    }

    // ------------------------------------------------------------------ delay-level

    static void delayLevel(Ctx ctx) throws Exception {
        final int n = 4;
        final int level = 2;
        String topic = ctx.name("dl");
        DefaultMQProducer p = ctx.producer(ctx.name("dlP"), 4);
        Seens seen = new Seens();
        readyConsumer(ctx, p, topic, ctx.name("dlC"), seen, ConsumeConcurrentlyStatus.CONSUME_SUCCESS);
        long delay = levelMs(level);
        Map<String, long[]> due = new ConcurrentHashMap<>();
        Map<String, String> ids = new ConcurrentHashMap<>();
        for (int i = 0; i < n; i++) {
            String key = "dl" + i + "_" + ctx.runId;
            Message m = new Message(topic, "TagD", key, ("delayed " + key).getBytes(StandardCharsets.UTF_8));
            m.setDelayTimeLevel(level);
            long before = System.currentTimeMillis();
            SendResult r = p.send(m);
            ctx.check(r.getSendStatus() == SendStatus.SEND_OK, "delay level %d send of %s: %s", level, key,
                r.getSendStatus());
            due.put(key, new long[] {before + delay});
            ids.put(key, r.getMsgId());
        }
        long last = due.values().stream().mapToLong(d -> d[0]).max().orElse(0);
        Thread.sleep(Math.max(0, last - System.currentTimeMillis() - 300));
        int early = 0;
        for (String k : due.keySet()) {
            early += seen.count(k);
        }
        ctx.check(early == 0 || delay < 500, "nothing delivered 300 ms before the %d ms delay (%d were)", delay, early);
        boolean all = Ctx.waitFor(delay + LATE_MS, () -> due.keySet().stream().allMatch(k -> seen.count(k) > 0));
        Thread.sleep(1500);
        ctx.check(all, "all %d delayed messages delivered", n);
        List<String> problems = new ArrayList<>();
        for (String k : due.keySet()) {
            checkDue(ctx, seen, k, ids.get(k), due.get(k)[0], problems);
        }
        Scenarios.report(ctx, "each delayed message delivered once, with its msgId, not before its delay", problems);
    }

    // ------------------------------------------------------------------ deliver-time

    /** 5.x Message.setDeliverTimeMs when the client has it, else the TIMER_DELIVER_MS property it sets. */
    static String setDeliverTime(Message m, long at) {
        try {
            Method set = m.getClass().getMethod("setDeliverTimeMs", long.class);
            set.invoke(m, at);
            return "setDeliverTimeMs";
        } catch (ReflectiveOperationException e) {
            MessageAccessor.putProperty(m, "TIMER_DELIVER_MS", Long.toString(at));
            return "TIMER_DELIVER_MS property";
        }
    }

    static void deliverTime(Ctx ctx) throws Exception {
        final int n = 5;
        String topic = ctx.name("dt");
        DefaultMQProducer p = ctx.producer(ctx.name("dtP"), 4);
        Seens seen = new Seens();
        readyConsumer(ctx, p, topic, ctx.name("dtC"), seen, ConsumeConcurrentlyStatus.CONSUME_SUCCESS);
        Map<String, Long> due = new ConcurrentHashMap<>();
        Map<String, String> ids = new ConcurrentHashMap<>();
        long base = System.currentTimeMillis() + 2500;
        String how = "";
        for (int i = 0; i < n; i++) {
            String key = "dt" + i + "_" + ctx.runId;
            Message m = new Message(topic, "TagT", key, ("timed " + key).getBytes(StandardCharsets.UTF_8));
            // the last one is due in the past: delivered at once
            long at = i == n - 1 ? System.currentTimeMillis() - 1000 : base + 337L * i;
            how = setDeliverTime(m, at);
            SendResult r = p.send(m);
            ctx.check(r.getSendStatus() == SendStatus.SEND_OK, "send of %s due at %d: %s", key, at, r.getSendStatus());
            due.put(key, at);
            ids.put(key, r.getMsgId());
        }
        ctx.note = "deliver time by " + how;
        boolean all = Ctx.waitFor(base + 337L * n + LATE_MS - System.currentTimeMillis(),
            () -> due.keySet().stream().allMatch(k -> seen.count(k) > 0));
        Thread.sleep(1500);
        ctx.check(all, "all %d timer messages delivered", n);
        List<String> problems = new ArrayList<>();
        for (String k : due.keySet()) {
            checkDue(ctx, seen, k, ids.get(k), due.get(k), problems);
        }
        Scenarios.report(ctx, String.format(Locale.ROOT,
            "each timer message (%s) delivered once, with its msgId, not before its time", how), problems);
    }

    // ------------------------------------------------------------------ retry-dlq

    static void retryDlq(Ctx ctx) throws Exception {
        final int n = 2;
        final int maxReconsume = 2;
        // The client takes the retry topic's queue at its next rebalance (every 20 s by
        // default); read when the first client instance starts, so set before any.
        System.setProperty("rocketmq.client.rebalance.waitInterval", "1000");
        String topic = ctx.name("rd");
        String group = ctx.name("rdC");
        String dlq = "%DLQ%" + group;
        DefaultMQProducer p = ctx.producer(ctx.name("rdP"), 4);
        Seens seen = new Seens();
        String warmKey = "warm_" + ctx.runId;
        SendResult w = p.send(new Message(topic, "TagD", warmKey, "warm-up".getBytes(StandardCharsets.UTF_8)));
        ctx.check(w.getSendStatus() == SendStatus.SEND_OK, "warm-up send creates %s: %s", topic, w.getSendStatus());
        DefaultMQPushConsumer c = ctx.consumer(group, group + "_1", topic, "*", (msgs, cc) -> {
            ConsumeConcurrentlyStatus st = ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            for (MessageExt m : msgs) {
                seen.add(Seen.of(m));
                if (!warmKey.equals(m.getKeys())) {
                    st = ConsumeConcurrentlyStatus.RECONSUME_LATER;
                }
            }
            return st;
        });
        c.setConsumeMessageBatchMaxSize(1);
        c.setMaxReconsumeTimes(maxReconsume);
        c.start();
        ctx.check(Ctx.waitFor(30_000, () -> seen.count(warmKey) > 0), "the consumer is running (warm-up received)");
        String retryTopic = "%RETRY%" + group;
        ctx.check(Ctx.waitFor(30_000, () -> !Scenarios.owned(c, retryTopic).isEmpty()),
            "the consumer pulls %s %s", retryTopic, Scenarios.owned(c, retryTopic));

        Map<String, String> ids = new ConcurrentHashMap<>();
        for (int i = 0; i < n; i++) {
            String key = "rd" + i + "_" + ctx.runId;
            SendResult r = p.send(new Message(topic, "TagR", key, ("failing " + key).getBytes(StandardCharsets.UTF_8)));
            ctx.check(r.getSendStatus() == SendStatus.SEND_OK, "send of %s: %s", key, r.getSendStatus());
            ids.put(key, r.getMsgId());
        }
        // deliveries with reconsumeTimes 0, 1 .. maxReconsume; the last one's send-back goes to the DLQ
        long backoff = 0;
        for (int r = 0; r < maxReconsume; r++) {
            backoff += levelMs(3 + r);
        }
        boolean all = Ctx.waitFor(backoff + 2 * LATE_MS,
            () -> ids.keySet().stream().allMatch(k -> seen.count(k) >= maxReconsume + 1));
        ctx.check(all, "each message delivered %d times (reconsumeTimes 0..%d)", maxReconsume + 1, maxReconsume);

        Seens dead = new Seens();
        DefaultMQPushConsumer d = ctx.consumer(ctx.name("rdD"), ctx.name("rdD") + "_1", dlq, "*", (msgs, cc) -> {
            for (MessageExt m : msgs) {
                dead.add(Seen.of(m));
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        d.start();
        boolean inDlq = Ctx.waitFor(30_000, () -> ids.keySet().stream().allMatch(k -> dead.count(k) > 0));
        Thread.sleep(2000);
        ctx.check(inDlq, "each message is consumed from %s", dlq);

        List<String> problems = new ArrayList<>();
        for (String k : ids.keySet()) {
            List<Seen> got = seen.of(k);
            ctx.info("deliveries of %s: %s", k, got.stream().map(s -> s.reconsumeTimes() + "@" + s.at()).toList());
            if (got.size() != maxReconsume + 1) {
                problems.add(k + " delivered " + got.size() + " times, expected " + (maxReconsume + 1));
            }
            for (int i = 0; i < got.size(); i++) {
                Seen s = got.get(i);
                if (s.reconsumeTimes() != i) {
                    problems.add(k + " delivery " + i + " has reconsumeTimes " + s.reconsumeTimes());
                }
                if (!topic.equals(s.topic()) || !ids.get(k).equals(s.msgId())) {
                    problems.add(k + " delivery " + i + " topic " + s.topic() + " msgId " + s.msgId());
                }
                if (i == 0) {
                    continue;
                }
                long want = levelMs(3 + i - 1);
                long gap = s.at() - got.get(i - 1).at();
                ctx.info("%s redelivery %d after %d ms (back-off level %d = %d ms)", k, i, gap, 3 + i - 1, want);
                if (gap < want - tolerance()) {
                    problems.add(k + " redelivery " + i + " came " + gap + " ms after the previous, before the "
                        + want + " ms back-off");
                }
                if (gap > want + LATE_MS) {
                    problems.add(k + " redelivery " + i + " came " + gap + " ms after the previous (back-off "
                        + want + " ms)");
                }
            }
            List<Seen> dl = dead.of(k);
            if (dl.size() != 1) {
                problems.add(k + " found " + dl.size() + " times in " + dlq);
            } else if (!dlq.equals(dl.get(0).topic()) || !("failing " + k).equals(dl.get(0).body())
                || !ids.get(k).equals(dl.get(0).msgId())) {
                problems.add(k + " in the DLQ as topic " + dl.get(0).topic() + " msgId " + dl.get(0).msgId()
                    + " body '" + dl.get(0).body() + "'");
            }
        }
        Scenarios.report(ctx, String.format(Locale.ROOT,
            "RECONSUME_LATER backs off by levels 3.., and after %d retries the message is a dead letter",
            maxReconsume), problems);
    }
}
