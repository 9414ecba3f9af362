package org.lsmq.interop;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * A broker group (a master and a replica) losing its master, run by
 * tests/interop/against-lsmq-replicas.sh, which sets LSMQ_KILL_MASTER_CMD and
 * LSMQ_START_MASTER_CMD. Not in the default list: a single broker has no replica.
 */
final class FailoverScenarios {
    private FailoverScenarios() {
    }

    static void run(Ctx ctx, String what, String envName) throws Exception {
        String cmd = System.getenv(envName);
        if (cmd == null || cmd.isBlank()) {
            throw new IllegalStateException(envName + " is not set (run against-lsmq-replicas.sh)");
        }
        Process p = new ProcessBuilder("sh", "-c", cmd).inheritIO().start();
        ctx.check(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0, "%s (%s)", what, cmd);
    }

    /**
     * 200 messages; a slow consumer has read some of them when the master is killed; it
     * goes on reading the rest from the replica, a new group reads all 200 from the
     * replica, and once the master is back the first consumer's offsets were kept: 20
     * more messages reach it, and a consumer of its group started afterwards gets no
     * more than a few old ones again.
     */
    static void replicaFailover(Ctx ctx) throws Exception {
        String topic = ctx.name("failover");
        String group = ctx.name("failover_cg");
        DefaultMQProducer p = ctx.producer(ctx.name("failover_pg"), 4);
        Map<String, Scenarios.Sent> sent = Scenarios.sendMany(ctx, p, topic, "f", 200, i -> "TagF");
        if (!ctx.check(sent.size() == 200, "200 sends acknowledged SEND_OK (got %d)", sent.size())) {
            return;
        }
        Set<String> got = ConcurrentHashMap.newKeySet();
        DefaultMQPushConsumer c = ctx.consumer(group, "c_" + group, topic, "*", (msgs, cctx) -> {
            for (MessageExt m : msgs) {
                got.add(m.getKeys());
            }
            try {
                Thread.sleep(40);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        // One message at a time and at most one held per queue: most of the topic is
        // still unread on the broker when the master dies.
        c.setConsumeThreadMin(1);
        c.setConsumeThreadMax(1);
        c.setPullBatchSize(1);
        c.setPullThresholdForQueue(1);
        c.setConsumeMessageBatchMaxSize(1);
        c.setPersistConsumerOffsetInterval(1000);
        c.start();
        ctx.check(Ctx.waitFor(30000, () -> got.size() >= 20), "the consumer reads from the master (%d)",
            got.size());
        run(ctx, "the master is killed", "LSMQ_KILL_MASTER_CMD");
        int before = got.size();
        boolean all = Ctx.waitFor(50000, () -> got.containsAll(sent.keySet()));
        ctx.check(before < 150 && all, "the consumer goes on from the replica: %d of 200 (%d when the master died)",
            got.size(), before);

        Set<String> fresh = ConcurrentHashMap.newKeySet();
        DefaultMQPushConsumer c2 = ctx.consumer(ctx.name("failover_new_cg"), "c2_" + group, topic, "*",
            (msgs, cctx) -> {
                for (MessageExt m : msgs) {
                    fresh.add(m.getKeys());
                }
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            });
        c2.start();
        ctx.check(Ctx.waitFor(40000, () -> fresh.containsAll(sent.keySet())),
            "a group started without the master reads all 200 from the replica (%d)", fresh.size());
        ctx.shutdown(c2);
        Thread.sleep(1500); // the first consumer commits its offsets (to the replica)

        run(ctx, "the master is back", "LSMQ_START_MASTER_CMD");
        Map<String, Scenarios.Sent> more = null;
        long deadline = System.currentTimeMillis() + 40000;
        while (System.currentTimeMillis() < deadline) {
            Map<String, Scenarios.Sent> m = Scenarios.sendManyQuiet(p, topic, "g", 20, ctx.runId);
            if (m != null) {
                more = m;
                break;
            }
            Thread.sleep(500);
        }
        if (!ctx.check(more != null, "the master takes sends again")) {
            return;
        }
        Map<String, Scenarios.Sent> moreSent = more;
        ctx.check(Ctx.waitFor(40000, () -> got.containsAll(moreSent.keySet())),
            "the consumer that lived through it gets the 20 new messages");
        Thread.sleep(2500); // its offsets, now committed to the master
        ctx.shutdown(c);

        Set<String> again = ConcurrentHashMap.newKeySet();
        DefaultMQPushConsumer c3 = ctx.consumer(group, "c3_" + group, topic, "*", (msgs, cctx) -> {
            for (MessageExt m : msgs) {
                again.add(m.getKeys());
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c3.start();
        Thread.sleep(5000);
        ctx.check(again.size() <= 4, "the group's offsets survived: a new member got %d old messages again",
            again.size());
    }
}
