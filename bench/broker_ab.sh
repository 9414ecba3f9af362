#!/usr/bin/env bash
# Paired comparison of two lsmq builds on one producer workload: each round
# runs build A, then build B, each with its own mqbroker (fresh store,
# embedded name server) and its own mqbench, so both halves of a change
# (broker and client library) are measured together. Rounds alternate to
# spread slow drifts of the machine over both; the medians and their ratio
# are printed at the end.
#
#   bench/broker_ab.sh A_BUILD_DIR B_BUILD_DIR [ROUNDS] [-- MQBENCH_PRODUCE_ARGS...]
#
# A build directory is a CMake build of lsmq (Release) holding
# server/mqbroker, bench/mqbench and tools/mqadmin; build one of an older
# commit with `git worktree add /tmp/lsmq-old REV` and cmake there.
# Defaults: 3 rounds of `--producers 50 --clients 1 --size 1024 --seconds 8`
# (add --chained or --async as needed) on a topic of 8 queues.
#
# Environment: FLUSH (ASYNC_FLUSH or SYNC_FLUSH, default ASYNC_FLUSH),
# WORK_DIR (parent of the scratch stores, default ${TMPDIR:-/tmp}),
# QUIET_MAX (before each run, wait up to 10 min until the machine's busy CPU
# is under this %, 100 = one core; default 0: no wait). Each round's line
# ends with others=, the CPU % other processes took during that run.
set -euo pipefail
. "$(dirname "$0")/bench_lib.sh"

if [ $# -lt 2 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 2
fi
a_dir=$(cd "$1" && pwd)
b_dir=$(cd "$2" && pwd)
shift 2
rounds=3
if [ $# -gt 0 ] && [ "$1" != -- ]; then
    rounds=$1
    shift
fi
[ "${1:-}" = -- ] && shift
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--producers 50 --clients 1 --size 1024 --seconds 8)
flush=${FLUSH:-ASYNC_FLUSH}
for d in "$a_dir" "$b_dir"; do
    for bin in server/mqbroker bench/mqbench tools/mqadmin; do
        [ -x "$d/$bin" ] || { echo "broker_ab: $d/$bin is missing" >&2; exit 1; }
    done
done

work=$(mktemp -d "${WORK_DIR:-${TMPDIR:-/tmp}}/lsmq-broker-ab.XXXXXX")
broker_pid=
cleanup() {
    if [ -n "$broker_pid" ]; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# run DIR: one broker, one mqbench run; prints the msgs/s and CPU fields.
run() {
    local dir=$1 port ns_port i line
    rm -rf "$work/store"
    wait_quiet "${QUIET_MAX:-0}"
    port=$(free_port)
    ns_port=$(free_port)
    "$dir/server/mqbroker" --embedded-namesrv --embeddedNamesrvPort="$ns_port" \
        --listenPort="$port" --brokerIP1=127.0.0.1 --namesrvAddr="127.0.0.1:$ns_port" \
        --storePathRootDir="$work/store" --flushDiskType="$flush" >"$work/broker.log" 2>&1 &
    broker_pid=$!
    for ((i = 0; i < 100; i++)); do
        grep -q 'registered with name server' "$work/broker.log" && break
        sleep 0.1
    done
    "$dir/tools/mqadmin" updateTopic -n "127.0.0.1:$ns_port" -c DefaultCluster -t ab -r 8 -w 8 \
        >/dev/null
    line=$("$dir/bench/mqbench" produce -n "127.0.0.1:$ns_port" -t ab "${args[@]}" \
        --broker-pid "$broker_pid" 2>/dev/null | grep '^result ' || true)
    kill "$broker_pid"
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=
    grep -o ' \(msgs_per_s\|p99_ms\|cpu_pct\|broker_cpu_pct\|machine_cpu_pct\)=[0-9.]*' <<<"$line" |
        tr -d '\n'
    echo " others=$(others "$line")"
}

rate() { sed -n 's/.*msgs_per_s=\([0-9]*\).*/\1/p' <<<"$1"; }

echo "A: $a_dir"
echo "B: $b_dir"
echo "mqbench produce ${args[*]} ($flush), $rounds rounds"
a_rates=() b_rates=()
for ((r = 1; r <= rounds; r++)); do
    out=$(run "$a_dir")
    echo "round $r A: $out"
    a_rates+=("$(rate "$out")")
    out=$(run "$b_dir")
    echo "round $r B: $out"
    b_rates+=("$(rate "$out")")
done
a_med=$(printf '%s\n' "${a_rates[@]}" | median)
b_med=$(printf '%s\n' "${b_rates[@]}" | median)
awk -v a="$a_med" -v b="$b_med" 'BEGIN { printf "median msgs/s: A %.0f, B %.0f, B/A %.2f\n", a, b, (a > 0 ? b / a : 0) }'
