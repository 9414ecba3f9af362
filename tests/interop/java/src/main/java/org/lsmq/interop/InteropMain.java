package org.lsmq.interop;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.apache.rocketmq.common.MQVersion;

/**
 * Entry point: java -jar lsmq-interop-VERSION.jar NAMESRV_ADDR [scenario...]
 * (NAMESRV_ADDR may be "-" to take it from the environment variable NAMESRV_ADDR).
 *
 * Prints one line "PASS <scenario> ..." or "FAIL <scenario> ..." per scenario and a final
 * "RESULT client=<v> passed=<n> failed=<m>"; exits 0 only if every scenario passed.
 * Each scenario is bounded by -Dlsmq.scenarioTimeoutSec (default 60): past it the scenario
 * fails and the process exits, whatever the client threads are doing.
 */
public final class InteropMain {
    interface Scenario {
        void run(Ctx ctx) throws Exception;
    }

    static final Map<String, Scenario> SCENARIOS = new LinkedHashMap<>();

    static {
        SCENARIOS.put("produce-consume", Scenarios::produceConsume);
        SCENARIOS.put("clustering", Scenarios::clustering);
        SCENARIOS.put("offset-resume", Scenarios::offsetResume);
        SCENARIOS.put("retry", Scenarios::retry);
        SCENARIOS.put("batch", Scenarios::batch);
        SCENARIOS.put("reset-by-time", ResetScenarios::resetByTime);
        SCENARIOS.put("delay-level", DelayScenarios::delayLevel);
        SCENARIOS.put("deliver-time", DelayScenarios::deliverTime);
        SCENARIOS.put("retry-dlq", DelayScenarios::retryDlq);
    }

    /** run by "all" and when no scenario is named; "ready" is only run when asked for */
    static final List<String> DEFAULT = List.copyOf(SCENARIOS.keySet());

    static {
        SCENARIOS.put("ready", Scenarios::ready);
        SCENARIOS.put("replica-failover", FailoverScenarios::replicaFailover);
        SCENARIOS.put("replicas-bulk", ReplicaScenarios::replicasBulk);
        SCENARIOS.put("replica-admin", AdminScenarios::replicaAdmin);
        SCENARIOS.put("controller-admin", ControllerScenarios::controllerAdmin);
        SCENARIOS.put("controller-failover", ControllerScenarios::controllerFailover);
    }

    private InteropMain() {
    }

    public static void main(String[] args) {
        String ns = args.length > 0 && !args[0].equals("-") ? args[0] : System.getenv("NAMESRV_ADDR");
        if (ns == null || ns.isBlank() || (args.length > 0 && (args[0].equals("-h") || args[0].equals("--help")))) {
            System.err.println("usage: java -jar lsmq-interop.jar NAMESRV_ADDR|- [scenario...]");
            System.err.println("scenarios: " + String.join(" ", DEFAULT) + " (default: all); "
                + "ready: wait until a broker serves TBW102");
            Runtime.getRuntime().halt(2);
        }
        List<String> wanted = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            if (args[i].equals("all")) {
                wanted.addAll(DEFAULT);
            } else {
                wanted.add(args[i]);
            }
        }
        if (wanted.isEmpty()) {
            wanted.addAll(DEFAULT);
        }
        long timeoutSec = Long.getLong("lsmq.scenarioTimeoutSec", 60);
        String version = MQVersion.getVersionDesc(MQVersion.CURRENT_VERSION).replace("V", "").replace('_', '.');
        version = version.replace(".SNAPSHOT", "-SNAPSHOT");
        System.out.printf(Locale.ROOT, "lsmq interop: rocketmq client %s, name server %s, scenarios %s%n", version, ns, wanted);

        int passed = 0;
        int failed = 0;
        for (String name : wanted) {
            Scenario sc = SCENARIOS.get(name);
            if (sc == null) {
                System.out.printf(Locale.ROOT, "FAIL %s client=%s: unknown scenario%n", name, version);
                failed++;
                continue;
            }
            System.out.printf(Locale.ROOT, "=== %s (client %s)%n", name, version);
            System.out.flush();
            Ctx ctx = new Ctx(ns, name, version);
            Throwable[] thrown = new Throwable[1];
            Thread t = new Thread(() -> {
                try {
                    sc.run(ctx);
                } catch (Throwable e) {
                    thrown[0] = e;
                } finally {
                    ctx.closeAll();
                }
            }, "scenario-" + name);
            t.setDaemon(true);
            t.start();
            try {
                t.join(timeoutSec * 1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (t.isAlive()) {
                System.out.printf(Locale.ROOT, "FAIL %s client=%s %.1fs: timed out after %d s; %s%n", name, version,
                    ctx.elapsed(), timeoutSec, ctx.failures().isEmpty() ? "" : String.join("; ", ctx.failures()));
                failed++;
                StringBuilder sb = new StringBuilder("  stack of the stuck scenario:\n");
                for (StackTraceElement e : t.getStackTrace()) {
                    sb.append("    at ").append(e).append('\n');
                }
                System.out.print(sb);
                int remaining = wanted.size() - wanted.indexOf(name) - 1;
                System.out.printf(Locale.ROOT, "RESULT client=%s passed=%d failed=%d not-run=%d%n", version, passed, failed, remaining);
                System.out.flush();
                Runtime.getRuntime().halt(1);
            }
            if (thrown[0] != null) {
                System.out.printf(Locale.ROOT, "  [%s] threw: %s%n", name, thrown[0]);
                thrown[0].printStackTrace(System.out);
                ctx.failures().add("threw " + thrown[0]);
            }
            if (ctx.failures().isEmpty()) {
                System.out.printf(Locale.ROOT, "PASS %s client=%s %.1fs%s%n", name, version, ctx.elapsed(),
                    ctx.note.isEmpty() ? "" : " (" + ctx.note + ")");
                passed++;
            } else {
                System.out.printf(Locale.ROOT, "FAIL %s client=%s %.1fs: %s%n", name, version, ctx.elapsed(),
                    String.join("; ", ctx.failures()));
                failed++;
            }
            System.out.flush();
        }
        System.out.printf(Locale.ROOT, "RESULT client=%s passed=%d failed=%d%n", version, passed, failed);
        System.out.flush();
        // client threads (netty, timers) are not all daemons: leave without waiting for them
        Runtime.getRuntime().halt(failed == 0 ? 0 : 1);
    }
}
