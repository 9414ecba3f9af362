#!/usr/bin/env bash
# Runs an interop suite's controller scenarios against a real lsmq broker
# group in controller mode: three mqnamesrv with the controller embedded
# (one raft group) and three brokers of broker-a, which the controller makes
# master or replica, all on free loopback ports with temporary stores. The
# scenarios get the three name servers as their name server list and:
#
#   LSMQ_CONTROLLER_ADDRS    the same list (";"): where the controller answers
#   LSMQ_KILL_MASTER_CMD     kill -9 the broker the name servers route as
#                            broker-a's brokerId 0; prints which one
#   LSMQ_RESTART_KILLED_CMD  start the broker killed last again, on its store
#                            and ports, and wait until it listens
#
# Once the suite passed, every replica must have applied all the master
# committed and hold exactly its messages (mqdump dump of each store, the
# same lines). Afterwards every process is stopped with SIGTERM and must
# exit 0.
#
#   tests/interop/against-lsmq-controller.sh BUILD_DIR SUITE [scenario...]
#
# (default scenarios: controller-admin controller-failover for java,
# controller-failover for the others)
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "${1:?usage: against-lsmq-controller.sh BUILD_DIR SUITE [scenario...]}" && pwd)"
suite="${2:?usage: against-lsmq-controller.sh BUILD_DIR SUITE [scenario...]}"
shift 2
if [ $# -eq 0 ]; then
    if [ "$suite" = java ]; then set -- controller-admin controller-failover; else set -- controller-failover; fi
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# listening PORT: something accepts connections on 127.0.0.1:PORT
listening() {
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

work="$(mktemp -d "${TMPDIR:-/tmp}/lsmq-interop-controller-$suite-XXXXXX")"
ns_ports=()
raft_ports=()
for i in 0 1 2; do
    ns_ports+=("$(free_port)")
    raft_ports+=("$(free_port)")
done
ns="127.0.0.1:${ns_ports[0]};127.0.0.1:${ns_ports[1]};127.0.0.1:${ns_ports[2]}"
peers="n0=127.0.0.1:${raft_ports[0]};n1=127.0.0.1:${raft_ports[1]};n2=127.0.0.1:${raft_ports[2]}"
broker_ports=()
for id in 1 2 3; do
    broker_ports[id]="$(free_port)"
done

# One start script per broker (brokerId 1..3): the scenario restarts the one it
# killed. A subshell waits for the broker and keeps its exit status in
# broker-ID.rc, since the broker is nobody's child once the script returns.
for id in 1 2 3; do
    cat >"$work/start-broker-$id.sh" <<EOF
#!/usr/bin/env bash
rm -f "$work/broker-$id.rc"
(
    "$build/server/mqbroker" --brokerIP1=127.0.0.1 --brokerName=broker-a --brokerId=$id \\
        --brokerRole=SYNC_MASTER --enableControllerMode=true --controllerAddr='$ns' \\
        --namesrvAddr='$ns' --controllerHeartBeatTimeoutMills=3000 --brokerHeartbeatInterval=500 \\
        --haMaxTimeSlaveNotCatchup=3000 --listenPort=${broker_ports[id]} --haListenPort=$(free_port) \\
        --storePathRootDir="$work/broker-$id" &
    echo \$! >"$work/broker-$id.pid"
    wait \$!
    echo \$? >"$work/broker-$id.rc"
) </dev/null >>"$work/broker-$id.log" 2>&1 &
for _ in \$(seq 1 200); do
    if (echo >/dev/tcp/127.0.0.1/${broker_ports[id]}) 2>/dev/null; then exit 0; fi
    sleep 0.05
done
echo "broker $id does not listen on ${broker_ports[id]}" >&2
exit 1
EOF
done

# The master: brokerId 0 of broker-a in the first name server's route.
cat >"$work/kill-master.sh" <<EOF
#!/usr/bin/env bash
for _ in \$(seq 1 100); do
    addr=\$(NAMESRV_ADDR=127.0.0.1:${ns_ports[0]} "$build/tools/mqadmin" clusterList --json 2>/dev/null |
        python3 -c '
import json, sys
for c in json.load(sys.stdin)["clusters"]:
    for b in c["brokers"]:
        if b["brokerName"] == "broker-a" and b["brokerId"] == 0:
            print(b["addr"])')
    for id in 1 2 3; do
        if [ "\$addr" = "127.0.0.1:\$(sed -n "\${id}p" "$work/broker-ports")" ]; then
            pid=\$(cat "$work/broker-\$id.pid")
            kill -9 "\$pid" && while kill -0 "\$pid" 2>/dev/null; do sleep 0.05; done
            echo \$id >"$work/killed"
            echo "killed the master, broker \$id at \$addr"
            exit 0
        fi
    done
    sleep 0.1
done
echo "no broker of broker-a is routed as brokerId 0" >&2
exit 1
EOF
printf '%s\n' "${broker_ports[1]}" "${broker_ports[2]}" "${broker_ports[3]}" >"$work/broker-ports"
cat >"$work/restart-killed.sh" <<EOF
#!/usr/bin/env bash
id=\$(cat "$work/killed") || exit 1
echo "starting broker \$id again"
bash "$work/start-broker-\$id.sh"
EOF

export LSMQ_CONTROLLER_ADDRS="$ns"
export LSMQ_KILL_MASTER_CMD="bash $work/kill-master.sh"
export LSMQ_RESTART_KILLED_CMD="bash $work/restart-killed.sh"
export LSMQ_INTEROP_TIMEOUT="${LSMQ_INTEROP_TIMEOUT:-150}" # the scenarios wait out elections and route refreshes

ns_pids=()
cleanup() {
    for p in "${ns_pids[@]}" $(cat "$work"/broker-*.pid 2>/dev/null); do
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            kill -9 "$p" 2>/dev/null
        fi
    done
}
trap cleanup EXIT

for i in 0 1 2; do
    "$build/server/mqnamesrv" --listenPort="${ns_ports[$i]}" --enableControllerInNamesrv=true \
        --controllerPeers="$peers" --controllerSelfId="n$i" --controllerStorePath="$work/controller-$i" \
        >"$work/namesrv-$i.log" 2>&1 &
    ns_pids+=($!)
done
for i in 0 1 2; do
    for _ in $(seq 1 200); do
        if listening "${ns_ports[$i]}"; then break; fi
        sleep 0.05
    done
done
rc=0
for id in 1 2 3; do
    if ! bash "$work/start-broker-$id.sh"; then
        echo "FAIL setup: broker $id did not start; its log:"
        tail -5 "$work/broker-$id.log"
        rc=1
    fi
done

if [ "$rc" -eq 0 ]; then
    "$here/$suite/run.sh" "$ns" "$@"
    rc=$?
fi

# routed_master: the address of broker-a's brokerId 0 at the first name server.
routed_master() {
    NAMESRV_ADDR="127.0.0.1:${ns_ports[0]}" "$build/tools/mqadmin" clusterList --json 2>/dev/null |
        python3 -c '
import json, sys
for c in json.load(sys.stdin)["clusters"]:
    for b in c["brokers"]:
        if b["brokerName"] == "broker-a" and b["brokerId"] == 0:
            print(b["addr"])'
}

# ha_json ADDR EXPR: EXPR (Python, over the broker's mqadmin haStatus as b) holds.
ha_json() {
    NAMESRV_ADDR="127.0.0.1:${ns_ports[0]}" "$build/tools/mqadmin" haStatus -b "$1" --json 2>/dev/null |
        python3 -c '
import json, sys
b = json.load(sys.stdin)["brokers"][0]
sys.exit(0 if eval(sys.argv[1]) else 1)' "$2"
}

# replicas_hold_the_masters_messages: each replica applied all the master had
# committed (within 60 s), then `mqdump dump` prints the same on every store.
replicas_hold_the_masters_messages() {
    local master seq id m deadline
    master="$(routed_master)"
    m=""
    for id in 1 2 3; do
        [ "$master" = "127.0.0.1:${broker_ports[id]}" ] && m=$id
    done
    [ -n "$m" ] || { echo "FAIL stores: no broker routed as the master ($master)"; return 1; }
    seq="$(NAMESRV_ADDR="127.0.0.1:${ns_ports[0]}" "$build/tools/mqadmin" haStatus -b "$master" --json |
        python3 -c '
import json, sys
print(json.load(sys.stdin)["brokers"][0]["masterSequence"])')" ||
        { echo "FAIL stores: no haStatus from the master, broker $m"; return 1; }
    for id in 1 2 3; do
        [ "$id" = "$m" ] && continue
        deadline=$((SECONDS + 60))
        until ha_json "127.0.0.1:${broker_ports[id]}" "b['connected'] and b['appliedSequence'] >= $seq"; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                echo "FAIL stores: broker $id has not applied the master's sequence $seq after 60 s"
                return 1
            fi
            sleep 0.2
        done
    done
    mkdir -p "$work/scratch"
    for id in 1 2 3; do
        TMPDIR="$work/scratch" "$build/tools/mqdump" dump --no-progress "$work/broker-$id" \
            >"$work/broker-$id.dump" || { echo "FAIL stores: mqdump cannot read broker $id's store"; return 1; }
    done
    for id in 1 2 3; do
        [ "$id" = "$m" ] && continue
        if ! cmp -s "$work/broker-$m.dump" "$work/broker-$id.dump"; then
            echo "FAIL stores: broker $id's messages differ from the master's (broker $m):"
            diff "$work/broker-$m.dump" "$work/broker-$id.dump" | head -c 1500
            return 1
        fi
    done
    echo "PASS stores: the 2 replicas hold the master's (broker $m) $(wc -l <"$work/broker-$m.dump") messages"
}
if [ "$rc" -eq 0 ]; then
    replicas_hold_the_masters_messages || rc=1
fi

# Every broker: SIGTERM, then (up to 30 s) its exit status, which must be 0.
for id in 1 2 3; do
    pid="$(cat "$work/broker-$id.pid" 2>/dev/null)"
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "broker $id is not running at the end; its log:" >&2
        tail -20 "$work/broker-$id.log" >&2
        rc=1
        continue
    fi
    kill -TERM "$pid"
    for _ in $(seq 1 300); do
        [ -s "$work/broker-$id.rc" ] && break
        sleep 0.1
    done
    status="$(cat "$work/broker-$id.rc" 2>/dev/null)"
    if [ "$status" != 0 ] || grep -q "Sanitizer" "$work/broker-$id.log"; then
        echo "broker $id exited with status ${status:-?} after SIGTERM; its log:" >&2
        tail -30 "$work/broker-$id.log" >&2
        rc=1
    fi
done
for i in 0 1 2; do
    status=0
    kill -TERM "${ns_pids[$i]}" 2>/dev/null
    for _ in $(seq 1 300); do
        kill -0 "${ns_pids[$i]}" 2>/dev/null || break
        sleep 0.1
    done
    wait "${ns_pids[$i]}" 2>/dev/null || status=$?
    if [ "$status" -ne 0 ]; then
        echo "name server $i exited with status $status after SIGTERM; its log:" >&2
        tail -30 "$work/namesrv-$i.log" >&2
        rc=1
    fi
done
ns_pids=()
if [ "$rc" -eq 0 ]; then
    rm -rf "$work"
else
    echo "kept $work for inspection" >&2
fi
exit "$rc"
