#!/usr/bin/env bash
# Runs the RocketMQ Java-client interop scenarios against a name server.
#
#   tests/interop/java/run.sh NAMESRV_ADDR [scenario...]
#
# NAMESRV_ADDR: host:port of the name server (or set NAMESRV_ADDR and pass "-").
# Scenarios (default all): produce-consume clustering offset-resume retry batch reset-by-time
#   delay-level deliver-time retry-dlq
# Environment:
#   LSMQ_INTEROP_CLIENTS  client versions to run, default "4.9.8 5.3.3"
#   LSMQ_INTEROP_LOGDIR   where client logs and per-run output go, default target/logs
#   LSMQ_INTEROP_TIMEOUT  per-scenario limit in seconds, default 60 (the JVM enforces it;
#                         the shell kills it 30 s later if it still has not exited)
#   LSMQ_INTEROP_WAIT_READY  seconds to wait first for the name server to route TBW102
#                         (a broker registered), default 50; 0 skips the wait
#   JAVA                  java binary, default java
#
# Builds target/rmq-<v>/lsmq-interop-<v>.jar once per client version (offline when the
# Maven cache already has everything), runs every scenario in its own JVM, prints each
# PASS/FAIL line and ends with "N passed, M failed"; exits 1 if anything failed.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib.sh
source "$here/../lib.sh"
interop_args "$0" produce-consume clustering offset-resume retry batch reset-by-time \
    delay-level deliver-time retry-dlq -- "$@"
read -r -a clients <<<"${LSMQ_INTEROP_CLIENTS:-4.9.8 5.3.3}"
timeout_s="${LSMQ_INTEROP_TIMEOUT:-60}"
ready_s="${LSMQ_INTEROP_WAIT_READY:-50}"
logdir="${LSMQ_INTEROP_LOGDIR:-$here/target/logs}"
java="${JAVA:-java}"
mkdir -p "$logdir"

# Newest source/pom modification time, to tell whether a jar is stale.
newest_src() {
    find "$here/pom.xml" "$here/src" -type f -printf '%T@\n' | sort -n | tail -1
}

build() {
    local v="$1" jar="$here/target/rmq-$1/lsmq-interop-$1.jar"
    if [[ -f "$jar" ]]; then
        local jt st
        jt="$(stat -c %Y "$jar")"
        st="$(newest_src)"
        if [[ "${st%.*}" -le "$jt" ]]; then
            return 0
        fi
    fi
    echo "building client $v jar..."
    local t0=$SECONDS
    if ! (cd "$here" && mvn -q -B -o package -Drocketmq.version="$v" >"$logdir/build-$v.log" 2>&1); then
        # not everything in the local Maven cache yet: resolve online
        if ! (cd "$here" && mvn -q -B package -Drocketmq.version="$v" >"$logdir/build-$v.log" 2>&1); then
            tail -30 "$logdir/build-$v.log"
            return 1
        fi
    fi
    echo "built $jar in $((SECONDS - t0)) s"
}

# run_one VERSION SCENARIO OUTFILE: one scenario in its own JVM; returns the JVM's status
run_one() {
    timeout -k 5 $((timeout_s + 30)) "$java" -Xms64m -Xmx256m -XX:+UseSerialGC \
        -Dlsmq.scenarioTimeoutSec="$timeout_s" -Dlsmq.readyTimeoutSec="$ready_s" \
        -Drocketmq.client.logRoot="$logdir/client-$1" -Drocketmq.log.root="$logdir/client-$1" \
        -jar "$here/target/rmq-$1/lsmq-interop-$1.jar" "$ns" "$2" >"$3" 2>&1
}

built=()
for v in "${clients[@]}"; do
    if build "$v"; then
        built+=("$v")
    else
        echo "FAIL build client=$v (see $logdir/build-$v.log)"
        failed=$((failed + ${#scenarios[@]}))
        failures+=("build:$v")
    fi
done

# Wait (bounded) until the name server routes TBW102, i.e. a broker registered.
if [[ ${#built[@]} -gt 0 && "$ready_s" -gt 0 ]]; then
    out="$logdir/ready.out"
    if run_one "${built[0]}" ready "$out"; then
        echo "ready: $(grep -o 'ok .*TBW102.*' "$out" | head -1)"
    else
        grep -E '^(  \[|FAIL )' "$out" | tail -5
        echo "FAIL ready: the name server at $ns has no route for TBW102 after ${ready_s} s; not running the scenarios"
        failed=$((failed + ${#built[@]} * ${#scenarios[@]}))
        failures+=("ready")
        built=()
    fi
fi

for v in "${built[@]}"; do
    for s in "${scenarios[@]}"; do
        out="$logdir/$v-$s.out"
        t0=$SECONDS
        run_one "$v" "$s" "$out"
        rc=$?
        if [[ $rc -eq 0 ]] && grep -q "^PASS $s " "$out"; then
            grep "^PASS " "$out"
            interop_passed
        else
            # show the scenario's own lines, not the client library's noise
            grep -E '^(  \[|PASS |FAIL |RESULT |    at |Exception|Caused by)' "$out" | grep -v '^  \[.*\] ok ' | tail -40
            grep -q "^FAIL " "$out" || echo "FAIL $s client=$v $((SECONDS - t0))s: exit code $rc, no verdict (see $out)"
            interop_failed "$s:$v"
        fi
    done
done

interop_summary "(full output under $logdir)"
