package org.lsmq.interop;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.AtomicReferenceArray;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendCallback;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * A broker group of a master and its replicas taking a large load, run by
 * tests/interop/against-lsmq-replicas.sh (LSMQ_REPLICAS=2: a SYNC_MASTER and two replicas),
 * which afterwards compares every replica's store with the master's. Not in the default list.
 */
final class ReplicaScenarios {
    private static final int BULK = 100_000;
    private static final int IN_FLIGHT = 1000;

    private ReplicaScenarios() {
    }

    /**
     * 100,000 messages, sent asynchronously with at most 1,000 in flight: every one is
     * acknowledged SEND_OK, which a SYNC_MASTER answers once a replica has persisted it. Then
     * one push consumer reads all of them from the broker group, each once, with its body.
     */
    static void replicasBulk(Ctx ctx) throws Exception {
        String topic = ctx.name("bulk");
        DefaultMQProducer p = ctx.producer(ctx.name("bulk_pg"), 8);
        // The first send creates the topic (through TBW102); the others find its route.
        SendResult first = p.send(bulkMsg(topic, 0));
        if (!ctx.check(first.getSendStatus() == SendStatus.SEND_OK, "the first send creates %s: %s", topic,
            first.getSendStatus())) {
            return;
        }
        AtomicInteger ok = new AtomicInteger(1);
        AtomicInteger notOk = new AtomicInteger();
        AtomicInteger failed = new AtomicInteger();
        AtomicReference<String> firstProblem = new AtomicReference<>();
        Semaphore window = new Semaphore(IN_FLIGHT);
        long t0 = System.nanoTime();
        for (int i = 1; i < BULK; i++) {
            window.acquire();
            final int idx = i;
            p.send(bulkMsg(topic, i), new SendCallback() {
                @Override
                public void onSuccess(SendResult r) {
                    if (r.getSendStatus() == SendStatus.SEND_OK) {
                        ok.incrementAndGet();
                    } else {
                        notOk.incrementAndGet();
                        firstProblem.compareAndSet(null, "message " + idx + ": " + r.getSendStatus());
                    }
                    window.release();
                }

                @Override
                public void onException(Throwable e) {
                    failed.incrementAndGet();
                    firstProblem.compareAndSet(null, "message " + idx + ": " + e);
                    window.release();
                }
            });
        }
        boolean answered = window.tryAcquire(IN_FLIGHT, 60, TimeUnit.SECONDS);
        double sendSecs = (System.nanoTime() - t0) / 1e9;
        ctx.check(answered && ok.get() == BULK,
            "%d sends acknowledged SEND_OK in %.1f s (%d otherwise, %d failed%s)", ok.get(), sendSecs,
            notOk.get(), failed.get(), firstProblem.get() == null ? "" : "; first: " + firstProblem.get());

        // Each message's index in its key; a delivery counts once per index.
        AtomicReferenceArray<Boolean> seen = new AtomicReferenceArray<>(BULK);
        AtomicInteger distinct = new AtomicInteger();
        AtomicLong repeats = new AtomicLong();
        ConcurrentHashMap<String, String> wrong = new ConcurrentHashMap<>();
        DefaultMQPushConsumer c = ctx.consumer(ctx.name("bulk_cg"), ctx.name("bulk_c"), topic, "*",
            (msgs, cctx) -> {
                for (MessageExt m : msgs) {
                    int idx = indexOf(m);
                    if (idx < 0 || !new String(m.getBody(), StandardCharsets.UTF_8).equals(bodyOf(idx))) {
                        wrong.putIfAbsent(String.valueOf(m.getKeys()), m.getMsgId());
                    } else if (seen.compareAndSet(idx, null, Boolean.TRUE)) {
                        distinct.incrementAndGet();
                    } else {
                        repeats.incrementAndGet();
                    }
                }
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            });
        c.setPullBatchSize(32);
        c.setConsumeMessageBatchMaxSize(32);
        long t1 = System.nanoTime();
        c.start();
        boolean all = Ctx.waitFor(60_000, () -> distinct.get() == BULK);
        ctx.check(all, "one consumer reads all %d in %.1f s (%d distinct)", BULK, (System.nanoTime() - t1) / 1e9,
            distinct.get());
        Thread.sleep(1000); // a late repeat shows here
        ctx.check(wrong.isEmpty(), "every delivery is a message sent, with its body (%d not: %s)", wrong.size(),
            wrong.keySet().stream().limit(3).toList());
        ctx.check(repeats.get() == 0, "none delivered twice (%d repeats)", repeats.get());
    }

    private static String bodyOf(int idx) {
        return "replicated message " + idx;
    }

    private static Message bulkMsg(String topic, int idx) {
        return new Message(topic, "TagBulk", "bulk_" + idx, bodyOf(idx).getBytes(StandardCharsets.UTF_8));
    }

    /** The index in a bulk_N key, or -1. */
    private static int indexOf(MessageExt m) {
        String k = m.getKeys();
        if (k == null || !k.startsWith("bulk_")) {
            return -1;
        }
        try {
            int idx = Integer.parseInt(k.substring(5));
            return idx >= 0 && idx < BULK ? idx : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }
}
