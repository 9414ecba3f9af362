#!/usr/bin/env bash
# Runs one interop suite (java, go or node) against a real lsmq broker:
# starts mqbroker with an embedded name server on free loopback ports and a
# temporary store, runs tests/interop/SUITE/run.sh against it, then stops the
# broker with SIGTERM and requires a clean exit.
#
#   tests/interop/against-lsmq.sh BUILD_DIR SUITE [scenario...]
#
# BUILD_DIR is a CMake build directory (server/mqbroker, tools/mqadmin).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="${1:?usage: against-lsmq.sh BUILD_DIR SUITE [scenario...]}"
suite="${2:?usage: against-lsmq.sh BUILD_DIR SUITE [scenario...]}"
shift 2

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# A small delay table keeps delayed deliveries and retry back-off quick; the
# scenarios read it to know each level's delay.
small_levels="1s 2s 3s 4s 5s 6s 7s 8s 9s 10s 11s 12s 13s 14s 15s 16s 17s 18s"
export LSMQ_DELAY_LEVELS="${LSMQ_DELAY_LEVELS:-$small_levels}"

store="$(mktemp -d "${TMPDIR:-/tmp}/lsmq-interop-$suite-XXXXXX")"
port="$(free_port)"
ns_port="$(free_port)"
log="$store/broker.log"
"$build/server/mqbroker" --embedded-namesrv --embeddedNamesrvPort="$ns_port" --listenPort="$port" \
    --haListenPort="$(free_port)" --brokerIP1=127.0.0.1 --storePathRootDir="$store/data" \
    --messageDelayLevel="$LSMQ_DELAY_LEVELS" >"$log" 2>&1 &
pid=$!

cleanup() {
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
}
trap cleanup EXIT

for _ in $(seq 1 200); do
    if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.05
done

# Clients that cannot auto-create topics (ali-ons) get them from mqadmin.
if [ -x "$build/tools/mqadmin" ]; then
    export LSMQ_CREATE_TOPIC_CMD="$build/tools/mqadmin updateTopic -n {namesrv} -c DefaultCluster -t {topic} -r 4 -w 4"
fi
"$here/$suite/run.sh" "127.0.0.1:$ns_port" "$@"
rc=$?

kill -TERM "$pid"
status=0
for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
done
wait "$pid" || status=$?
if [ "$status" -ne 0 ]; then
    echo "mqbroker exited with status $status after SIGTERM; its log:" >&2
    tail -50 "$log" >&2
    rc=1
fi
if [ "$rc" -eq 0 ]; then
    rm -rf "$store"
else
    echo "kept $store for inspection" >&2
fi
exit "$rc"
