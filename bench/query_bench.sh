#!/usr/bin/env bash
# Rich-query benchmark: key-index cost on appends, query latency on a large
# store through the broker, and mqdump's full-scan rate. Figures and method
# in bench/RESULTS.md ("Queries").
#
#   bench/query_bench.sh            N=10,000,000 messages (about 16 GB of store)
#   N=1000000 bench/query_bench.sh  a smaller store
#
# Environment: N (messages in the query store), APPEND_N (messages per append
# run, 1,000,000), ROUNDS (append runs per variant, 3), REQUESTS (queries of
# each kind, 5000), BENCH_DIR (scratch, default under $TMPDIR; removed at the
# end unless KEEP=1), BUILD_DIR (build/release).
#
# 1. Appends with and without the key index: lsmq-engine-bench appends
#    APPEND_N 1 KiB messages to 64 queues from one thread with 64 in flight
#    (the broker's shape), each message with a key (KEYS) and a unique key,
#    on a fresh store, with --key-index 1 and 0 in turn, ROUNDS times.
#    Target: median(with) >= 0.75 x median(without).
# 2. Queries: lsmq-query-bench loads N messages (1 KiB, one key each) into a
#    store, mqbroker starts on it, and the bench sends REQUESTS of each
#    query one at a time over one connection. Targets: queryMsgById
#    (VIEW_MESSAGE_BY_ID) p99 <= 1 ms, queryMsgByKey (QUERY_MESSAGE) p99 <=
#    2 ms, searchOffset p99 <= 1 ms.
# 3. mqdump: `mqdump dump` of the whole topic (raw bodies, then JSON Lines)
#    with the broker stopped, counted by wc; MB/s of message bodies, from
#    the store's open to the last byte. Target >= 200 MB/s.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
N=${N:-10000000}
APPEND_N=${APPEND_N:-1000000}
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-5000}
build_dir=${BUILD_DIR:-build/release}
dir=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/lsmq-qbench-XXXXXX")}
mkdir -p "$dir"
log() { echo "query_bench: $*" >&2; }

cleanup() {
    [ -n "${broker_pid:-}" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    [ "${KEEP:-0}" = 1 ] || rm -rf "$dir"
}
trap cleanup EXIT

# ---- Build and disk space ------------------------------------------------

log "building Release in $build_dir"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >"$dir/cmake.log" 2>&1 &&
    cmake --build "$build_dir" -j2 --target lsmq-engine-bench lsmq-query-bench mqbroker mqdump \
        >>"$dir/cmake.log" 2>&1 || { tail -30 "$dir/cmake.log" >&2; exit 1; }
engine_bench=$build_dir/bench/lsmq-engine-bench
query_bench=$build_dir/bench/lsmq-query-bench
mqbroker=$build_dir/server/mqbroker
mqdump=$build_dir/tools/mqdump

# About 1.6 KiB of store per 1 KiB message (records, indexes, compaction room).
need_kb=$(( (N > APPEND_N ? N : APPEND_N) * 16 / 10 + 1048576 ))
free_kb=$(df -Pk "$dir" | awk 'NR==2 {print $4}')
if [ "$free_kb" -lt "$need_kb" ]; then
    log "needs about $((need_kb / 1048576)) GiB free in $dir, has $((free_kb / 1048576)) GiB;" \
        "set N lower"
    exit 1
fi

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
field() { grep -o " $1=[^ ]*" | head -1 | cut -d= -f2; }

# ---- 1. Appends with and without the key index ---------------------------

: >"$dir/with" && : >"$dir/without"
for r in $(seq "$ROUNDS"); do
    for ki in 1 0; do
        rm -rf "$dir/append"
        line=$("$engine_bench" --path "$dir/append" --count "$APPEND_N" --queues 64 --threads 1 \
            --window 64 --keys 1 --key-index "$ki" 2>>"$dir/append.log") ||
            { log "engine bench failed"; tail "$dir/append.log" >&2; exit 1; }
        rate=$(field ops_per_s <<<"$line")
        log "append round $r key_index=$ki: $rate msgs/s"
        if [ "$ki" = 1 ]; then echo "$rate" >>"$dir/with"; else echo "$rate" >>"$dir/without"; fi
    done
done
rm -rf "$dir/append"
with=$(median <"$dir/with")
without=$(median <"$dir/without")
ratio=$(awk -v a="$with" -v b="$without" 'BEGIN {printf "%.2f", a / b}')
echo "append_with_key_index=$with append_without=$without ratio=$ratio (target >= 0.75)"

# ---- 2. Queries through the broker ---------------------------------------

store=$dir/store
log "loading $N messages into $store"
"$query_bench" load --path "$store" --count "$N" --sample "$dir/samples.txt" | tee "$dir/load.txt"

port=$((20000 + RANDOM % 20000))
nport=$((port + 2)) # port + 1 is the broker's HA port (haListenPort's default)
"$mqbroker" --embedded-namesrv --embeddedNamesrvPort="$nport" --listenPort="$port" \
    --brokerIP1=127.0.0.1 --storePathRootDir="$store" >"$dir/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
log "broker up on $port; querying"
"$query_bench" query --broker "127.0.0.1:$port" --sample "$dir/samples.txt" \
    --requests "$REQUESTS" | tee "$dir/query.txt"
kill "$broker_pid" && wait "$broker_pid" 2>/dev/null
broker_pid=

# ---- 3. mqdump full scan -------------------------------------------------

# Output goes through a pipe to wc, which also proves every body came out.
sync
for format in raw jsonl; do
    start=$(date +%s.%N)
    if [ "$format" = raw ]; then
        got=$("$mqdump" dump --topic QueryBench --format raw "$store" | wc -c)
        want=$((N * 1025)) # each body and a newline
    else
        got=$("$mqdump" dump --topic QueryBench "$store" | wc -l)
        want=$N
    fi
    end=$(date +%s.%N)
    [ "$got" = "$want" ] || { log "mqdump $format printed $got, expected $want"; exit 1; }
    awk -v n="$N" -v s="$start" -v e="$end" -v f="$format" 'BEGIN {
        secs = e - s; printf "mqdump_%s_scan msgs=%d secs=%.1f mb_per_s=%.0f (body bytes; target >= 200)\n",
        f, n, secs, n * 1024 / 1048576 / secs }'
done
