#!/usr/bin/env bash
# Runs an interop suite's broker-group scenarios against a real lsmq broker
# group: mqnamesrv, a SYNC_MASTER and its replicas (LSMQ_REPLICAS, default
# 1) on free loopback ports, each with a temporary store. The failover
# scenarios kill the master (kill -9) and start it again on its store
# through the commands this script exports:
#
#   LSMQ_KILL_MASTER_CMD   kill -9 the master
#   LSMQ_START_MASTER_CMD  start it again and wait until it listens
#
# and LSMQ_MASTER_HA_ADDR, where the replicas reach the master (its
# haListenPort), which they report as their master.
#
# Once the suite passed, every replica must have applied all the master
# committed and hold exactly its messages (mqdump dump of each store, the
# same lines). Afterwards every process is stopped with SIGTERM and must
# exit 0.
#
#   tests/interop/against-lsmq-replicas.sh BUILD_DIR SUITE [scenario...]
#
# (default scenario: replica-failover)
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="$(cd "${1:?usage: against-lsmq-replicas.sh BUILD_DIR SUITE [scenario...]}" && pwd)"
suite="${2:?usage: against-lsmq-replicas.sh BUILD_DIR SUITE [scenario...]}"
shift 2
[ $# -gt 0 ] || set -- replica-failover

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

work="$(mktemp -d "${TMPDIR:-/tmp}/lsmq-interop-replicas-$suite-XXXXXX")"
ns_port="$(free_port)"
master_port="$(free_port)"
master_ha="$(free_port)"
ns="127.0.0.1:$ns_port"
replicas="${LSMQ_REPLICAS:-1}"

# The master's start and kill, as scripts the scenario runs (its pid changes).
cat >"$work/start-master.sh" <<EOF
#!/usr/bin/env bash
"$build/server/mqbroker" --listenPort=$master_port --haListenPort=$master_ha \\
    --brokerIP1=127.0.0.1 --storePathRootDir="$work/master" --namesrvAddr=$ns \\
    --brokerRole=SYNC_MASTER >>"$work/master.log" 2>&1 &
echo \$! >"$work/master.pid"
for _ in \$(seq 1 200); do
    if (echo >/dev/tcp/127.0.0.1/$master_port) 2>/dev/null; then exit 0; fi
    sleep 0.05
done
exit 1
EOF
cat >"$work/kill-master.sh" <<EOF
#!/usr/bin/env bash
pid=\$(cat "$work/master.pid")
kill -9 "\$pid" && while kill -0 "\$pid" 2>/dev/null; do sleep 0.05; done
EOF
export LSMQ_START_MASTER_CMD="bash $work/start-master.sh"
export LSMQ_INTEROP_TIMEOUT="${LSMQ_INTEROP_TIMEOUT:-150}" # the scenarios wait out failovers and route refreshes
export LSMQ_KILL_MASTER_CMD="bash $work/kill-master.sh"
export LSMQ_MASTER_HA_ADDR="127.0.0.1:$master_ha" # where the replicas reach the master

"$build/server/mqnamesrv" --listenPort="$ns_port" >"$work/namesrv.log" 2>&1 &
ns_pid=$!
replica_pids=()
replica_ports=()

cleanup() {
    for p in "${replica_pids[@]}" "$(cat "$work/master.pid" 2>/dev/null)" "$ns_pid"; do
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            kill -9 "$p" 2>/dev/null
            wait "$p" 2>/dev/null
        fi
    done
}
trap cleanup EXIT

for _ in $(seq 1 200); do
    if (echo >"/dev/tcp/127.0.0.1/$ns_port") 2>/dev/null; then break; fi
    sleep 0.05
done
bash "$work/start-master.sh"
for id in $(seq 1 "$replicas"); do
    port="$(free_port)"
    "$build/server/mqbroker" --listenPort="$port" --haListenPort="$(free_port)" \
        --brokerIP1=127.0.0.1 --storePathRootDir="$work/replica-$id" --namesrvAddr="$ns" \
        --brokerRole=SLAVE --brokerId="$id" --haMasterAddress="127.0.0.1:$master_ha" \
        >"$work/replica-$id.log" 2>&1 &
    replica_pids+=($!)
    replica_ports+=("$port")
done

"$here/$suite/run.sh" "$ns" "$@"
rc=$?

# ha_json ADDR EXPR: EXPR (Python, over the broker's mqadmin haStatus as b) holds.
ha_json() {
    NAMESRV_ADDR="$ns" "$build/tools/mqadmin" haStatus -b "$1" --json 2>/dev/null |
        python3 -c '
import json, sys
b = json.load(sys.stdin)["brokers"][0]
sys.exit(0 if eval(sys.argv[1]) else 1)' "$2"
}

# replicas_hold_the_masters_messages: each replica applied all the master had
# committed (within 60 s), then `mqdump dump` prints the same on every store.
replicas_hold_the_masters_messages() {
    local seq id i deadline
    seq="$(NAMESRV_ADDR="$ns" "$build/tools/mqadmin" haStatus -b "127.0.0.1:$master_port" --json |
        python3 -c '
import json, sys
print(json.load(sys.stdin)["brokers"][0]["masterSequence"])')" ||
        { echo "FAIL stores: no haStatus from the master"; return 1; }
    for i in "${!replica_ports[@]}"; do
        id=$((i + 1))
        deadline=$((SECONDS + 60))
        until ha_json "127.0.0.1:${replica_ports[$i]}" \
            "b['connected'] and b['appliedSequence'] >= $seq"; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                echo "FAIL stores: replica $id has not applied the master's sequence $seq after 60 s"
                return 1
            fi
            sleep 0.2
        done
    done
    mkdir -p "$work/scratch"
    TMPDIR="$work/scratch" "$build/tools/mqdump" dump --no-progress "$work/master" \
        >"$work/master.dump" || { echo "FAIL stores: mqdump cannot read the master's store"; return 1; }
    for id in $(seq 1 "$replicas"); do
        TMPDIR="$work/scratch" "$build/tools/mqdump" dump --no-progress "$work/replica-$id" \
            >"$work/replica-$id.dump" ||
            { echo "FAIL stores: mqdump cannot read replica $id's store"; return 1; }
        if ! cmp -s "$work/master.dump" "$work/replica-$id.dump"; then
            echo "FAIL stores: replica $id's messages differ from the master's:"
            diff "$work/master.dump" "$work/replica-$id.dump" | head -c 1500
            return 1
        fi
    done
    echo "PASS stores: the $replicas replica(s) hold the master's $(wc -l <"$work/master.dump") messages"
}
if [ "$rc" -eq 0 ] && kill -0 "$(cat "$work/master.pid")" 2>/dev/null; then
    replicas_hold_the_masters_messages || rc=1
fi

# stop PID NAME LOG: SIGTERM, wait up to 30 s, require exit 0.
stop() {
    local status=0
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq 1 300); do
        if ! kill -0 "$1" 2>/dev/null; then break; fi
        sleep 0.1
    done
    wait "$1" 2>/dev/null || status=$?
    if [ "$status" -ne 0 ]; then
        echo "$2 exited with status $status after SIGTERM; its log:" >&2
        tail -30 "$3" >&2
        rc=1
    fi
}
for i in "${!replica_pids[@]}"; do
    stop "${replica_pids[$i]}" "replica $((i + 1))" "$work/replica-$((i + 1)).log"
done
replica_pids=()
master_pid="$(cat "$work/master.pid")"
if kill -0 "$master_pid" 2>/dev/null; then
    # Started by the scenario's shell: not our child, so watch it instead of wait.
    kill -TERM "$master_pid"
    for _ in $(seq 1 300); do
        if ! kill -0 "$master_pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    if kill -0 "$master_pid" 2>/dev/null || ! grep -q "broker: stopped" "$work/master.log" ||
        grep -q "Sanitizer" "$work/master.log"; then
        echo "the master did not stop cleanly after SIGTERM; its log:" >&2
        tail -30 "$work/master.log" >&2
        rc=1
    fi
fi
stop "$ns_pid" "the name server" "$work/namesrv.log"
if [ "$rc" -eq 0 ]; then
    rm -rf "$work"
else
    echo "kept $work for inspection" >&2
fi
exit "$rc"
