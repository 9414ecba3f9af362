#!/usr/bin/env bash
# For developers (not CI): validates the Java interop suite against the real Apache RocketMQ
# name server and broker, fetched from Maven Central.
#
#   tests/interop/upstream/run-upstream.sh [scenario...]
#
# Environment:
#   UPSTREAM_VERSION   rocketmq-namesrv/rocketmq-broker version, default 5.4.0; 4.9.7 and
#                      5.3.3 also run but fail batch for the 5.x client (apache/rocketmq#9416,
#                      see ../README.md); 4.9.8's name server and broker are not on Maven Central
#   NAMESRV_PORT       default 9876;  BROKER_PORT  default 10911 (the broker also takes
#                      BROKER_PORT-2 and BROKER_PORT+1)
#   KEEP=1             keep the work dir (stores, logs) even when everything passed
#   LSMQ_INTEROP_CLIENTS, LSMQ_INTEROP_TIMEOUT: passed on to tests/interop/java/run.sh
#
# All traffic stays on 127.0.0.1. 5.x binds 127.0.0.1 (but the broker's HA port, which nothing
# uses here, binds the wildcard address); 4.x has no bind setting and listens on all addresses.
# Exits with run.sh's status.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
version="${UPSTREAM_VERSION:-5.4.0}"
ns_port="${NAMESRV_PORT:-9876}"
broker_port="${BROKER_PORT:-10911}"
lib="$here/target/lib-$version"
t_all=$SECONDS

stamp() { printf '[upstream %4ds] %s\n' $((SECONDS - t_all)) "$*"; }

# 1. the upstream jars
mkdir -p "$here/target"
if [[ ! -f "$lib/.complete" ]]; then
    stamp "fetching rocketmq-namesrv and rocketmq-broker $version from Maven Central"
    rm -rf "$lib"
    if ! (cd "$here" && mvn -q -B dependency:copy-dependencies -Dupstream.version="$version" \
            -DoutputDirectory="$lib" >"$here/target/fetch-$version.log" 2>&1); then
        tail -20 "$here/target/fetch-$version.log"
        stamp "could not fetch upstream $version"
        exit 2
    fi
    rm -f "$here/target/fetch-$version.log"
    touch "$lib/.complete"
fi
stamp "upstream $version: $(ls "$lib" | wc -l) jars in $lib"

for port in "$ns_port" "$((broker_port - 2))" "$broker_port" "$((broker_port + 1))"; do
    if ss -Hltn "( sport = :$port )" | grep -q .; then
        stamp "port $port is already in use; set NAMESRV_PORT/BROKER_PORT or stop what holds it"
        exit 2
    fi
done

work="$(mktemp -d /tmp/lsmq-upstream.XXXXXX)"
mkdir -p "$work/home" "$work/store"
ns_pid=""
broker_pid=""

stop() {
    local pid
    for pid in $broker_pid $ns_pid; do
        kill "$pid" 2>/dev/null
    done
    for pid in $broker_pid $ns_pid; do
        for _ in $(seq 1 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null
    done
    broker_pid=""
    ns_pid=""
}
trap 'stop' EXIT
trap 'stop; exit 130' INT TERM

# JDK 17: the store maps files and frees direct buffers through JDK internals.
jopts=(-XX:+UseSerialGC
       --add-opens java.base/java.nio=ALL-UNNAMED
       --add-opens java.base/sun.nio.ch=ALL-UNNAMED
       --add-exports java.base/sun.nio.ch=ALL-UNNAMED
       --add-opens java.base/java.lang=ALL-UNNAMED
       -Duser.home="$work/home")

# 4.x name server and broker read their logback configuration from $ROCKETMQ_HOME/conf and
# exit without it (5.x carries its own). Both log to files under the work dir.
mkdir -p "$work/home/conf"
for who in namesrv broker; do
    cat >"$work/home/conf/logback_$who.xml" <<XML
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$work/home/logs/rocketmqlogs/$who.log</file>
    <encoder><pattern>%d{yyy-MM-dd HH:mm:ss,GMT+8} %p %t - %m%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
XML
done

cat >"$work/namesrv.conf" <<CONF
listenPort=$ns_port
bindAddress=127.0.0.1
CONF
cat >"$work/broker.conf" <<CONF
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=0
brokerIP1=127.0.0.1
bindAddress=127.0.0.1
listenPort=$broker_port
namesrvAddr=127.0.0.1:$ns_port
autoCreateTopicEnable=true
autoCreateSubscriptionGroup=true
storePathRootDir=$work/store
storePathCommitLog=$work/store/commitlog
mappedFileSizeCommitLog=67108864
flushDiskType=ASYNC_FLUSH
deleteWhen=04
CONF

# wait_for FILE PATTERN SECONDS PID: until FILE has PATTERN; fails if PID dies or time runs out
wait_for() {
    local file="$1" pattern="$2" secs="$3" pid="$4" i
    for i in $(seq 1 $((secs * 10))); do
        grep -q "$pattern" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# 2. name server
t=$SECONDS
ROCKETMQ_HOME="$work/home" java -Xms64m -Xmx256m "${jopts[@]}" -cp "$lib/*" \
    org.apache.rocketmq.namesrv.NamesrvStartup -c "$work/namesrv.conf" >"$work/namesrv.out" 2>&1 &
ns_pid=$!
if ! wait_for "$work/namesrv.out" "boot success" 60 "$ns_pid"; then
    grep -v '|-' "$work/namesrv.out" | tail -20
    stamp "name server did not start (logs in $work)"
    trap - EXIT; stop; exit 2
fi
stamp "name server up on 127.0.0.1:$ns_port in $((SECONDS - t)) s (pid $ns_pid)"

# 3. broker
t=$SECONDS
ROCKETMQ_HOME="$work/home" java -Xms256m -Xmx512m -XX:MaxDirectMemorySize=256m "${jopts[@]}" -cp "$lib/*" \
    org.apache.rocketmq.broker.BrokerStartup -n "127.0.0.1:$ns_port" -c "$work/broker.conf" >"$work/broker.out" 2>&1 &
broker_pid=$!
if ! wait_for "$work/broker.out" "boot success" 90 "$broker_pid"; then
    grep -v '|-' "$work/broker.out" | tail -20
    stamp "broker did not start (logs in $work)"
    trap - EXIT; stop; exit 2
fi
# the broker registers with the name server right after it reports boot success
sleep 2
stamp "broker up on 127.0.0.1:$broker_port in $((SECONDS - t)) s (pid $broker_pid)"

# 4. the suite
t=$SECONDS
LSMQ_INTEROP_LOGDIR="${LSMQ_INTEROP_LOGDIR:-$work/interop}" \
    "$here/../java/run.sh" "127.0.0.1:$ns_port" "$@"
rc=$?
stamp "suite finished in $((SECONDS - t)) s with status $rc"

t=$SECONDS
stop
stamp "upstream stopped in $((SECONDS - t)) s; total $((SECONDS - t_all)) s"
if [[ $rc -ne 0 || "${KEEP:-0}" == "1" ]]; then
    stamp "work dir kept: $work (namesrv.out, broker.out, home/logs/rocketmqlogs, interop/)"
else
    rm -rf "$work"
fi
exit $rc
