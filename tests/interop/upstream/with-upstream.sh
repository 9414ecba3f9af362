#!/usr/bin/env bash
# For developers (not CI): starts the real Apache RocketMQ name server and broker on
# 127.0.0.1, runs one command against them, stops them and exits with the command's status.
#
#   tests/interop/upstream/with-upstream.sh COMMAND [ARG...]
#
# COMMAND sees NAMESRV_ADDR (127.0.0.1:NAMESRV_PORT), BROKER_ADDR (127.0.0.1:BROKER_PORT),
# UPSTREAM_VERSION and UPSTREAM_WORK (the work dir, kept when COMMAND fails) in its
# environment, and SLAVE_ADDR with UPSTREAM_SLAVE=1. Example:
#   tests/interop/upstream/with-upstream.sh bash -c 'tests/interop/go/run.sh "$NAMESRV_ADDR"'
#
# Environment:
#   UPSTREAM_VERSION  rocketmq-namesrv/rocketmq-broker version, default 5.4.0. The jars come
#                     from Maven Central through pom.xml beside this script into
#                     target/lib-VERSION (the same cache run-upstream.sh uses).
#   NAMESRV_PORT      default 19876; BROKER_PORT default 20911 (the broker also takes
#                     BROKER_PORT-2 and BROKER_PORT+1). The defaults differ from
#                     run-upstream.sh's so both can run at once.
#   KEEP=1            keep the work dir (stores, logs) even when the command passed.
#   UPSTREAM_ROLE     the broker's brokerRole (ASYNC_MASTER, the default, or SYNC_MASTER).
#   UPSTREAM_SLAVE=1  also start a SLAVE (brokerId 1, same brokerName) on SLAVE_PORT
#                     (default BROKER_PORT+10, which it takes -2 and +1 of too); it finds
#                     its master through the name server.
#   UPSTREAM_FLUSH    flushDiskType of the brokers (default ASYNC_FLUSH).
#   UPSTREAM_IN_SYNC_REPLICAS  the master's inSyncReplicas (default 1; 5.x counts the
#                     master itself, so a SYNC_MASTER waits for one slave at 2).
#
# Memory: name server -Xmx256m, broker -Xmx512m with 256 MiB direct memory and a 64 MiB
# commit log file. Everything listens on 127.0.0.1 (the broker's HA port binds the wildcard
# address; only the slave connects to it).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
if [[ $# -eq 0 || "$1" == "-h" || "$1" == "--help" ]]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 2
fi
version="${UPSTREAM_VERSION:-5.4.0}"
ns_port="${NAMESRV_PORT:-19876}"
broker_port="${BROKER_PORT:-20911}"
slave="${UPSTREAM_SLAVE:-0}"
slave_port="${SLAVE_PORT:-$((broker_port + 10))}"
lib="$here/target/lib-$version"
t_all=$SECONDS

say() { printf '[upstream %4ds] %s\n' $((SECONDS - t_all)) "$*" >&2; }

for tool in java mvn ss; do
    command -v "$tool" >/dev/null || { say "$tool not found"; exit 2; }
done

# 1. the upstream jars (fetched once per version)
if [[ ! -f "$lib/.complete" ]]; then
    say "fetching rocketmq-namesrv and rocketmq-broker $version from Maven Central"
    mkdir -p "$here/target"
    rm -rf "$lib"
    if ! (cd "$here" && mvn -q -B dependency:copy-dependencies -Dupstream.version="$version" \
            -DoutputDirectory="$lib" >"$here/target/fetch-$version.log" 2>&1); then
        tail -20 "$here/target/fetch-$version.log" >&2
        say "could not fetch upstream $version"
        exit 2
    fi
    touch "$lib/.complete"
fi

ports=("$ns_port" "$((broker_port - 2))" "$broker_port" "$((broker_port + 1))")
[[ "$slave" == 1 ]] && ports+=("$((slave_port - 2))" "$slave_port" "$((slave_port + 1))")
for port in "${ports[@]}"; do
    if ss -Hltn "( sport = :$port )" | grep -q .; then
        say "port $port is in use; choose other NAMESRV_PORT/BROKER_PORT"
        exit 2
    fi
done

work="$(mktemp -d /tmp/lsmq-upstream-clients.XXXXXX)"
mkdir -p "$work/home" "$work/store" "$work/store-slave"
pids=()

stop_all() {
    local pid i
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        for i in $(seq 1 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null
    done
    pids=()
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

jvm=(-XX:+UseSerialGC
     --add-opens java.base/java.nio=ALL-UNNAMED
     --add-opens java.base/sun.nio.ch=ALL-UNNAMED
     --add-exports java.base/sun.nio.ch=ALL-UNNAMED
     --add-opens java.base/java.lang=ALL-UNNAMED
     -Duser.home="$work/home")

# 4.x reads its logback configuration from $ROCKETMQ_HOME/conf and exits without one (5.x
# ships its own): give it one that logs to a file in the work dir.
mkdir -p "$work/home/conf" "$work/home/logs"
for who in namesrv broker broker-slave; do
    printf '%s\n' '<configuration>' \
        '  <appender name="F" class="ch.qos.logback.core.FileAppender">' \
        "    <file>$work/home/logs/$who.log</file>" \
        '    <encoder><pattern>%d %p %t - %m%n</pattern></encoder>' \
        '  </appender>' \
        '  <root level="INFO"><appender-ref ref="F"/></root>' \
        '</configuration>' >"$work/home/conf/logback_$who.xml"
done

printf 'listenPort=%s\nbindAddress=127.0.0.1\n' "$ns_port" >"$work/namesrv.conf"
# broker_conf ID ROLE PORT STORE: a broker.conf of broker-a on stdout
broker_conf() {
    cat <<CONF
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=$1
brokerRole=$2
brokerIP1=127.0.0.1
bindAddress=127.0.0.1
listenPort=$3
haListenPort=$(($3 + 1))
namesrvAddr=127.0.0.1:$ns_port
autoCreateTopicEnable=true
autoCreateSubscriptionGroup=true
storePathRootDir=$4
storePathCommitLog=$4/commitlog
mappedFileSizeCommitLog=67108864
flushDiskType=${UPSTREAM_FLUSH:-ASYNC_FLUSH}
inSyncReplicas=${UPSTREAM_IN_SYNC_REPLICAS:-1}
# default 200 ms: on a busy 2-core machine a just-started JVM otherwise sheds sends with
# SYSTEM_BUSY "[TIMEOUT_CLEAN_QUEUE]broker busy"
waitTimeMillsInSendQueue=1000
messageDelayLevel=$LSMQ_DELAY_LEVELS
CONF
}
# The small delay table the scenarios expect (as against-lsmq.sh); upstream's timer rounds a
# due time down to its 1 s precision, so timer deliveries may come up to 1 s early there.
export LSMQ_DELAY_LEVELS="${LSMQ_DELAY_LEVELS:-1s 2s 3s 4s 5s 6s 7s 8s 9s 10s 11s 12s 13s 14s 15s 16s 17s 18s}"
export LSMQ_DELAY_TOLERANCE_MS="${LSMQ_DELAY_TOLERANCE_MS:-1000}"
broker_conf 0 "${UPSTREAM_ROLE:-ASYNC_MASTER}" "$broker_port" "$work/store" >"$work/broker.conf"
broker_conf 1 SLAVE "$slave_port" "$work/store-slave" >"$work/broker-slave.conf"

# started FILE SECONDS PID: waits until FILE says "boot success"; fails if PID dies first
started() {
    local i
    for i in $(seq 1 $(($2 * 10))); do
        grep -q "boot success" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

t=$SECONDS
ROCKETMQ_HOME="$work/home" java -Xms64m -Xmx256m "${jvm[@]}" -cp "$lib/*" \
    org.apache.rocketmq.namesrv.NamesrvStartup -c "$work/namesrv.conf" >"$work/namesrv.out" 2>&1 &
pids+=($!)
if ! started "$work/namesrv.out" 60 "${pids[0]}"; then
    tail -20 "$work/namesrv.out" >&2
    say "name server did not start (logs in $work)"
    exit 2
fi
say "name server $version up on 127.0.0.1:$ns_port in $((SECONDS - t)) s"

t=$SECONDS
ROCKETMQ_HOME="$work/home" java -Xms128m -Xmx512m -XX:MaxDirectMemorySize=256m "${jvm[@]}" -cp "$lib/*" \
    org.apache.rocketmq.broker.BrokerStartup -c "$work/broker.conf" >"$work/broker.out" 2>&1 &
pids+=($!)
if ! started "$work/broker.out" 90 "${pids[1]}"; then
    tail -20 "$work/broker.out" >&2
    say "broker did not start (logs in $work)"
    exit 2
fi
sleep 2 # the broker registers with the name server right after "boot success"
say "broker $version up on 127.0.0.1:$broker_port in $((SECONDS - t)) s"

if [[ "$slave" == 1 ]]; then
    t=$SECONDS
    ROCKETMQ_HOME="$work/home" java -Xms128m -Xmx512m -XX:MaxDirectMemorySize=256m "${jvm[@]}" \
        -Dlogback.configurationFile="$work/home/conf/logback_broker-slave.xml" -cp "$lib/*" \
        org.apache.rocketmq.broker.BrokerStartup -c "$work/broker-slave.conf" \
        >"$work/broker-slave.out" 2>&1 &
    pids+=($!)
    if ! started "$work/broker-slave.out" 90 "${pids[2]}"; then
        tail -20 "$work/broker-slave.out" >&2
        say "slave did not start (logs in $work)"
        exit 2
    fi
    sleep 2
    say "slave $version up on 127.0.0.1:$slave_port in $((SECONDS - t)) s"
fi

t=$SECONDS
slave_addr=""
[[ "$slave" == 1 ]] && slave_addr="127.0.0.1:$slave_port"
NAMESRV_ADDR="127.0.0.1:$ns_port" BROKER_ADDR="127.0.0.1:$broker_port" UPSTREAM_VERSION="$version" \
    UPSTREAM_WORK="$work" SLAVE_ADDR="$slave_addr" "$@"
rc=$?
say "command finished in $((SECONDS - t)) s with status $rc"
stop_all
if [[ $rc -ne 0 || "${KEEP:-0}" == "1" ]]; then
    say "work dir kept: $work (namesrv.out, broker.out, home/logs/rocketmqlogs)"
else
    rm -rf "$work"
fi
say "total $((SECONDS - t_all)) s"
exit $rc
