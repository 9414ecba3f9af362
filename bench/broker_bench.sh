#!/usr/bin/env bash
# Broker benchmark: mqbroker driven through liblsmq by bench/mqbench, with
# Redis streams (redis-benchmark XADD, AOF everysec and always) measured in
# the same run as the yardstick. Figures and how they were taken are in
# bench/RESULTS.md, section "Broker (mqbench)".
#
#   bench/broker_bench.sh [full]    every configuration, about 8 min on 2 cores
#   bench/broker_bench.sh quick     fewer configurations, shorter runs, under 3 min
#
# What runs, in this order (everything on 127.0.0.1, client and servers on
# this machine):
#   1. redis-server (appendonly yes; appendfsync everysec or always; no
#      RDB saves, no AOF rewrites) with redis-benchmark -c 50 -P 1 running
#      XADD of a 1 KiB field value;
#   2. mqbroker with ASYNC_FLUSH, fresh store: mqbench produce, 1 KiB, 50
#      synchronous producers (the headline figure), right after Redis
#      everysec; then Redis always and the same on mqbroker with SYNC_FLUSH;
#      steps 1-2 are repeated (full: 3 times, medians shown);
#   3. mqbroker with SYNC_FLUSH, fresh store: the matrix (128 B / 1 KiB x
#      1, 8, 64 producers x sync / async sends), then publish-to-consume
#      latency at 10,000 msg/s (full only);
#   4. mqbroker with ASYNC_FLUSH, fresh store: the matrix, a catch-up read
#      of a pre-filled topic (push and pull consumers), and latency at
#      10,000 msg/s.
# Then a table with ratios to the Redis figures and PASS/MISS per target.
#
# Environment:
#   BUILD_DIR   CMake build directory (default build/release; built as Release)
#   CMAKE_ARGS  extra arguments for the CMake configure step
#   LOG_DIR     logs and summary (default $BUILD_DIR/bench-logs/broker-<time>-<mode>)
#   WORK_DIR    parent of the scratch directory (default ${TMPDIR:-/tmp})
#   MAX_LOAD    wait (up to 10 min) until the 1-min load average is below this
#               before starting, e.g. MAX_LOAD=0.5 on a shared machine
#   OTHERS_MAX  a run during which other processes took more than this much
#               CPU (%, 100 = one core; default 25) is repeated once it is quiet,
#               up to 2 times (quick: once); every attempt is in results.txt
#   KEEP=1      keep the scratch directory (stores, AOF files)
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
. bench/bench_lib.sh
what=${1:-full}
case "$what" in
full | quick) ;;
-h | --help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
    ;;
*)
    echo "usage: bench/broker_bench.sh [full|quick]" >&2
    exit 2
    ;;
esac

log_dirs broker "$what"
: >"$summary"

say() { printf '%s\n' "$*" | tee -a "$summary"; }
note() { printf 'broker_bench: %s\n' "$*" >&2; }

# ---- Sizes of the run ------------------------------------------------------

if [ "$what" = quick ]; then
    redis_n=100000 # XADDs per redis-benchmark run
    reps=1         # runs of each headline figure (median shown)
    secs=3         # length of each produce run
    producer_counts="1 64"
    catchup_n=100000
    lat_secs=5
    lat_flushes="ASYNC_FLUSH"
else
    redis_n=400000
    reps=3
    secs=8
    producer_counts="1 8 64"
    catchup_n=400000
    lat_secs=30
    lat_flushes="SYNC_FLUSH ASYNC_FLUSH"
fi
lat_rate=10000
async_window=64 # async sends in flight per producer thread
# A run during which other processes took more than others_max % CPU is run
# again after a pause (at most quiet_retries times per run, retry_budget in
# all); the run with the least interference is kept. The machine may be shared.
others_max=${OTHERS_MAX:-25}
if [ "$what" = quick ]; then
    quiet_retries=1 retry_budget=4
else
    quiet_retries=2 retry_budget=12
fi
retries_allowed=$retry_budget

# ---- Tools and build -------------------------------------------------------

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null ||
    ! command -v redis-cli >/dev/null; then
    note "installing redis-server and redis-tools with apt-get"
    sudo=
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq >"$log_dir/apt.log" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server redis-tools \
        >>"$log_dir/apt.log" 2>&1 || { tail -20 "$log_dir/apt.log" >&2; exit 1; }
fi
if ! command -v cmake >/dev/null || ! pkg-config --exists rocksdb 2>/dev/null; then
    note "cmake or librocksdb-dev missing; installing with scripts/setup.sh"
    scripts/setup.sh
fi
note "building Release in $build_dir"
# shellcheck disable=SC2086 # CMAKE_ARGS is a list of words
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >"$log_dir/cmake.log" 2>&1 ||
    { cat "$log_dir/cmake.log" >&2; exit 1; }
cmake --build "$build_dir" -j2 --target mqbroker mqbench >>"$log_dir/cmake.log" 2>&1 ||
    { tail -40 "$log_dir/cmake.log" >&2; exit 1; }
# mqadmin creates the topics; without it the first send auto-creates them
# (defaultTopicQueueNums, 8 queues, the same as below).
cmake --build "$build_dir" -j2 --target mqadmin >>"$log_dir/cmake.log" 2>&1 || true
build_abs=$(cd "$build_dir" && pwd)
mqbroker=$build_abs/server/mqbroker
mqbench=$build_abs/bench/mqbench
mqadmin=$build_abs/tools/mqadmin
for b in "$mqbroker" "$mqbench"; do
    [ -x "$b" ] || { note "$b was not built"; exit 1; }
done

# ---- Scratch directory and processes ---------------------------------------

work=$(mktemp -d "${WORK_DIR:-${TMPDIR:-/tmp}}/lsmq-broker-bench.XXXXXX")
broker_pid=
redis_pid=

cleanup() {
    [ -z "$broker_pid" ] || stop_pid "$broker_pid"
    [ -z "$redis_pid" ] || stop_pid "$redis_pid"
    if [ "${KEEP:-0}" = 1 ]; then
        note "scratch kept in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port PORT: until something listens on 127.0.0.1:PORT (10 s at most).
wait_port() {
    local i
    for ((i = 0; i < 200; i++)); do
        if (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

load1() { cut -d' ' -f1 /proc/loadavg; }

# with_quiet FUNC ARGS...: run FUNC (which sets $out) again while other
# processes disturbed it, within the retry limits; $out = the least disturbed
# run. FUNC sees the attempt number in $attempt (for fresh topic names).
attempt=1
with_quiet() {
    local best="" best_o=1000000 o
    for ((attempt = 1; ; attempt++)); do
        "$@"
        o=$(others "$out")
        [ "$o" = "?" ] && o=0
        if [ "$o" -lt "$best_o" ]; then
            best=$out
            best_o=$o
        fi
        if [ "$o" -le "$others_max" ] || [ "$attempt" -gt "$quiet_retries" ] ||
            [ "$retry_budget" -le 0 ]; then
            break
        fi
        retry_budget=$((retry_budget - 1))
        note "other processes took $o% CPU during that run; running it again once they calm down"
        wait_quiet "$others_max" 120
    done
    attempt=1
    out=$best
}

# cpu_ticks PID: utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# calc EXPR: floating-point arithmetic.
calc() { awk "BEGIN { printf \"%.2f\", $* }"; }

# median_line KEY LINES...: the line with the median value of KEY.
median_line() {
    local key=$1
    shift
    printf '%s\n' "$@" | awk -v k="$key" '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) print substr($i, length(k) + 2) "\t" $0 }' |
        sort -n | awk -F '\t' '{ l[NR] = $2 } END { print l[int((NR + 1) / 2)] }'
}

# spread KEY LINES...: "min-max" of KEY over the lines (empty for one line).
spread() {
    local key=$1
    shift
    printf '%s\n' "$@" | sed -n "s/.* $key=\([0-9.]*\).*/\1/p" | sort -n |
        awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR > 1) printf "%.0f-%.0f", lo, hi }'
}

# ---- Redis streams ---------------------------------------------------------

value_1k=$(head -c 1024 /dev/zero | tr '\0' x)

# redis_run FSYNC REP: one redis-server with a fresh AOF, one redis-benchmark
# run; sets $out to a result line like mqbench's. (Functions that start
# processes set $out rather than print, so that they run in this shell and
# the EXIT trap knows every pid.)
redis_run() {
    local fsync=$1 rep=$2 dir=$work/redis-$1-$2-$attempt port line rps t0 t1 c0 c1 m0 m1 load
    mkdir -p "$dir"
    port=$(free_port)
    redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --daemonize no \
        --appendonly yes --appendfsync "$fsync" --save '' --auto-aof-rewrite-percentage 0 \
        --logfile "$dir/redis.log" >/dev/null 2>&1 &
    redis_pid=$!
    wait_port "$port" || { note "redis-server did not start; see $dir/redis.log"; exit 1; }
    until redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; do sleep 0.05; done
    sync
    load=$(load1)
    note "redis $fsync #$rep: redis-benchmark -c 50 -n $redis_n -P 1 XADD (1 KiB value)"
    c0=$(cpu_ticks "$redis_pid")
    m0=$(machine_ticks)
    t0=$(date +%s.%N)
    # The time keyword reports redis-benchmark's own CPU seconds (user+system).
    {
        TIMEFORMAT='%U %S'
        time redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "$redis_n" -P 1 --csv \
            XADD bench '*' field "$value_1k" >"$log_dir/redis-$fsync-$rep-$attempt.csv" 2>&1 || true
    } 2>"$dir/time"
    t1=$(date +%s.%N)
    c1=$(cpu_ticks "$redis_pid")
    m1=$(machine_ticks)
    rps=$(tail -1 "$log_dir/redis-$fsync-$rep-$attempt.csv" | awk -F '","' '{ printf "%.0f", $2 }')
    line="result mode=redis fsync=$fsync msgs_per_s=${rps:-0}"
    line+=" p50_ms=$(tail -1 "$log_dir/redis-$fsync-$rep-$attempt.csv" | awk -F '","' '{ print $5 }')"
    line+=" p99_ms=$(tail -1 "$log_dir/redis-$fsync-$rep-$attempt.csv" | awk -F '","' '{ print $7 }')"
    # Named like mqbench's keys: cpu_pct is the client's, broker_cpu_pct the server's.
    line+=" broker_cpu_pct=$(calc "100 * ($c1 - $c0) / $(getconf CLK_TCK) / ($t1 - $t0)")"
    line+=" cpu_pct=$(calc "100 * ($(awk '{ print $1 + $2 }' "$dir/time")) / ($t1 - $t0)")"
    line+=" machine_cpu_pct=$(calc "100 * ($m1 - $m0) / $(getconf CLK_TCK) / ($t1 - $t0)") load=$load"
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    stop_pid "$redis_pid"
    redis_pid=
    rm -rf "$dir"
    echo "$line" >>"$log_dir/results.txt"
    out=$line
}

# ---- mqbroker --------------------------------------------------------------

ns=
# start_broker FLUSH: a fresh store, an embedded name server, free ports.
start_broker() {
    local flush=$1 dir port i
    dir=$work/broker-$flush-$(date +%s%N)
    mkdir -p "$dir"
    port=$(free_port)
    ns_port=$(free_port)
    "$mqbroker" --embedded-namesrv --embeddedNamesrvPort="$ns_port" --listenPort="$port" \
        --brokerIP1=127.0.0.1 --namesrvAddr="127.0.0.1:$ns_port" --storePathRootDir="$dir/data" \
        --flushDiskType="$flush" >"$log_dir/broker-$flush.log" 2>&1 &
    broker_pid=$!
    wait_port "$port" || { note "mqbroker did not start; see $log_dir/broker-$flush.log"; exit 1; }
    ns=127.0.0.1:$ns_port
    # Registered with the name server: the log says so.
    for ((i = 0; i < 100; i++)); do
        grep -q 'registered with name server' "$log_dir/broker-$flush.log" && break
        sleep 0.1
    done
    broker_dir=$dir
    note "mqbroker $flush: pid $broker_pid, name server $ns"
}

stop_broker() {
    stop_pid "$broker_pid"
    broker_pid=
    rm -rf "$broker_dir"
}

create_topic() {
    if [ -x "$mqadmin" ]; then
        "$mqadmin" updateTopic -n "$ns" -c DefaultCluster -t "$1" -r 8 -w 8 \
            >>"$log_dir/mqadmin.log" 2>&1 || note "mqadmin updateTopic $1 failed; the first send creates it"
    fi
}

# mqbench_run NAME ARGS...: run mqbench, keep its output, set $out to the
# result line with the 1-min load average before the run appended.
mqbench_run() {
    local name=$1-a$attempt line load
    shift
    sync
    load=$(load1)
    note "$name: mqbench $*"
    if ! "$mqbench" "$@" --broker-pid "$broker_pid" --label "$name" \
        >"$log_dir/$name.out" 2>"$log_dir/$name.err"; then
        note "$name failed; see $log_dir/$name.err:"
        tail -3 "$log_dir/$name.err" >&2
    fi
    line=$(grep '^result ' "$log_dir/$name.out" | tail -1 || true)
    [ -n "$line" ] || line="result mode=error label=$name msgs_per_s=0"
    line+=" load=$load"
    echo "$line" >>"$log_dir/results.txt"
    out=$line
}

# produce FLUSH SIZE PRODUCERS sync|chained|async REP: one produce run on a
# new topic; sets $out.
produce() {
    local flush=$1 size=$2 n=$3 kind=$4 rep=$5 topic extra=()
    topic=bench-$flush-$size-$n-$kind-$rep-a$attempt
    topic=${topic//_/}
    create_topic "$topic"
    case $kind in
    async) extra=(--async --window "$async_window") ;;
    chained) extra=(--chained) ;;
    esac
    mqbench_run "produce-$flush-$size-$n-$kind-$rep" produce -n "$ns" -t "$topic" \
        --producers "$n" --clients 1 --size "$size" --seconds "$secs" "${extra[@]}"
}

# ---- The run ---------------------------------------------------------------

if [ -n "${MAX_LOAD:-}" ]; then
    for ((i = 0; i < 60; i++)); do
        awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN { exit !(l < m) }' && break
        [ "$i" = 0 ] && note "waiting for the load average ($(load1)) to drop below $MAX_LOAD"
        sleep 10
    done
fi

load_start=$(loadavg)
say "# lsmq broker benchmark ($what)"
say ""
say "- command: bench/broker_bench.sh $what"
say "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
say "- machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, kernel $(uname -r); client and servers on this machine, 127.0.0.1"
say "- disk: $(df -PT "$work" | awk 'NR == 2 { print $2 " on " $1 }') (stores and AOF files in $work)"
say "- versions: redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'), RocksDB $(dpkg-query -W -f='${Version}' librocksdb-dev 2>/dev/null || echo '?'), lsmq $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' + local changes')"
say "- load average at start (1, 5, 15 min): $load_start"
say "- logs: $log_dir"
say ""

declare -A redis redis_range res res_range runs

# add_run KEY LINE: one more run of a repeated configuration.
add_run() { runs[$1]+="$2"$'\n'; }

# take_median KEY: res[KEY] = the run with the median msgs/s, and its range.
take_median() {
    local lines
    mapfile -t lines <<<"${runs[$1]%$'\n'}"
    res[$1]=$(median_line msgs_per_s "${lines[@]}")
    res_range[$1]=$(spread msgs_per_s "${lines[@]}")
}

# The yardstick and the headline figures, interleaved so that each pair
# shares the machine's conditions: Redis everysec, lsmq ASYNC_FLUSH, Redis
# always, lsmq SYNC_FLUSH; each broker fresh. 50 synchronous producers run
# twice: as 50 threads blocked in lsmq_producer_send (the target's figure)
# and as 50 callback chains (the same one-in-flight senders without threads).
for ((r = 1; r <= reps; r++)); do
    for pair in everysec,ASYNC_FLUSH always,SYNC_FLUSH; do
        fsync=${pair%,*}
        flush=${pair#*,}
        with_quiet redis_run "$fsync" "$r"
        add_run "redis,$fsync" "$out"
        start_broker "$flush"
        for kind in sync chained; do
            with_quiet produce "$flush" 1024 50 "$kind" "$r"
            add_run "$flush,1024,50,$kind" "$out"
        done
        stop_broker
    done
done
for fsync in everysec always; do
    take_median "redis,$fsync"
    redis[$fsync]=${res[redis,$fsync]}
    redis_range[$fsync]=${res_range[redis,$fsync]}
done
for flush in ASYNC_FLUSH SYNC_FLUSH; do
    for kind in sync chained; do
        take_median "$flush,1024,50,$kind"
    done
done

# matrix FLUSH: body size x producer threads x sync/async sends.
matrix() {
    local flush=$1 size n kind
    for size in 1024 128; do
        for n in $producer_counts; do
            for kind in sync async; do
                with_quiet produce "$flush" "$size" "$n" "$kind" 1
                res[$flush,$size,$n,$kind]=$out
            done
        done
    done
}

declare -A lat
latency_run() {
    local flush=$1 topic
    topic=latency-${flush//_/}-a$attempt
    create_topic "$topic"
    mqbench_run "latency-$flush" latency -n "$ns" -t "$topic" \
        --rate "$lat_rate" --seconds "$lat_secs" --size 1024
}
latency() {
    with_quiet latency_run "$1"
    lat[$1]=$out
}

start_broker SYNC_FLUSH
matrix SYNC_FLUSH
case " $lat_flushes " in *" SYNC_FLUSH "*) latency SYNC_FLUSH ;; esac
stop_broker

start_broker ASYNC_FLUSH
matrix ASYNC_FLUSH
# Catch-up: fill one topic (untimed for the consumers), then read it from the
# first offset with a new group each time.
create_topic catchup
mqbench_run catchup-fill produce -n "$ns" -t catchup --producers 8 --clients 1 \
    --size 1024 --count "$catchup_n" --async --window "$async_window"
fill=$out
expected=$(($(field "$fill" ops) + $(field "$fill" warmup_msgs)))
with_quiet mqbench_run catchup-push consume -n "$ns" -t catchup --consumer push --threads 4 \
    --count "$expected"
cpush=$out
with_quiet mqbench_run catchup-pull consume -n "$ns" -t catchup --consumer pull --count "$expected"
cpull=$out
latency ASYNC_FLUSH
stop_broker
load_end=$(loadavg)

# ---- Tables ----------------------------------------------------------------

rv() { local v; v=$(field "${redis[$1]}" msgs_per_s); echo "${v:-0}"; }
say "## Yardstick: Redis streams"
say ""
say "redis-benchmark -h 127.0.0.1 -p PORT -c 50 -n $redis_n -P 1 --csv XADD bench '*' field <1024 x>; fresh server and AOF each run (appendonly yes, save '', auto-aof-rewrite-percentage 0). Median of $reps run(s); latency as redis-benchmark reports it."
say ""
say "| appendfsync | XADD/s | range | p50 ms | p99 ms | redis-benchmark CPU % | redis-server CPU % | others CPU % |"
say "|---|---:|---|---:|---:|---:|---:|---:|"
for fsync in everysec always; do
    l=${redis[$fsync]}
    say "| $fsync | $(field "$l" msgs_per_s) | ${redis_range[$fsync]} | $(field "$l" p50_ms) | $(field "$l" p99_ms) | $(field "$l" cpu_pct) | $(field "$l" broker_cpu_pct) | $(others "$l") |"
done
say ""

say "## Producers (mqbench produce)"
say ""
say "Each run: a fresh topic of 8 queues; $secs s; all producers share one lsmq_producer (one connection). sync: each producer is a thread that waits for every answer (lsmq_producer_send); chained: each producer is a chain of asynchronous sends with one in flight, the next sent from the previous one's callback (no thread per producer, as redis-benchmark's clients); async: each producer thread keeps up to $async_window sends in flight. The 50-producer rows: median of $reps run(s), each on a fresh broker right after the Redis run it is compared with; the other rows: one run, on one broker per flush mode started with an empty store. Bodies differ per message and compress about 2:1. ratio: msgs/s over Redis XADD/s with AOF everysec (ASYNC_FLUSH) or always (SYNC_FLUSH), 1 KiB rows only. Latency: send to answer. CPU: 100 = one core, over the run; others: what the rest of the machine took meanwhile (all cores busy minus client and server; 200 = both cores)."
say ""
say "| flush | body B | producers | send | msgs/s | range | MB/s | ratio to Redis | p50 ms | p99 ms | p99.9 ms | mqbench CPU % | broker CPU % | others CPU % |"
say "|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for flush in ASYNC_FLUSH SYNC_FLUSH; do
    yard=$([ $flush = ASYNC_FLUSH ] && rv everysec || rv always)
    for size in 1024 128; do
        for n in 1 8 50 64; do
            for kind in sync chained async; do
                key=$flush,$size,$n,$kind
                [ -n "${res[$key]:-}" ] || continue
                l=${res[$key]}
                ops=$(field "$l" msgs_per_s)
                ratio=-
                [ "$size" = 1024 ] && [ "$yard" != 0 ] && ratio=$(calc "${ops:-0} / $yard")
                say "| $flush | $size | $n | $kind | ${ops:-0} | ${res_range[$key]:-} | $(field "$l" mb_per_s) | $ratio | $(field "$l" p50_ms) | $(field "$l" p99_ms) | $(field "$l" p999_ms) | $(field "$l" cpu_pct) | $(field "$l" broker_cpu_pct) | $(others "$l") |"
            done
        done
    done
done
say ""

say "## Catch-up consumer (mqbench consume)"
say ""
say "A topic of 8 queues filled with $(field "$fill" ops) + $(field "$fill" warmup_msgs) messages of 1 KiB (ASYNC_FLUSH broker, 8 async producers), then read from the first offset by a new group; the rate runs from the consumer's start to its last message."
say ""
say "| consumer | msgs | msgs/s | MB/s | mqbench CPU % | broker CPU % | others CPU % |"
say "|---|---:|---:|---:|---:|---:|---:|"
for l in "$cpush" "$cpull"; do
    say "| $(field "$l" consumer)$([ "$(field "$l" consumer)" = push ] && echo " ($(field "$l" threads) listener threads)") | $(field "$l" ops) | $(field "$l" msgs_per_s) | $(field "$l" mb_per_s) | $(field "$l" cpu_pct) | $(field "$l" broker_cpu_pct) | $(others "$l") |"
done
say ""

say "## Publish to consume latency (mqbench latency)"
say ""
say "One producer sends 1 KiB messages asynchronously at $lat_rate msg/s for $lat_secs s, each stamped with its send time; a push consumer in the same process (4 listener threads) records receive - send."
say ""
say "| flush | sent | send rate | received | lost | p50 ms | p99 ms | p99.9 ms | max ms | mqbench CPU % | broker CPU % | others CPU % |"
say "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for flush in ASYNC_FLUSH SYNC_FLUSH; do
    [ -n "${lat[$flush]:-}" ] || continue
    l=${lat[$flush]}
    say "| $flush | $(field "$l" sent) | $(field "$l" send_rate) | $(field "$l" received) | $(field "$l" lost) | $(field "$l" p50_ms) | $(field "$l" p99_ms) | $(field "$l" p999_ms) | $(field "$l" max_ms) | $(field "$l" cpu_pct) | $(field "$l" broker_cpu_pct) | $(others "$l") |"
done
say ""

# ---- Targets ---------------------------------------------------------------

verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo MISS; fi; }
num() { local v; v=$(field "$1" "$2"); echo "${v:-0}"; }
a50=$(num "${res[ASYNC_FLUSH,1024,50,sync]}" msgs_per_s)
s50=$(num "${res[SYNC_FLUSH,1024,50,sync]}" msgs_per_s)
re=$(rv everysec)
ra=$(rv always)
l=${lat[ASYNC_FLUSH]}
p50=$(num "$l" p50_ms)
p99=$(num "$l" p99_ms)
lost=$(field "$l" lost)
lost=${lost:-1}

say "## Targets"
say ""
say "| target | measured | needed | result |"
say "|---|---:|---:|---|"
say "| 1 KiB, 50 producers, ASYNC_FLUSH vs Redis XADD, AOF everysec | $a50 / $re = $(calc "$a50 / ($re + 0.000001)")x | >= 1.0x | $(verdict "$a50 >= 1.0 * $re && $re > 0") |"
say "| 1 KiB, 50 producers, SYNC_FLUSH vs Redis XADD, AOF always | $s50 / $ra = $(calc "$s50 / ($ra + 0.000001)")x | >= 2.0x | $(verdict "$s50 >= 2.0 * $ra && $ra > 0") |"
say "| publish to consume p50 at $lat_rate msg/s (ASYNC_FLUSH, nothing lost) | $p50 ms | <= 1 ms | $(verdict "$p50 <= 1 && $p50 > 0 && $lost == 0") |"
say "| publish to consume p99 at $lat_rate msg/s (ASYNC_FLUSH, nothing lost) | $p99 ms | <= 5 ms | $(verdict "$p99 <= 5 && $p99 > 0 && $lost == 0") |"
say ""
say "Load average at the end (1, 5, 15 min): $load_end. Runs repeated because other processes took more than $others_max% CPU during them: $((retries_allowed - retry_budget)) (every attempt is in results.txt; the tables show the least disturbed one)."
note "summary in $summary; raw result lines in $log_dir/results.txt"
