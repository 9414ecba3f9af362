package org.lsmq.interop;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;

/**
 * Per-scenario context: client factories with unique names, check bookkeeping and cleanup.
 * Every producer/consumer gets its own instanceName, so each one owns its own
 * MQClientInstance (own connections, own client id) just as if it ran in its own process.
 */
final class Ctx {
    final String namesrv;
    final String scenario;
    final String clientVersion;
    /** short tag of this run, part of every topic/group name */
    final String runId;
    /** Said on the PASS line, e.g. what this client version could not check. */
    String note = "";
    private final long t0 = System.nanoTime();
    private final List<String> failures = new ArrayList<>();
    private final List<DefaultMQProducer> producers = new ArrayList<>();
    private final List<DefaultMQPushConsumer> consumers = new ArrayList<>();

    Ctx(String namesrv, String scenario, String clientVersion) {
        this.namesrv = namesrv;
        this.scenario = scenario;
        this.clientVersion = clientVersion;
        this.runId = Long.toString(System.currentTimeMillis(), 36)
            + Integer.toString(ThreadLocalRandom.current().nextInt(36 * 36 * 36), 36);
    }

    /** A fresh resource name: lsmq_<kind>_<clientmajor>_<runid>; matches ^[%|a-zA-Z0-9_-]+$. */
    String name(String kind) {
        String v = clientVersion.replaceAll("[^0-9]", "");
        return "lsmq_" + kind + "_v" + v + "_" + runId;
    }

    double elapsed() {
        return (System.nanoTime() - t0) / 1e9;
    }

    void info(String fmt, Object... args) {
        System.out.printf(Locale.ROOT, "  [%s %6.2fs] %s%n", scenario, elapsed(), String.format(Locale.ROOT, fmt, args));
        System.out.flush();
    }

    /** Records a failed check (the scenario goes on, so one run reports every problem). */
    boolean check(boolean ok, String fmt, Object... args) {
        String what = String.format(Locale.ROOT, fmt, args);
        System.out.printf(Locale.ROOT, "  [%s %6.2fs] %s %s%n", scenario, elapsed(), ok ? "ok  " : "FAIL", what);
        System.out.flush();
        if (!ok) {
            failures.add(what);
        }
        return ok;
    }

    void fail(String fmt, Object... args) {
        check(false, fmt, args);
    }

    List<String> failures() {
        return failures;
    }

    /** Polls cond every 50 ms until it holds or timeoutMs passes; returns whether it held. */
    static boolean waitFor(long timeoutMs, BooleanSupplier cond) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (true) {
            if (cond.getAsBoolean()) {
                return true;
            }
            if (System.currentTimeMillis() >= deadline) {
                return false;
            }
            Thread.sleep(50);
        }
    }

    DefaultMQProducer producer(String group, int defaultTopicQueueNums) throws Exception {
        return producer(group, defaultTopicQueueNums, p -> {
        });
    }

    /** As producer(group, n), with tune applied before it starts (some options are read at start). */
    DefaultMQProducer producer(String group, int defaultTopicQueueNums, Consumer<DefaultMQProducer> tune)
        throws Exception {
        DefaultMQProducer p = new DefaultMQProducer(group);
        p.setNamesrvAddr(namesrv);
        p.setInstanceName("p_" + group);
        p.setSendMsgTimeout(5000);
        p.setRetryTimesWhenSendFailed(2);
        p.setDefaultTopicQueueNums(defaultTopicQueueNums);
        tune.accept(p);
        p.start();
        producers.add(p);
        return p;
    }

    /**
     * A CLUSTERING push consumer starting from the first offset (for a group the broker has
     * no offset for). Not started: the caller may tune it and then calls start().
     */
    DefaultMQPushConsumer consumer(String group, String instance, String topic, String subExpression,
                                   MessageListenerConcurrently listener) throws Exception {
        DefaultMQPushConsumer c = new DefaultMQPushConsumer(group);
        c.setNamesrvAddr(namesrv);
        c.setInstanceName(instance);
        // message model: CLUSTERING is the default (its enum moved packages between 4.x and 5.x)
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        // Pick up routes of topics created after the consumer started within a second
        // instead of the default 30 s.
        c.setPollNameServerInterval(1000);
        c.subscribe(topic, subExpression);
        c.registerMessageListener(listener);
        consumers.add(c);
        return c;
    }

    /** Shuts one consumer down now (commits its offsets) and forgets it. */
    void shutdown(DefaultMQPushConsumer c) {
        consumers.remove(c);
        c.shutdown();
    }

    void closeAll() {
        for (DefaultMQPushConsumer c : consumers) {
            try {
                c.shutdown();
            } catch (Throwable t) {
                info("consumer shutdown: %s", t);
            }
        }
        consumers.clear();
        for (DefaultMQProducer p : producers) {
            try {
                p.shutdown();
            } catch (Throwable t) {
                info("producer shutdown: %s", t);
            }
        }
        producers.clear();
    }
}
