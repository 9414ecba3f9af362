package org.lsmq.interop;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.ParseException;
import java.text.SimpleDateFormat;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import org.apache.rocketmq.client.consumer.DefaultMQPullConsumer;
import org.apache.rocketmq.client.consumer.PullResult;
import org.apache.rocketmq.client.consumer.PullStatus;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.MixAll;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;
import org.apache.rocketmq.tools.command.MQAdminStartup;

/**
 * The client's own mqadmin commands against a broker group, run by
 * tests/interop/against-lsmq-replicas.sh (a SYNC_MASTER, brokerName broker-a, and its
 * replicas; LSMQ_MASTER_HA_ADDR is the master's haListenPort address). Not in the default
 * list: a single broker has no replica.
 */
final class AdminScenarios {
    private static final String GROUP = "broker-a";
    /** mqadmin's own log goes next to the client's. */
    private static final String LOGBACK_TOOLS = "<configuration>\n"
        + "  <appender name=\"FILE\" class=\"ch.qos.logback.core.FileAppender\">\n"
        + "    <file>${rocketmq.client.logRoot:-.}/mqadmin.log</file>\n"
        + "    <encoder><pattern>%d %p %c - %m%n</pattern></encoder>\n"
        + "  </appender>\n"
        + "  <root level=\"INFO\"><appender-ref ref=\"FILE\"/></root>\n"
        + "</configuration>\n";

    private AdminScenarios() {
    }

    /**
     * After one message sent and pulled: clusterList shows the group's master (BID 0) and
     * replica (BID 1) at the addresses the name server routes, every column filled in and the
     * master's TPS counting the message. With a 5.x client, getBrokerHAStatus and haStatus
     * against the master list the replica in sync and acknowledged up to the master's log
     * end; against the replica they name the master's HA address, the same log end and when
     * it last heard from and acknowledged to the master. 4.x has no haStatus.
     */
    static void replicaAdmin(Ctx ctx) throws Exception {
        String masterHa = System.getenv("LSMQ_MASTER_HA_ADDR");
        if (masterHa == null || masterHa.isBlank()) {
            throw new IllegalStateException("LSMQ_MASTER_HA_ADDR is not set (run against-lsmq-replicas.sh)");
        }
        DefaultMQAdminExt admin = new DefaultMQAdminExt();
        admin.setNamesrvAddr(ctx.namesrv);
        admin.setInstanceName(ctx.name("admin"));
        admin.start();
        try {
            Map<Long, String> addrs = new HashMap<>();
            String[] cluster = new String[1];
            boolean both = Ctx.waitFor(20_000, () -> {
                try {
                    var info = admin.examineBrokerClusterInfo();
                    var bd = info.getBrokerAddrTable().get(GROUP);
                    if (bd == null) {
                        return false;
                    }
                    addrs.clear();
                    addrs.putAll(bd.getBrokerAddrs());
                    cluster[0] = bd.getCluster();
                    return addrs.containsKey(0L) && addrs.containsKey(1L);
                } catch (Exception e) {
                    return false;
                }
            });
            if (!ctx.check(both, "the name server routes %s with brokerIds 0 and 1: %s (cluster %s)", GROUP, addrs,
                cluster[0])) {
                return;
            }
            String master = addrs.get(0L);
            String replica = addrs.get(1L);

            // One message in and out of the master, so what the commands report is not all zero.
            String topic = ctx.name("admin");
            SendResult r = ctx.producer(ctx.name("admin_pg"), 1).send(new Message(topic, "TagA", "admin",
                "admin".getBytes(StandardCharsets.UTF_8)));
            ctx.check(r.getSendStatus() == SendStatus.SEND_OK, "one send through the group: %s", r.getSendStatus());
            ctx.check(pullOne(ctx, r.getMessageQueue()), "the message pulled back from %s", r.getMessageQueue());

            clusterList(ctx, cluster[0], addrs);
            Method haStatus = haStatusMethod();
            if (haStatus == null) {
                ctx.note = "clusterList only: client " + ctx.clientVersion + " has no haStatus";
                ctx.info("%s", ctx.note);
            } else {
                haStatus(ctx, admin, haStatus, master, replica, addrs.size() - 1, masterHa);
            }
        } finally {
            admin.shutdown();
        }
    }

    private static Set<String> ids(Map<Long, String> addrs) {
        Set<String> ids = new TreeSet<>();
        addrs.keySet().forEach(id -> ids.add(String.valueOf(id)));
        return ids;
    }

    private static void clusterList(Ctx ctx, String cluster, Map<Long, String> addrs) throws IOException {
        String master = addrs.get(0L);
        String replica = addrs.get(1L);
        String[] out = mqadmin("clusterList", "-n", ctx.namesrv);
        ctx.info("mqadmin clusterList:%n%s", out[0].stripTrailing());
        ctx.check(out[1].isBlank(), "clusterList reports no error: %s", out[1].strip());
        Map<String, String[]> rows = new HashMap<>();
        for (String line : out[0].split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length >= 5 && f[0].equals(cluster) && f[1].equals(GROUP)) {
                rows.put(f[2], f);
            }
        }
        String[] m = rows.get("0");
        String[] s = rows.get("1");
        ctx.check(m != null && m[3].equals(master), "clusterList: %s BID 0 at the master's %s", GROUP, master);
        ctx.check(s != null && s[3].equals(replica), "clusterList: %s BID 1 at the replica's %s", GROUP, replica);
        ctx.check(rows.keySet().equals(ids(addrs)), "clusterList: %s has a row for each brokerId %s (%s)", GROUP,
            ids(addrs), rows.keySet());
        if (m == null || s == null) {
            return;
        }
        ctx.check(m[4].startsWith("V") && s[4].startsWith("V"), "clusterList: both report a version (%s, %s)", m[4],
            s[4]);
        ctx.check(!String.join(" ", m).contains("null") && !String.join(" ", s).contains("null"),
            "clusterList: no value missing (\"null\") in the rows");
        ctx.check(tps(m[5]) > 0 && tps(m[6]) > 0, "clusterList: the master's #InTPS %s and #OutTPS %s count the "
            + "message sent and pulled", m[5], m[6]);
        if (haStatusMethod() != null) { // 5.x's last column, #ACTIVATED
            ctx.check(m[m.length - 1].equals("true") && s[s.length - 1].equals("false"),
                "clusterList: the master is activated, the replica is not (%s, %s)", m[m.length - 1],
                s[s.length - 1]);
        }
    }

    /** replica is brokerId 1 of the group's n replicas. */
    private static void haStatus(Ctx ctx, DefaultMQAdminExt admin, Method haStatus, String master, String replica,
                                 int n, String masterHa) throws Exception {
        // Wait until every replica has applied all of the master's log.
        Object[] last = new Object[2];
        boolean caughtUp = Ctx.waitFor(10_000, () -> {
            try {
                last[0] = haStatus.invoke(admin, master);
                last[1] = haStatus.invoke(admin, replica);
                List<?> conns = (List<?>) get(last[0], "getHaConnectionInfo");
                return conns.size() == n && conns.stream().allMatch(c -> (long) get(c, "getDiff") == 0)
                    && (long) get(get(last[1], "getHaClientRuntimeInfo"), "getMaxOffset")
                    == (long) get(last[0], "getMasterCommitLogMaxOffset");
            } catch (Exception e) {
                return false;
            }
        });
        if (!ctx.check(last[0] != null && last[1] != null, "getBrokerHAStatus answers for the master and the replica")) {
            return;
        }
        long end = (long) get(last[0], "getMasterCommitLogMaxOffset");
        List<?> conns = (List<?>) get(last[0], "getHaConnectionInfo");
        Object client = get(last[1], "getHaClientRuntimeInfo");
        ctx.check(caughtUp, "getBrokerHAStatus: the replica caught up with the master's log end %d", end);
        ctx.check((boolean) get(last[0], "isMaster") && !(boolean) get(last[1], "isMaster"),
            "getBrokerHAStatus: master is true for the master, false for the replica");
        ctx.check(end > 0 && (int) get(last[0], "getInSyncSlaveNums") == n,
            "getBrokerHAStatus(master): log end %d, inSyncSlaveNums %s", end, get(last[0], "getInSyncSlaveNums"));
        Object c = conns.stream().filter(x -> replica.equals(get(x, "getAddr"))).findFirst().orElse(null);
        ctx.check(conns.size() == n, "getBrokerHAStatus(master): %d replica connections (%d)", n, conns.size());
        if (ctx.check(c != null, "getBrokerHAStatus(master): a connection from %s", replica)) {
            ctx.check((boolean) get(c, "isInSync") && (long) get(c, "getSlaveAckOffset") == end,
                "getBrokerHAStatus(master): replica %s, inSync %s, slaveAckOffset %s", get(c, "getAddr"),
                get(c, "isInSync"), get(c, "getSlaveAckOffset"));
        }
        ctx.check(masterHa.equals(get(client, "getMasterAddr")) && (long) get(client, "getMaxOffset") == end,
            "getBrokerHAStatus(replica): masterAddr %s, maxOffset %s", get(client, "getMasterAddr"),
            get(client, "getMaxOffset"));
        long now = System.currentTimeMillis();
        long read = (long) get(client, "getLastReadTimestamp");
        long write = (long) get(client, "getLastWriteTimestamp");
        ctx.check(Math.abs(now - read) < 30_000 && Math.abs(now - write) < 30_000,
            "getBrokerHAStatus(replica): last read from / written to the master %d ms / %d ms ago", now - read,
            now - write);

        String[] out = mqadmin("haStatus", "-n", ctx.namesrv, "-b", master);
        ctx.info("mqadmin haStatus -b %s:%n%s", master, out[0].strip());
        ctx.check(out[1].isBlank(), "haStatus(master) reports no error: %s", out[1].strip());
        Map<String, String> kv = keyed(out[0]);
        ctx.check(master.equals(kv.get("#MasterAddr")) && String.valueOf(end).equals(kv.get("#MasterCommitLogMaxOffset"))
                && String.valueOf(n).equals(kv.get("#SlaveNum")) && String.valueOf(n).equals(kv.get("#InSyncSlaveNum")),
            "haStatus(master): #MasterAddr %s, #MasterCommitLogMaxOffset %s, #SlaveNum %s, #InSyncSlaveNum %s",
            kv.get("#MasterAddr"), kv.get("#MasterCommitLogMaxOffset"), kv.get("#SlaveNum"), kv.get("#InSyncSlaveNum"));
        String row = null;
        for (String line : out[0].split("\n")) {
            if (line.startsWith(replica + " ")) {
                row = line;
            }
        }
        String[] f = row == null ? new String[0] : row.trim().split("\\s+");
        ctx.check(f.length >= 5 && f[1].equals(String.valueOf(end)) && f[2].equals("0") && f[4].equals("OK"),
            "haStatus(master): the replica's row: slave ack offset %d, diff 0, status OK: %s", end, row);

        out = mqadmin("haStatus", "-n", ctx.namesrv, "-b", replica);
        ctx.info("mqadmin haStatus -b %s:%n%s", replica, out[0].strip());
        ctx.check(out[1].isBlank(), "haStatus(replica) reports no error: %s", out[1].strip());
        kv = keyed(out[0]);
        ctx.check(masterHa.equals(kv.get("#MasterAddr")) && String.valueOf(end).equals(kv.get("#CommitLogMaxOffset")),
            "haStatus(replica): #MasterAddr %s (the master's HA address %s), #CommitLogMaxOffset %s",
            kv.get("#MasterAddr"), masterHa, kv.get("#CommitLogMaxOffset"));
        ctx.check(recent(kv.get("#LastReadTime")) && recent(kv.get("#LastWriteTime")),
            "haStatus(replica): #LastReadTime %s, #LastWriteTime %s (within 30 s)", kv.get("#LastReadTime"),
            kv.get("#LastWriteTime"));
    }

    /** A time as haStatus prints it (local time), within 30 s of now. */
    private static boolean recent(String printed) {
        try {
            long t = new SimpleDateFormat("yyyy-MM-dd HH:mm:ss,SSS").parse(printed).getTime();
            return Math.abs(System.currentTimeMillis() - t) < 30_000;
        } catch (ParseException | NullPointerException e) {
            return false;
        }
    }

    /** The rate before "(" in a clusterList TPS column such as "1.03(0,0ms)"; -1 if none. */
    private static double tps(String col) {
        try {
            return Double.parseDouble(col.substring(0, col.indexOf('(')));
        } catch (RuntimeException e) {
            return -1;
        }
    }

    private static boolean pullOne(Ctx ctx, MessageQueue mq) throws Exception {
        DefaultMQPullConsumer c = new DefaultMQPullConsumer(ctx.name("admin_cg"));
        c.setNamesrvAddr(ctx.namesrv);
        c.setInstanceName(ctx.name("admin_c"));
        c.start();
        try {
            PullResult pr = c.pull(mq, "*", 0, 32);
            return pr.getPullStatus() == PullStatus.FOUND && pr.getMsgFoundList().size() == 1;
        } finally {
            c.shutdown();
        }
    }

    /** DefaultMQAdminExt.getBrokerHAStatus(String), or null before 5.x (no haStatus command). */
    private static Method haStatusMethod() {
        try {
            return DefaultMQAdminExt.class.getMethod("getBrokerHAStatus", String.class);
        } catch (NoSuchMethodException e) {
            return null;
        }
    }

    /** The value of a public no-argument getter of a 5.x type this source cannot name. */
    static Object get(Object o, String getter) {
        try {
            return o.getClass().getMethod(getter).invoke(o);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(getter + " on " + o.getClass().getName(), e);
        }
    }

    /** "#Key<TAB>value" lines. */
    static Map<String, String> keyed(String out) {
        Map<String, String> kv = new HashMap<>();
        for (String line : out.split("\n")) {
            String[] f = line.split("\t", 2);
            if (f.length == 2 && f[0].startsWith("#")) {
                kv.put(f[0], f[1].trim());
            }
        }
        return kv;
    }

    /**
     * Runs the mqadmin command line in this JVM, as the mqadmin script does; returns what it
     * printed to stdout and to stderr (where it prints the stack of a command that failed).
     */
    static synchronized String[] mqadmin(String... args) throws IOException {
        if (System.getProperty(MixAll.ROCKETMQ_HOME_PROPERTY, System.getenv(MixAll.ROCKETMQ_HOME_ENV)) == null) {
            // 4.x's mqadmin configures its logging from ROCKETMQ_HOME/conf/logback_tools.xml.
            Path home = Path.of(System.getProperty("rocketmq.client.logRoot", System.getProperty("java.io.tmpdir")),
                "mqadmin-home");
            Files.createDirectories(home.resolve("conf"));
            Files.writeString(home.resolve("conf/logback_tools.xml"), LOGBACK_TOOLS);
            System.setProperty(MixAll.ROCKETMQ_HOME_PROPERTY, home.toString());
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream stdout = System.out;
        PrintStream stderr = System.err;
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            MQAdminStartup.main0(args, null);
        } finally {
            System.setOut(stdout);
            System.setErr(stderr);
        }
        return new String[] {out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)};
    }
}
