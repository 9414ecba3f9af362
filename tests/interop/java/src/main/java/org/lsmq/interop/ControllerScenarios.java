package org.lsmq.interop;

import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;

/**
 * A broker group in controller mode, run by tests/interop/against-lsmq-controller.sh: three
 * name servers with the controller embedded (LSMQ_CONTROLLER_ADDRS, ";"-separated, also the
 * name server list the scenarios get) and three brokers of broker-a, which the controller
 * makes master or replica. LSMQ_KILL_MASTER_CMD kill -9's whichever broker is the master;
 * LSMQ_RESTART_KILLED_CMD starts it again on its store. Not in the default list.
 */
final class ControllerScenarios {
    private static final String GROUP = "broker-a";
    private static final int BEFORE_KILL = 100;
    private static final int SENDS = 300;
    private static final int AFTER_RESTART = 20;
    /** how long one message is retried before the scenario gives up on it */
    private static final long SEND_GIVE_UP_MS = 30_000;
    private static final Pattern REPLICA = Pattern.compile(
        "brokerId=(\\d+), brokerAddress='([^']*)', alive=(\\w+)");
    private static final Pattern EPOCH = Pattern.compile(
        "EpochEntry\\{epoch=(\\d+), startOffset=(-?\\d+), endOffset=(-?\\d+)\\}");

    private ControllerScenarios() {
    }

    private static List<String> controllers() {
        String v = System.getenv("LSMQ_CONTROLLER_ADDRS");
        if (v == null || v.isBlank()) {
            throw new IllegalStateException("LSMQ_CONTROLLER_ADDRS is not set (run against-lsmq-controller.sh)");
        }
        return List.of(v.trim().split(";"));
    }

    // ------------------------------------------------------------------ controller-failover

    /** What the producer of controller-failover saw. */
    private static final class SendStats {
        int failures;
        long longestGapMs;
        long lastOk = System.nanoTime();
        String firstProblem;
    }

    /**
     * 300 synchronous sends; after 100 the master is killed. Each send is retried until
     * SEND_OK (the client's own retries, then the scenario's), so the producer waits out the
     * election and the name servers' new route. A push consumer, running all along, must get
     * every acknowledged body with its msgId. Then the killed broker is started again (it
     * rejoins as a replica) and 20 more sends reach the consumer too.
     */
    static void controllerFailover(Ctx ctx) throws Exception {
        controllers(); // outside against-lsmq-controller.sh: fail now, not after the sends
        String topic = ctx.name("ctlfo");
        DefaultMQProducer p = ctx.producer(ctx.name("ctlfo_pg"), 4, pr -> {
            pr.setSendMsgTimeout(3000);
            pr.setRetryTimesWhenSendFailed(10);
            pr.setPollNameServerInterval(1000);
        });
        Map<String, String> acked = new LinkedHashMap<>(); // body -> msgId of its SEND_OK
        SendStats st = new SendStats();
        // The first send creates the topic; the consumer starts once the name servers route it
        // (it would otherwise only find its queues at its next rebalance, up to 20 s later).
        if (!sendUntilOk(ctx, p, topic, "controller failover 0 " + ctx.runId, acked, st)) {
            return;
        }
        ctx.check(Scenarios.routeOf(ctx, p, topic, 20_000) != null, "the name servers route %s", topic);
        // body -> msgIds of its deliveries, and how many deliveries in all
        Map<String, List<String>> got = new ConcurrentHashMap<>();
        AtomicLong deliveries = new AtomicLong();
        DefaultMQPushConsumer c = ctx.consumer(ctx.name("ctlfo_cg"), ctx.name("ctlfo_c"), topic, "*",
            (msgs, cctx) -> {
                for (MessageExt m : msgs) {
                    got.computeIfAbsent(new String(m.getBody(), StandardCharsets.UTF_8),
                        b -> Collections.synchronizedList(new ArrayList<>())).add(m.getMsgId());
                    deliveries.incrementAndGet();
                }
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            });
        c.start();

        for (int i = 1; i < SENDS; i++) {
            if (i == BEFORE_KILL) {
                ctx.check(Ctx.waitFor(30_000, () -> got.keySet().containsAll(acked.keySet())),
                    "the consumer has the first %d before the master dies (%d)", BEFORE_KILL, got.size());
                allInSync(ctx);
                FailoverScenarios.run(ctx, "the master is killed", "LSMQ_KILL_MASTER_CMD");
                st.lastOk = System.nanoTime();
            }
            if (!sendUntilOk(ctx, p, topic, "controller failover " + i + " " + ctx.runId, acked, st)) {
                return;
            }
        }
        ctx.check(acked.size() == SENDS, "%d sends acknowledged SEND_OK across the failover (%d failed, "
            + "longest gap %d ms%s)", SENDS, st.failures, st.longestGapMs,
            st.firstProblem == null ? "" : "; first: " + st.firstProblem);
        ctx.check(Ctx.waitFor(60_000, () -> got.keySet().containsAll(acked.keySet())),
            "the consumer gets all %d acknowledged bodies (%d)", acked.size(), got.size());

        long gapMs = st.longestGapMs;
        FailoverScenarios.run(ctx, "the killed broker is back", "LSMQ_RESTART_KILLED_CMD");
        st.lastOk = System.nanoTime();
        st.longestGapMs = 0;
        for (int i = 0; i < AFTER_RESTART; i++) {
            if (!sendUntilOk(ctx, p, topic, "after restart " + i + " " + ctx.runId, acked, st)) {
                return;
            }
        }
        ctx.check(Ctx.waitFor(40_000, () -> got.keySet().containsAll(acked.keySet())),
            "the consumer gets the %d sent after the restart too (%d of %d)", AFTER_RESTART, got.size(),
            acked.size());
        Thread.sleep(2000); // a late repeat shows here

        int lost = 0;
        int wrongId = 0;
        for (Map.Entry<String, String> e : acked.entrySet()) {
            List<String> ids = got.get(e.getKey());
            if (ids == null) {
                lost++;
            } else if (!ids.contains(e.getValue())) {
                wrongId++;
            }
        }
        Set<String> unknown = new HashSet<>(got.keySet());
        unknown.removeAll(acked.keySet());
        long duplicates = deliveries.get() - got.size();
        ctx.check(lost == 0, "no acknowledged message lost (%d)", lost);
        ctx.check(wrongId == 0, "every acknowledged body delivered with its msgId (%d not)", wrongId);
        ctx.check(unknown.stream().allMatch(b -> b.endsWith(" " + ctx.runId)),
            "every delivery is a message sent (%d bodies beyond the acknowledged, from failed attempts)",
            unknown.size());
        ctx.note = String.format(Locale.ROOT,
            "acknowledged %d, lost %d, duplicates %d, failed sends %d, longest gap %d ms across the failover, "
                + "%d ms after the restart", acked.size(), lost, duplicates, st.failures, gapMs, st.longestGapMs);
    }

    /**
     * Waits (up to 30 s) until the sync state set holds a broker besides the master, its
     * successor: an election (controller-admin's electMaster, or the group's start) leaves the
     * new master alone in it until a replica catches up. Needs the 5.x admin API. (Upstream
     * 5.3.3 took one of its two replicas back into the set within seconds of an electMaster,
     * the other not within 30 s.)
     */
    private static void allInSync(Ctx ctx) throws InterruptedException {
        if (adminMethod("getControllerMetaData", String.class) == null) {
            ctx.info("client %s has no getSyncStateSet: not waiting for the sync state set", ctx.clientVersion);
            return;
        }
        String ctl = controllers().get(0);
        SyncStateSet[] s = new SyncStateSet[1];
        boolean full = Ctx.waitFor(30_000, () -> {
            try {
                s[0] = syncStateSet(ctx, ctl, false);
                return s[0] != null && s[0].nums >= 2;
            } catch (Exception e) {
                return false;
            }
        });
        ctx.check(full, "the sync state set holds a successor before the master dies: %s",
            s[0] == null ? "no answer" : s[0].inSync);
    }

    /**
     * Sends one message until SEND_OK, up to SEND_GIVE_UP_MS; records body -> msgId in acked.
     * The same Message object each attempt, so a stored but unacknowledged attempt keeps its msgId.
     */
    private static boolean sendUntilOk(Ctx ctx, DefaultMQProducer p, String topic, String body,
                                       Map<String, String> acked, SendStats st) throws InterruptedException {
        Message m = new Message(topic, "TagC", body.getBytes(StandardCharsets.UTF_8));
        long deadline = System.currentTimeMillis() + SEND_GIVE_UP_MS;
        while (true) {
            String problem;
            try {
                SendResult r = p.send(m);
                if (r.getSendStatus() == SendStatus.SEND_OK) {
                    long now = System.nanoTime();
                    st.longestGapMs = Math.max(st.longestGapMs, (now - st.lastOk) / 1_000_000);
                    st.lastOk = now;
                    acked.put(body, r.getMsgId());
                    return true;
                }
                problem = r.getSendStatus().toString();
            } catch (Exception e) {
                problem = e.toString();
            }
            st.failures++;
            if (st.firstProblem == null) {
                st.firstProblem = problem;
                ctx.info("first failed send (%s): %s", body, problem);
            }
            if (System.currentTimeMillis() >= deadline) {
                ctx.fail("\"%s\" not acknowledged within %d s: %s", body, SEND_GIVE_UP_MS / 1000, problem);
                return false;
            }
            Thread.sleep(100);
        }
    }

    // ------------------------------------------------------------------ controller-admin

    /** The group's route at the name servers: brokerId -> address, and its cluster name. */
    private static Map<Long, String> route(DefaultMQAdminExt admin, String[] cluster) {
        try {
            var bd = admin.examineBrokerClusterInfo().getBrokerAddrTable().get(GROUP);
            if (bd == null) {
                return Map.of();
            }
            if (cluster != null) {
                cluster[0] = bd.getCluster();
            }
            return new TreeMap<>(bd.getBrokerAddrs());
        } catch (Exception e) {
            return Map.of();
        }
    }

    /** DefaultMQAdminExt's method, or null before 5.x (no controller commands). */
    private static Method adminMethod(String name, Class<?>... args) {
        try {
            return DefaultMQAdminExt.class.getMethod(name, args);
        } catch (NoSuchMethodException e) {
            return null;
        }
    }

    /** One name server's controller metadata (GetMetaDataResponseHeader), or null. */
    private static Object metadata(DefaultMQAdminExt admin, Method m, String addr) {
        try {
            return m.invoke(admin, addr);
        } catch (ReflectiveOperationException e) {
            return null;
        }
    }

    /** One member of a getSyncStateSet answer. */
    private record Replica(long id, String addr, boolean alive) {
    }

    /** What mqadmin getSyncStateSet printed for the group. */
    private record SyncStateSet(long masterId, String masterAddr, long masterEpoch, int nums, List<Replica> inSync) {
        Replica other() {
            return inSync.stream().filter(r -> r.id != masterId).findFirst().orElse(null);
        }
    }

    private static SyncStateSet syncStateSet(Ctx ctx, String controller, boolean show) throws Exception {
        String[] out = AdminScenarios.mqadmin("getSyncStateSet", "-a", controller, "-b", GROUP);
        if (show) {
            ctx.info("mqadmin getSyncStateSet -a %s -b %s:%n%s", controller, GROUP, out[0].strip());
        }
        Map<String, String> kv = AdminScenarios.keyed(out[0]);
        List<Replica> in = new ArrayList<>();
        for (String line : out[0].split("\n")) {
            Matcher m = REPLICA.matcher(line);
            if (line.startsWith("InSyncReplica:") && m.find()) {
                in.add(new Replica(Long.parseLong(m.group(1)), m.group(2), Boolean.parseBoolean(m.group(3))));
            }
        }
        try {
            return new SyncStateSet(Long.parseLong(kv.get("#MasterBrokerId")), kv.get("#MasterAddr"),
                Long.parseLong(kv.get("#MasterEpoch")), Integer.parseInt(kv.get("#SyncStateSetNums")), in);
        } catch (RuntimeException e) {
            if (show) {
                ctx.info("getSyncStateSet: %s %s", e, out[1].strip());
            }
            return null;
        }
    }

    /**
     * Upstream's controller commands against the name servers' controller: getControllerMetaData
     * (every name server names the same leader, one of them, and only it says isLeader),
     * getSyncStateSet (the master the name servers route as brokerId 0, its epoch, all three
     * brokers in sync), getBrokerEpoch (the master's epoch entries end in its epoch) and
     * electMaster (a replica of the set becomes master; the route follows within 5 s).
     */
    static void controllerAdmin(Ctx ctx) throws Exception {
        List<String> ctls = controllers();
        Method metaM = adminMethod("getControllerMetaData", String.class);
        if (metaM == null) {
            ctx.note = "skipped: client " + ctx.clientVersion + " has no controller commands";
            ctx.info("%s", ctx.note);
            return;
        }
        DefaultMQAdminExt admin = new DefaultMQAdminExt();
        admin.setNamesrvAddr(ctx.namesrv);
        admin.setInstanceName(ctx.name("admin"));
        admin.start();
        try {
            // getControllerMetaData: one leader, named alike by every controller.
            Map<String, Object> meta = new LinkedHashMap<>();
            boolean agreed = Ctx.waitFor(20_000, () -> {
                meta.clear();
                Set<String> leaders = new HashSet<>();
                for (String a : ctls) {
                    Object h = metadata(admin, metaM, a);
                    if (h != null) {
                        meta.put(a, h);
                        leaders.add(String.valueOf(AdminScenarios.get(h, "getControllerLeaderAddress")));
                    }
                }
                return meta.size() == ctls.size() && leaders.size() == 1 && ctls.containsAll(leaders);
            });
            Map<String, String> said = new LinkedHashMap<>();
            meta.forEach((a, h) -> said.put(a, AdminScenarios.get(h, "getControllerLeaderId") + "@"
                + AdminScenarios.get(h, "getControllerLeaderAddress") + " isLeader=" + AdminScenarios.get(h, "isLeader")));
            if (!ctx.check(agreed, "every controller names the same leader, one of %s: %s", ctls, said)) {
                return;
            }
            Object any = meta.values().iterator().next();
            String leader = (String) AdminScenarios.get(any, "getControllerLeaderAddress");
            String leaderId = (String) AdminScenarios.get(any, "getControllerLeaderId");
            ctx.check(meta.entrySet().stream()
                    .allMatch(e -> (boolean) AdminScenarios.get(e.getValue(), "isLeader") == e.getKey().equals(leader)),
                "isLeader is true for %s only: %s", leader, said);

            String[] out = AdminScenarios.mqadmin("getControllerMetaData", "-a", ctls.get(0));
            ctx.info("mqadmin getControllerMetaData -a %s:%n%s", ctls.get(0), out[0].strip());
            ctx.check(out[1].isBlank(), "getControllerMetaData reports no error: %s", out[1].strip());
            Map<String, String> kv = AdminScenarios.keyed(out[0]);
            long peers = out[0].lines().filter(l -> l.startsWith("#Peer:")).count();
            ctx.check(leader.equals(kv.get("#ControllerLeaderAddress")) && leaderId.equals(kv.get("#ControllerLeaderId"))
                    && kv.get("#ControllerGroup") != null && !kv.get("#ControllerGroup").isEmpty()
                    && peers == ctls.size(),
                "getControllerMetaData: #ControllerGroup %s, #ControllerLeaderId %s, #ControllerLeaderAddress %s, "
                    + "%d #Peer lines", kv.get("#ControllerGroup"), kv.get("#ControllerLeaderId"),
                kv.get("#ControllerLeaderAddress"), peers);

            // One message through the group, so the epoch entries have a length.
            DefaultMQProducer p = ctx.producer(ctx.name("ctladm_pg"), 1, pr -> pr.setPollNameServerInterval(1000));
            SendResult r = p.send(new Message(ctx.name("ctladm"), "TagA", "admin".getBytes(StandardCharsets.UTF_8)));
            ctx.check(r.getSendStatus() == SendStatus.SEND_OK, "one send through the group: %s", r.getSendStatus());

            // getSyncStateSet: the routed master, all three in sync.
            String[] cluster = new String[1];
            Map<Long, String> routed = new HashMap<>();
            SyncStateSet[] sss = new SyncStateSet[1];
            boolean full = Ctx.waitFor(20_000, () -> {
                try {
                    routed.clear();
                    routed.putAll(route(admin, cluster));
                    sss[0] = syncStateSet(ctx, leader, false);
                    return sss[0] != null && sss[0].nums == 3 && sss[0].masterAddr.equals(routed.get(0L));
                } catch (Exception e) {
                    return false;
                }
            });
            SyncStateSet s = syncStateSet(ctx, leader, true);
            if (!ctx.check(s != null, "getSyncStateSet -a %s -b %s answers", leader, GROUP)) {
                return;
            }
            Set<Long> ids = new HashSet<>();
            s.inSync.forEach(x -> ids.add(x.id));
            ctx.check(full && s.nums == 3 && s.inSync.size() == 3 && ids.size() == 3 && ids.contains(s.masterId),
                "getSyncStateSet: all 3 brokers in the sync state set within 20 s, the master %d among them: %s",
                s.masterId, s.inSync);
            ctx.check(s.masterAddr.equals(routed.get(0L)) && s.masterEpoch >= 1,
                "getSyncStateSet: #MasterAddr %s is what the name servers route as brokerId 0 (%s), #MasterEpoch %d",
                s.masterAddr, routed, s.masterEpoch);
            ctx.check(s.inSync.stream().allMatch(Replica::alive), "getSyncStateSet: every member alive");

            // getBrokerEpoch: the master's epoch entries end in the master's epoch.
            out = AdminScenarios.mqadmin("getBrokerEpoch", "-n", ctx.namesrv, "-b", GROUP);
            ctx.info("mqadmin getBrokerEpoch -b %s:%n%s", GROUP, out[0].strip());
            ctx.check(out[1].isBlank(), "getBrokerEpoch reports no error: %s", out[1].strip());
            Map<String, List<long[]>> epochs = epochsByBroker(out[0]);
            ctx.check(epochs.keySet().containsAll(routed.values()), "getBrokerEpoch: an answer from each routed broker %s (%s)",
                routed.values(), epochs.keySet());
            List<long[]> me = epochs.getOrDefault(s.masterAddr, List.of());
            boolean ordered = true;
            for (int i = 1; i < me.size(); i++) {
                ordered &= me.get(i)[0] > me.get(i - 1)[0] && me.get(i)[1] >= me.get(i - 1)[1];
            }
            long[] last = me.isEmpty() ? null : me.get(me.size() - 1);
            ctx.check(last != null && ordered && last[0] == s.masterEpoch && last[2] > last[1],
                "getBrokerEpoch: the master's entries ascend and end in epoch %d, up to its log end: %s", s.masterEpoch,
                me.stream().map(e -> e[0] + "[" + e[1] + "," + e[2] + ")").toList());

            // electMaster: another member of the set becomes master.
            Replica next = s.other();
            if (!ctx.check(next != null, "a replica in the sync state set to elect")) {
                return;
            }
            out = AdminScenarios.mqadmin("electMaster", "-a", leader, "-c", cluster[0], "-bn", GROUP, "-b",
                String.valueOf(next.id));
            ctx.info("mqadmin electMaster -a %s -c %s -bn %s -b %d:%n%s", leader, cluster[0], GROUP, next.id,
                out[0].strip());
            ctx.check(out[1].isBlank(), "electMaster reports no error: %s", out[1].strip());
            kv = AdminScenarios.keyed(out[0]);
            ctx.check(next.addr.equals(kv.get("#BrokerMasterAddr"))
                    && String.valueOf(s.masterEpoch + 1).equals(kv.get("#MasterEpoch")),
                "electMaster: #BrokerMasterAddr %s (broker %d's %s), #MasterEpoch %s (was %d)", kv.get("#BrokerMasterAddr"),
                next.id, next.addr, kv.get("#MasterEpoch"), s.masterEpoch);
            // The old master registers again as a replica: the route holds all three, the
            // new master as brokerId 0, and keeps it.
            boolean moved = Ctx.waitFor(5_000, () -> {
                Map<Long, String> rt = route(admin, null);
                return next.addr.equals(rt.get(0L)) && rt.size() == 3;
            });
            ctx.check(moved, "the name servers route brokerId 0 at %s and the other two within 5 s: %s", next.addr,
                route(admin, null));
            Thread.sleep(2000);
            Map<Long, String> later = route(admin, null);
            ctx.check(next.addr.equals(later.get(0L)) && later.size() == 3, "2 s later still: %s", later);
            SendResult r2 = null;
            String why = "";
            for (long end = System.currentTimeMillis() + 10_000; r2 == null && System.currentTimeMillis() < end; ) {
                try {
                    r2 = p.send(new Message(ctx.name("ctladm"), "TagA", "after".getBytes(StandardCharsets.UTF_8)));
                } catch (Exception e) {
                    why = e.toString();
                    Thread.sleep(200);
                }
            }
            ctx.check(r2 != null && r2.getSendStatus() == SendStatus.SEND_OK,
                "a send through the group after electMaster (within 10 s): %s", r2 == null ? why : r2.getSendStatus());
            SyncStateSet after = syncStateSet(ctx, leader, true);
            ctx.check(after != null && after.masterId == next.id && after.masterEpoch == s.masterEpoch + 1,
                "getSyncStateSet after electMaster: master %s, epoch %s", after == null ? "?" : after.masterId,
                after == null ? "?" : after.masterEpoch);
        } finally {
            admin.shutdown();
        }
    }

    /** getBrokerEpoch's output: broker address -> its entries {epoch, startOffset, endOffset}. */
    private static Map<String, List<long[]>> epochsByBroker(String out) {
        Map<String, List<long[]>> by = new LinkedHashMap<>();
        List<long[]> cur = null;
        for (String line : out.split("\n")) {
            if (line.startsWith("#brokerAddr\t")) {
                cur = by.computeIfAbsent(line.substring("#brokerAddr\t".length()).trim(), a -> new ArrayList<>());
            }
            Matcher m = EPOCH.matcher(line);
            if (cur != null && line.startsWith("#Epoch:") && m.find()) {
                cur.add(new long[] {Long.parseLong(m.group(1)), Long.parseLong(m.group(2)), Long.parseLong(m.group(3))});
            }
        }
        return by;
    }
}
