#!/usr/bin/env bash
# Runs an interop suite's failover scenarios against a real lsmq broker
# group: mqnamesrv, a SYNC_MASTER and one replica on free loopback ports,
# each with a temporary store. The scenarios kill the master (kill -9) and
# start it again on its store through the commands this script exports:
#
#   LSMQ_KILL_MASTER_CMD   kill -9 the master
#   LSMQ_START_MASTER_CMD  start it again and wait until it listens
#
# Afterwards every process is stopped with SIGTERM and must exit 0.
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
replica_port="$(free_port)"
ns="127.0.0.1:$ns_port"

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

"$build/server/mqnamesrv" --listenPort="$ns_port" >"$work/namesrv.log" 2>&1 &
ns_pid=$!
replica_pid=""

cleanup() {
    for p in "$replica_pid" "$(cat "$work/master.pid" 2>/dev/null)" "$ns_pid"; do
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
"$build/server/mqbroker" --listenPort="$replica_port" --haListenPort="$(free_port)" \
    --brokerIP1=127.0.0.1 --storePathRootDir="$work/replica" --namesrvAddr="$ns" \
    --brokerRole=SLAVE --brokerId=1 --haMasterAddress="127.0.0.1:$master_ha" \
    >"$work/replica.log" 2>&1 &
replica_pid=$!

"$here/$suite/run.sh" "$ns" "$@"
rc=$?

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
stop "$replica_pid" "the replica" "$work/replica.log"
replica_pid=""
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
